"""Redaction: no secret value survives into what is stored, detected or alerted on."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from conftest import FIXTURES, TRACES
from logwarden.normalize import FORMATS, cloud_aks, cloud_eks, cloud_gke, k8s_audit
from logwarden.normalize._cloud import BOM
from logwarden.normalize.base import MalformedInput
from logwarden.records import Record
from logwarden.redact import MASK, NOTE, Redactor, redact_bytes

# a real audit event of `kubectl create secret` (Falco's trace, level Metadata) given the
# bodies a RequestResponse policy would log: what kubectl sends and the apiserver answers
BASE = json.loads((TRACES / "create_secret.json").read_text().splitlines()[0])
PASSWORD = base64.b64encode(b"hunter2-s3cret").decode()
SECRET = {
    "kind": "Secret",
    "apiVersion": "v1",
    "metadata": {"name": "example-secret", "namespace": "default"},
    "data": {"password": PASSWORD, "username": base64.b64encode(b"admin").decode()},
    "stringData": {"token": "plain-token-value"},
    "type": "Opaque",
}


def record(event: dict[str, Any]) -> Record:
    raw = json.dumps(event).encode()
    view = k8s_audit.decode_raw(raw)
    return Record("k8s_audit", "test", 1, 1, 0, k8s_audit.event_time_ns(view), raw, view)


def event(**changes: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(BASE))
    out.update(changes)
    return out


def assert_clean(rec: Record) -> None:
    for secret in (PASSWORD, "plain-token-value", base64.b64encode(b"admin").decode()):
        assert secret.encode() not in rec.raw
        assert secret not in str(rec.view)


def test_a_created_secret_loses_its_values_and_keeps_its_keys() -> None:
    rec = Redactor().redact(
        record(event(level="RequestResponse", requestObject=SECRET, responseObject=SECRET))
    )
    assert_clean(rec)
    doc = json.loads(rec.raw)
    assert doc["requestObject"]["data"] == {"password": MASK, "username": MASK}
    assert doc["requestObject"]["stringData"] == {"token": MASK}
    assert doc["responseObject"]["metadata"]["name"] == "example-secret"
    assert doc["annotations"][NOTE] == (
        "requestObject.data,requestObject.stringData,responseObject.data,responseObject.stringData"
    )
    # the rest of the event is unchanged, and the view is of the redacted bytes
    assert doc["auditID"] == BASE["auditID"]
    assert rec.view.auditID == BASE["auditID"]
    assert rec.view.requestObject and b"hunter2" not in bytes(rec.view.requestObject)


def test_a_listed_secret_list_loses_every_item_value() -> None:
    item = {k: v for k, v in SECRET.items() if k not in ("kind", "apiVersion")}
    listed = {"kind": "SecretList", "apiVersion": "v1", "items": [item, item]}
    rec = Redactor().redact(
        record(event(verb="list", level="RequestResponse", responseObject=listed))
    )
    assert_clean(rec)
    assert json.loads(rec.raw)["annotations"][NOTE] == (
        "responseObject.items[0].data,responseObject.items[0].stringData,"
        "responseObject.items[1].data,responseObject.items[1].stringData"
    )


def test_patches_of_a_secret_lose_the_values_they_set() -> None:
    merge = {"data": {"password": PASSWORD}}
    rec = Redactor().redact(record(event(verb="patch", level="Request", requestObject=merge)))
    assert_clean(rec)
    ops = [
        {"op": "replace", "path": "/data/password", "value": PASSWORD},
        {"op": "add", "path": "/stringData", "value": {"token": "plain-token-value"}},
        {"op": "replace", "path": "/metadata/labels/app", "value": "kept"},
    ]
    rec = Redactor().redact(record(event(verb="patch", level="Request", requestObject=ops)))
    assert_clean(rec)
    doc = json.loads(rec.raw)
    assert [op["value"] for op in doc["requestObject"]] == [MASK, {"token": MASK}, "kept"]


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def applied(secret: dict[str, Any]) -> dict[str, Any]:
    """`secret` as `kubectl apply` leaves it: a copy of itself, values too, in an annotation."""
    out = json.loads(json.dumps(secret))
    copy = {k: v for k, v in secret.items() if k != "metadata"} | {"metadata": {"name": "x"}}
    out["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(copy) + "\n", "team": "db"}
    return out


def test_kubectl_apply_s_copy_of_a_secret_loses_its_values_too() -> None:
    secret = applied(SECRET)
    rec = Redactor().redact(
        record(event(level="RequestResponse", requestObject=secret, responseObject=secret))
    )
    assert_clean(rec)
    doc = json.loads(rec.raw)
    notes = doc["requestObject"]["metadata"]["annotations"]
    assert json.loads(notes[LAST_APPLIED])["data"] == {"password": MASK, "username": MASK}
    assert notes["team"] == "db"
    assert f"responseObject.metadata.annotations.{LAST_APPLIED}" in doc["annotations"][NOTE]
    item = {k: v for k, v in secret.items() if k not in ("kind", "apiVersion")}
    listed = {"kind": "SecretList", "apiVersion": "v1", "items": [item]}
    assert_clean(Redactor().redact(record(event(level="RequestResponse", responseObject=listed))))
    # what kubectl apply sends to an existing Secret: a patch holding the annotation
    merge = {"data": {"password": PASSWORD}, "metadata": secret["metadata"]}
    assert_clean(Redactor().redact(record(event(verb="patch", requestObject=merge))))
    ops = [
        {"op": "add", "path": "/metadata/annotations", "value": secret["metadata"]["annotations"]},
        {"op": "replace", "path": "/metadata/labels/app", "value": "kept"},
    ]
    rec = Redactor().redact(record(event(verb="patch", requestObject=ops)))
    assert_clean(rec)
    assert json.loads(rec.raw)["requestObject"][1]["value"] == "kept"
    broken = {**SECRET, "metadata": {"annotations": {LAST_APPLIED: '{"data": {"pass'}}}
    rec = Redactor().redact(record(event(level="RequestResponse", requestObject=broken)))
    assert json.loads(rec.raw)["requestObject"]["metadata"]["annotations"][LAST_APPLIED] == MASK


def test_a_secret_inside_another_resource_is_redacted_too() -> None:
    other = event(objectRef={"resource": "configmaps", "namespace": "default", "name": "x"})
    other["level"] = "RequestResponse"
    other["responseObject"] = {"kind": "List", "items": [], "extra": SECRET}
    other["requestObject"] = SECRET
    rec = Redactor().redact(record(other))
    assert b"hunter2" not in rec.raw and PASSWORD.encode() not in rec.raw


def test_configured_paths_are_replaced_in_any_event() -> None:
    pod = event(
        objectRef={"resource": "pods", "namespace": "default", "name": "p"},
        level="Request",
        requestObject={
            "kind": "Pod",
            "spec": {"containers": [{"env": [{"name": "PW", "value": "pod-secret"}]}] * 2},
        },
    )
    rec = Redactor(["requestObject.spec.containers.env.value"]).redact(record(pod))
    assert b"pod-secret" not in rec.raw
    assert json.loads(rec.raw)["annotations"][NOTE] == "requestObject.spec.containers.env.value"


def test_events_without_secrets_keep_their_bytes() -> None:
    for trace in ("create_configmap.json", "exec_pod.json", "create_secret.json"):
        raw = (TRACES / trace).read_bytes().splitlines()[0]
        view = k8s_audit.decode_raw(raw)
        rec = Record("k8s_audit", "t", 1, 1, 0, 0, raw, view)
        redactor = Redactor()
        assert redactor.redact(rec) is rec
        assert redactor.redacted == 0


# --- the cloud providers' audit records: the same Secret, wrapped as each provider sends it

EKS = FIXTURES / "cloud" / "eks"
AKS = FIXTURES / "cloud" / "aks"
GKE = FIXTURES / "cloud" / "gke"
ITEM = {k: v for k, v in SECRET.items() if k not in ("kind", "apiVersion")}
SECRET_LIST = {"kind": "SecretList", "apiVersion": "v1", "items": [ITEM, ITEM]}
CLOUD = ["eks", "aks", "aks_object", "aks_bare", "gke"]
EMBEDDING = ["eks", "aks", "aks_object", "aks_bare"]


def cloud_record(source: str, raw: bytes) -> Record:
    fmt = FORMATS[source]
    view = fmt.decode(raw)
    return Record(source, "test", 1, 1, 0, fmt.time_ns(view), raw, view)


def first(units: list[bytes | MalformedInput]) -> dict[str, Any]:
    assert isinstance(units[0], bytes)
    doc: dict[str, Any] = json.loads(units[0])
    return doc


def eks(ev: dict[str, Any]) -> Record:
    """An envelope of the EKS audit stream (as `events_of_subscription` makes it)."""
    envelope = first(
        cloud_eks.events_of_subscription(
            (EKS / "SYNTHETIC-cloudwatch-subscription-envelope.json").read_bytes()
        )
    )
    envelope["message"] = json.dumps(ev, separators=(",", ":"))
    return cloud_record(cloud_eks.SOURCE, json.dumps(envelope).encode())


def aks(ev: dict[str, Any], *, as_object: bool = False) -> Record:
    """A kube-audit diagnostic record (BOM and all), `properties.log` a string with its
    newline as sysdiglabs' samples have it, or an object (Elastic's variant)."""
    single = AKS / "sysdiglabs-aks-audit-log-sample_EventHubs_event.json"
    doc = first(cloud_aks.records_of(single.read_bytes()))
    doc["properties"]["log"] = ev if as_object else json.dumps(ev) + "\n"
    return cloud_record(cloud_aks.SOURCE, BOM + json.dumps(doc, indent=2).encode())


def aks_bare(ev: dict[str, Any]) -> Record:
    """An unwrapped audit Event, pretty-printed after a BOM (the KubeAuditLog sample)."""
    return cloud_record(cloud_aks.SOURCE, BOM + json.dumps(ev, indent=2).encode())


def gke(ev: dict[str, Any]) -> Record:
    """The LogEntry GKE writes for `ev` (the pods.create entry of the fixtures, changed)."""
    lines = (GKE / "SYNTHETIC-gke-cloudaudit-entries.jsonl").read_bytes().splitlines()
    entry = json.loads(lines[1])
    ref = ev["objectRef"]
    name = f"/{ref['name']}" if "name" in ref and ev["verb"] != "create" else ""
    payload = entry["protoPayload"]
    payload["methodName"] = f"io.k8s.core.v1.{ref['resource']}.{ev['verb']}"
    payload["resourceName"] = f"core/v1/namespaces/{ref['namespace']}/{ref['resource']}{name}"
    payload["authorizationInfo"][0]["permission"] = payload["methodName"]
    entry["labels"] = ev["annotations"]
    for member, body in (("request", "requestObject"), ("response", "responseObject")):
        payload.pop(member)
        if body in ev:
            obj = ev[body]
            typed = {"@type": f"core.k8s.io/v1.{obj['kind']}"} if "kind" in obj else {}
            payload[member] = typed | obj
    return cloud_record(cloud_gke.SOURCE, json.dumps(entry).encode())


WRAP = {
    "eks": eks,
    "aks": aks,
    "aks_object": lambda ev: aks(ev, as_object=True),
    "aks_bare": aks_bare,
    "gke": gke,
}


def shown(kind: str, paths: str) -> str:
    """The note for `paths` (event terms) as `kind` writes it."""
    if kind != "gke":
        return paths
    return paths.replace("requestObject", "protoPayload.request").replace(
        "responseObject", "protoPayload.response"
    )


def the_event(rec: Record) -> dict[str, Any]:
    """The `k8s_audit` record the redacted record derives, checked to decode."""
    [(source, raw)] = FORMATS[rec.source].derived(rec.raw, rec.view)
    assert source == k8s_audit.SOURCE
    k8s_audit.decode_raw(raw)
    for secret in (PASSWORD, "plain-token-value"):
        assert secret.encode() not in raw
    out: dict[str, Any] = json.loads(raw)
    return out


def redacted(rec: Record, redactor: Redactor | None = None) -> Record:
    redactor = redactor or Redactor()
    out = redactor.redact(rec)
    assert out is not rec and redactor.redacted == 1
    assert out.cache is None
    assert out.view == FORMATS[rec.source].decode(out.raw)
    assert_clean(out)
    return out


@pytest.mark.parametrize("kind", CLOUD)
def test_a_secret_created_in_the_cloud_loses_its_values_and_keeps_its_keys(kind: str) -> None:
    ev = event(level="RequestResponse", requestObject=SECRET, responseObject=SECRET)
    rec = redacted(WRAP[kind](ev))
    derived = the_event(rec)
    assert derived["requestObject"]["data"] == {"password": MASK, "username": MASK}
    assert derived["responseObject"]["stringData"] == {"token": MASK}
    assert derived["responseObject"]["metadata"]["name"] == "example-secret"
    assert derived["annotations"][NOTE] == shown(
        kind,
        "requestObject.data,requestObject.stringData,responseObject.data,responseObject.stringData",
    )
    assert derived["annotations"]["authorization.k8s.io/decision"] == "allow"


@pytest.mark.parametrize("kind", CLOUD)
def test_a_secret_list_listed_in_the_cloud_loses_every_item_value(kind: str) -> None:
    ev = event(verb="list", level="RequestResponse", responseObject=SECRET_LIST)
    del ev["objectRef"]["name"]
    derived = the_event(redacted(WRAP[kind](ev)))
    assert [item["data"] for item in derived["responseObject"]["items"]] == [
        {"password": MASK, "username": MASK}
    ] * 2
    assert derived["annotations"][NOTE] == shown(
        kind,
        "responseObject.items[0].data,responseObject.items[0].stringData,"
        "responseObject.items[1].data,responseObject.items[1].stringData",
    )


@pytest.mark.parametrize("kind", CLOUD)
def test_a_merge_patch_of_a_secret_in_the_cloud_loses_its_values(kind: str) -> None:
    patch = {"data": {"password": PASSWORD}, "metadata": {"labels": {"app": "kept"}}}
    derived = the_event(redacted(WRAP[kind](event(verb="patch", requestObject=patch))))
    assert derived["requestObject"] == {
        "data": {"password": MASK},
        "metadata": {"labels": {"app": "kept"}},
    }
    assert derived["annotations"][NOTE] == shown(kind, "requestObject.data")


@pytest.mark.parametrize("kind", EMBEDDING)
def test_a_json_patch_of_a_secret_in_an_embedded_event_loses_its_values(kind: str) -> None:
    ops = [
        {"op": "replace", "path": "/data/password", "value": PASSWORD},
        {"op": "replace", "path": "/metadata/labels/app", "value": "kept"},
    ]
    derived = the_event(redacted(WRAP[kind](event(verb="patch", requestObject=ops))))
    assert [op["value"] for op in derived["requestObject"]] == [MASK, "kept"]
    assert derived["annotations"][NOTE] == "requestObject[0].value"


def test_the_embedded_event_goes_back_where_it_was() -> None:
    ev = event(level="Request", requestObject=SECRET)
    before, after = eks(ev), redacted(eks(ev))
    envelope, was = json.loads(after.raw), json.loads(before.raw)
    assert {k: v for k, v in envelope.items() if k != "message"} == {
        k: v for k, v in was.items() if k != "message"
    }
    assert envelope["message"] == after.view.audit_raw.decode()  # compact JSON, a string
    assert json.loads(envelope["message"])["annotations"][NOTE] == (
        "requestObject.data,requestObject.stringData"
    )

    before, after = aks(ev), redacted(aks(ev))
    doc, was = json.loads(after.raw), json.loads(before.raw.removeprefix(BOM))
    assert {k: v for k, v in doc.items() if k != "properties"} == {
        k: v for k, v in was.items() if k != "properties"
    }
    assert doc["properties"]["pod"] == was["properties"]["pod"]
    assert doc["properties"]["log"].endswith("}\n")
    assert json.loads(doc["properties"]["log"])["requestObject"]["data"]["password"] == MASK

    doc = json.loads(redacted(aks(ev, as_object=True)).raw)
    assert doc["properties"]["log"]["requestObject"]["data"]["password"] == MASK

    bare = redacted(aks_bare(ev))
    assert bare.view.category is None
    assert (
        json.loads(bare.raw)["annotations"][NOTE] == "requestObject.data,requestObject.stringData"
    )


def test_a_gke_entry_notes_what_it_lost_in_its_labels() -> None:
    rec = redacted(gke(event(level="RequestResponse", requestObject=SECRET)))
    entry = json.loads(rec.raw)
    assert entry["labels"][NOTE] == "protoPayload.request.data,protoPayload.request.stringData"
    assert entry["labels"]["authorization.k8s.io/decision"] == "allow"
    assert entry["protoPayload"]["request"]["@type"] == "core.k8s.io/v1.Secret"
    assert entry["protoPayload"]["request"]["data"] == {"password": MASK, "username": MASK}


def test_a_secret_in_a_gke_entry_is_found_by_kind_or_by_type() -> None:
    # a Secret inside a List sent to another resource: found by its kind
    other = event(
        objectRef={"resource": "configmaps", "namespace": "default", "name": "x"},
        requestObject={"kind": "List", "items": [SECRET]},
    )
    entry = json.loads(redacted(gke(other)).raw)
    assert entry["labels"][NOTE] == (
        "protoPayload.request.items[0].data,protoPayload.request.items[0].stringData"
    )
    # a list GKE names by @type only (no kind): its items are still Secrets
    untyped = {"@type": "core.k8s.io/v1.SecretList", "items": [ITEM]}
    listed = event(verb="list", responseObject=untyped)
    entry = json.loads(redacted(gke(listed)).raw)
    assert entry["protoPayload"]["response"]["items"][0]["data"]["password"] == MASK


@pytest.mark.parametrize("kind", CLOUD)
def test_configured_paths_are_replaced_in_every_cloud_format(kind: str) -> None:
    pod = event(
        objectRef={"resource": "pods", "namespace": "default", "name": "p"},
        level="Request",
        requestObject={
            "kind": "Pod",
            "apiVersion": "v1",
            "spec": {"containers": [{"env": [{"name": "PW", "value": "pod-secret"}]}] * 2},
        },
    )
    pod["annotations"]["ticket"] = "ticket-secret"
    paths = ["requestObject.spec.containers.env.value", "annotations.ticket"]
    rec = Redactor(paths).redact(WRAP[kind](pod))
    assert b"pod-secret" not in rec.raw and b"ticket-secret" not in rec.raw
    derived = the_event(rec)
    assert derived["requestObject"]["spec"]["containers"][1]["env"][0]["value"] == MASK
    assert derived["annotations"]["ticket"] == MASK
    assert derived["annotations"]["authorization.k8s.io/decision"] == "allow"
    gke_note = "protoPayload.request.spec.containers.env.value,labels.ticket"
    assert derived["annotations"][NOTE] == (gke_note if kind == "gke" else ",".join(paths))


def cloud_fixtures() -> list[Record]:
    eks_units = cloud_eks.events_of_subscription(
        (EKS / "SYNTHETIC-cloudwatch-subscription-envelope.json").read_bytes()
    ) + cloud_eks.events_of_filter_log_events(
        (EKS / "SYNTHETIC-filterlogevents-response.json").read_bytes(), "/aws/eks/x/cluster"
    )
    aks_units = [
        unit
        for path in sorted(AKS.glob("*.json"))
        for unit in cloud_aks.records_of(path.read_bytes())
    ]
    gke_units = cloud_gke.entries_of((GKE / "SYNTHETIC-gke-cloudaudit-entries.jsonl").read_bytes())
    out = []
    for source, units in (
        (cloud_eks.SOURCE, eks_units),
        (cloud_aks.SOURCE, aks_units),
        (cloud_gke.SOURCE, gke_units),
    ):
        for unit in units:
            assert isinstance(unit, bytes)
            out.append(cloud_record(source, unit))
    return out


def test_cloud_records_without_secrets_keep_their_bytes() -> None:
    records = cloud_fixtures()
    assert {r.source for r in records} == {"eks_audit", "aks_audit", "gke_audit"}
    assert len(records) > 30
    for redactor in (Redactor(), Redactor(["requestObject.spec.password"])):
        for rec in records:
            assert redactor.redact(rec) is rec
        assert redactor.redacted == 0
    # a record of a control-plane log that is not the audit log carries no event
    other = eks(event(requestObject=SECRET)).raw.replace(b"kube-apiserver-audit", b"authenticator")
    rec = cloud_record(cloud_eks.SOURCE, other)
    assert rec.view.audit is None
    assert Redactor().redact(rec) is rec


# -- bytes that may not have been decoded (rejected input) -----------------------------


def assert_no_values(raw: bytes) -> None:
    for secret in (PASSWORD, "plain-token-value", base64.b64encode(b"admin").decode()):
        assert secret.encode() not in raw


def unit_cases() -> dict[str, bytes]:
    secret_event = event(level="RequestResponse", requestObject=SECRET, responseObject=SECRET)
    ops = [{"op": "replace", "path": "/data/password", "value": PASSWORD}]
    patch = {"data": {"password": PASSWORD}, "stringData": {"t": "plain-token-value"}}
    cases = {
        "event list": {"kind": "EventList", "items": [secret_event, {"auditID": 1}]},
        "array of events": [event(verb="patch", requestObject=ops), event(requestObject=patch)],
        "secret list": SECRET_LIST,
        "applied secret": applied(SECRET),
        "nested secret": {"kind": "Unknown", "spec": {"template": SECRET}},
    }
    out = {name: json.dumps(doc).encode() for name, doc in cases.items()}
    for kind in CLOUD:
        out[kind] = WRAP[kind](secret_event).raw
        out[f"{kind} patch"] = WRAP[kind](event(verb="patch", requestObject=patch)).raw
    return out


UNITS = unit_cases()


@pytest.mark.parametrize("name", list(UNITS))
def test_bytes_lose_the_secret_values_of_whatever_reads_as_json(name: str) -> None:
    raw = UNITS[name]
    assert PASSWORD.encode() in raw
    out = redact_bytes(raw)
    assert_no_values(out)
    json.loads(out)


def test_bytes_keep_what_is_not_json_or_holds_no_secret_values() -> None:
    secret = json.dumps(SECRET).encode()
    for raw in (b"", b"plain text " + secret, secret[:-1], b"\x00" + secret):
        assert redact_bytes(raw) is raw
    for raw in [rec.raw for rec in cloud_fixtures()] + [json.dumps(BASE).encode()]:
        assert redact_bytes(raw) is raw
    # a control character or invalid UTF-8 in a string: still JSON, the bytes stay
    raw = secret.replace(b'"Opaque"', b'"Op\x00a\xffque"')
    out = redact_bytes(raw)
    assert_no_values(out)
    assert b'"Op\\u0000a\xffque"' in out


def test_redact_bytes_masks_extra_paths_of_events_embedded_events_and_gke_entries() -> None:
    extra = [("requestObject", "spec", "token"), ("annotations", "owner")]
    event = {
        "auditID": "a",
        "requestObject": {"spec": {"token": "t0ps3cret"}},
        "annotations": {"owner": "bob"},
    }
    eks = {"message": json.dumps(event)}
    gke = {"protoPayload": {"request": {"spec": {"token": "t0ps3cret"}}}, "labels": {"owner": "x"}}
    for doc in (event, {"items": [event]}, eks, gke):
        raw = json.dumps(doc).encode()
        assert redact_bytes(raw) is raw  # no Secret in it: untouched without extra paths
        out = redact_bytes(raw, extra)
        assert b"t0ps3cret" not in out, doc
        assert b"bob" not in out and b'"x"' not in out, doc
    masked = json.loads(redact_bytes(json.dumps(gke).encode(), extra))
    assert masked["protoPayload"]["request"]["spec"]["token"] == MASK
    assert masked["labels"]["owner"] == MASK
    assert masked["labels"][NOTE] == "protoPayload.request.spec.token,labels.owner"
    assert Redactor(["requestObject.spec.token"]).redact_bytes(json.dumps(event).encode()) != (
        json.dumps(event).encode()
    )
