"""GKE Cloud Audit Log entries in, audit.k8s.io/v1 Events out. No real GKE entry could be
copied (SOURCES.md: unknown or Elastic licenses), so fixtures/cloud/gke holds SYNTHETIC
entries built on the documented LogEntry shape and on the samples SOURCES.md describes
(the 403 image-policy denial, the replicaset-controller create with request/response, the
400 VIOLATES_POLICY with pod-security and mutation labels, the anonymous scanner's
`io.k8s.get` on "HNAP1"), plus an exec and a ClusterRoleBinding to cluster-admin."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES
from logwarden.detect.engine import Engine
from logwarden.detect.rulesets import builtin_path, load_rules
from logwarden.normalize import cloud_gke, k8s_audit
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.cloud_gke import (
    FORMAT,
    HTTP_OF_RPC,
    GkeEntry,
    alert_ids,
    alert_labels,
    audit_event,
    decode,
    derived,
    document,
    entries_of,
    entry_time_ns,
    object_ref,
)
from logwarden.records import Record

GKE = FIXTURES / "cloud" / "gke"
ENTRIES = GKE / "SYNTHETIC-gke-cloudaudit-entries.jsonl"
GCLOUD = GKE / "SYNTHETIC-gke-gcloud-logging-read.json"
SIGMA_GCP = Path(builtin_path("sigma/rules/cloud/gcp/audit"))


def entries() -> dict[str, bytes]:
    out = {}
    for unit in entries_of(ENTRIES.read_bytes()):
        assert isinstance(unit, bytes)
        out[json.loads(unit)["insertId"]] = unit
    return out


def converted(insert_id: str) -> tuple[GkeEntry, k8s_audit.AuditEvent, dict[str, Any]]:
    unit = entries()[insert_id]
    entry = decode(unit)
    [(source, raw)] = derived(unit, entry)
    assert source == k8s_audit.SOURCE
    ev = k8s_audit.decode(raw)
    assert isinstance(ev, k8s_audit.AuditEvent)
    return entry, ev, json.loads(raw)


def test_every_k8s_entry_derives_an_event_the_audit_format_accepts() -> None:
    units = entries()
    assert len(units) == 7
    for insert_id, unit in units.items():
        entry = decode(unit)
        out = derived(unit, entry)
        if entry.protoPayload.serviceName != "k8s.io":
            assert out == []
            continue
        [(_, raw)] = out
        ev = k8s_audit.decode(raw)
        assert isinstance(ev, k8s_audit.AuditEvent)
        assert ev.auditID == insert_id
        assert k8s_audit.event_time_ns(ev) == entry_time_ns(entry)


def test_exec_becomes_a_started_create_on_pods_exec() -> None:
    _, ev, doc = converted("a1b2c3d4-exec-0001")
    assert ev.verb == "create"
    assert ev.stage == "ResponseStarted"
    assert ev.objectRef is not None
    assert (ev.objectRef.resource, ev.objectRef.subresource) == ("pods", "exec")
    assert (ev.objectRef.namespace, ev.objectRef.name) == ("shop", "web-7c5ddbdf54-x2kq9")
    assert ev.objectRef.apiGroup is None  # the core group, as the apiserver writes it
    assert ev.requestURI == "/api/v1/namespaces/shop/pods/web-7c5ddbdf54-x2kq9/exec"
    assert ev.responseStatus is not None and ev.responseStatus.code == 101
    assert ev.user is not None and ev.user.username == "alice@example.com"
    assert ev.user.groups is None  # GKE logs no groups
    assert ev.sourceIPs == ["203.0.113.24"]
    assert ev.userAgent is not None and ev.userAgent.startswith("kubectl/")
    assert ev.level == "Metadata"
    assert doc["annotations"]["authorization.k8s.io/decision"] == "allow"


def test_the_builtin_exec_rule_fires_on_a_gke_exec() -> None:
    loaded = load_rules(["builtin"])
    engine = Engine(loaded.rules, correlations=loaded.correlations, match="all")
    unit = entries()["a1b2c3d4-exec-0001"]
    [(source, raw)] = derived(unit, decode(unit))
    view = k8s_audit.decode(raw)
    assert isinstance(view, k8s_audit.AuditEvent)
    record = Record(
        source=source,
        instance="gke",
        seq=1,
        line=0,
        received_ns=0,
        time_ns=k8s_audit.event_time_ns(view),
        raw=raw,
        view=view,
    )
    alerts = list(engine.process(record)) + list(engine.flush())
    exec_alerts = [a for a in alerts if "Exec" in a.rule]
    assert exec_alerts, [a.rule for a in alerts]
    assert exec_alerts[0].audit_id == "a1b2c3d4-exec-0001"
    assert exec_alerts[0].labels["namespace"] == "shop"


def test_a_create_with_request_and_response_keeps_both_without_type() -> None:
    entry, ev, doc = converted("a1b2c3d4-create-0002")
    assert ev.level == "RequestResponse"
    assert ev.stage == "ResponseComplete"
    assert ev.responseStatus is not None and ev.responseStatus.code == 201
    assert "@type" not in doc["requestObject"]
    assert "@type" not in doc["responseObject"]
    assert doc["requestObject"]["spec"]["containers"][0]["name"] == "web"
    assert doc["responseObject"]["metadata"]["name"] == "web-7c5ddbdf54-x2kq9"
    # the entry itself is untouched
    assert json.loads(entries()["a1b2c3d4-create-0002"])["protoPayload"]["request"]["@type"]
    assert ev.sourceIPs == ["::1"]
    assert doc["requestReceivedTimestamp"] == doc["stageTimestamp"] == entry.timestamp


def test_a_denial_by_the_image_policy_webhook_is_a_403() -> None:
    _, ev, _doc = converted("a1b2c3d4-denied-0003")
    assert ev.responseStatus is not None
    assert ev.responseStatus.code == 403
    assert ev.responseStatus.reason == "Forbidden"
    assert ev.responseStatus.status == "Failure"
    assert ev.responseStatus.message is not None
    assert "image policy webhook" in ev.responseStatus.message
    assert ev.objectRef is not None and ev.objectRef.name is None
    assert ev.requestURI == "/api/v1/namespaces/shop/pods"


def test_a_policy_violation_is_a_400_and_its_labels_become_annotations() -> None:
    entry, ev, doc = converted("a1b2c3d4-invalid-0004")
    assert ev.responseStatus is not None and ev.responseStatus.code == 400
    assert ev.objectRef is not None and ev.objectRef.apiGroup == "apps"
    assert ev.requestURI == "/apis/apps/v1/namespaces/shop/deployments/debug"
    assert doc["annotations"] == entry.labels
    assert doc["annotations"]["pod-security.kubernetes.io/enforce-policy"] == "baseline:latest"
    assert "mutation.webhook.admission.k8s.io/round_0_index_0" in doc["annotations"]


def test_the_anonymous_scanner_on_a_path_outside_the_api() -> None:
    entry, ev, _doc = converted("a1b2c3d4-scan-0005")
    assert ev.verb == "get"
    assert ev.objectRef is None
    assert ev.requestURI == "/HNAP1"
    assert ev.user is not None and ev.user.username == "system:anonymous"
    assert ev.responseStatus is not None and ev.responseStatus.code == 403
    assert entry.logName is not None and entry.logName.endswith("%2Fdata_access")
    assert alert_labels(entry) == {"user": "system:anonymous"}


def test_a_cluster_scoped_object_of_a_dotted_group() -> None:
    _, ev, _ = converted("a1b2c3d4-rbac-0006")
    assert ev.objectRef is not None
    assert ev.objectRef.apiGroup == "rbac.authorization.k8s.io"
    assert ev.objectRef.namespace is None
    assert ev.objectRef.name == "alice-admin"
    assert ev.requestURI == "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/alice-admin"


def test_entries_of_other_services_are_valid_and_derive_nothing() -> None:
    unit = entries()["-x9c2kqe1abcd"]
    entry = decode(unit)
    assert derived(unit, entry) == []
    assert alert_labels(entry) == {"user": "alice@example.com"}
    assert alert_ids(entry) == ("-x9c2kqe1abcd", None)


@pytest.mark.parametrize(
    ("name", "ref"),
    [
        ("core/v1/namespaces/ns/pods/p/exec", ("", "v1", "ns", "pods", "p", "exec")),
        ("core/v1/namespaces/ns/pods/p", ("", "v1", "ns", "pods", "p", "")),
        ("core/v1/namespaces/ns/pods", ("", "v1", "ns", "pods", "", "")),
        ("core/v1/namespaces/ns", ("", "v1", "", "namespaces", "ns", "")),
        ("core/v1/namespaces", ("", "v1", "", "namespaces", "", "")),
        ("core/v1/namespaces/ns/finalize", ("", "v1", "", "namespaces", "ns", "finalize")),
        ("core/v1/nodes/n1/status", ("", "v1", "", "nodes", "n1", "status")),
        (
            "apps/v1/namespaces/ns/deployments/d/scale",
            ("apps", "v1", "ns", "deployments", "d", "scale"),
        ),
        ("HNAP1", None),
        ("core/v1", None),
        ("core/v1/namespaces/ns/pods/p/exec/x", None),
        ("core//pods", None),
        ("", None),
        (None, None),
    ],
)
def test_object_refs_from_resource_names(name: str | None, ref: tuple[str, ...] | None) -> None:
    got = object_ref(name)
    if ref is None:
        assert got is None
        return
    assert got is not None
    keys = ("apiGroup", "apiVersion", "namespace", "resource", "name", "subresource")
    assert tuple(got.get(k, "") for k in keys) == ref


@pytest.mark.parametrize(
    ("rpc", "verb", "subresource", "code"),
    [
        (0, "create", None, 201),
        (0, "get", None, 200),
        (0, "delete", None, 200),
        (0, "create", "exec", 101),
        (0, "get", "portforward", 101),
        (7, "create", "exec", 403),
        (16, "list", None, 401),
        (5, "get", None, 404),
        (6, "create", None, 409),
        (3, "create", None, 400),
        (99, "get", None, 500),
    ],
)
def test_status_codes(rpc: int, verb: str, subresource: str | None, code: int) -> None:
    name = "core/v1/namespaces/ns/pods/p" + (f"/{subresource}" if subresource else "")
    method = f"io.k8s.core.v1.pods.{subresource + '.' if subresource else ''}{verb}"
    unit = json.dumps(
        {
            "insertId": "x",
            "timestamp": "2024-03-12T09:20:11Z",
            "protoPayload": {
                "serviceName": "k8s.io",
                "methodName": method,
                "resourceName": name,
                "status": {"code": rpc} if rpc else {},
            },
        }
    ).encode()
    ev = audit_event(decode(unit))
    assert ev["responseStatus"]["code"] == code
    assert ev["verb"] == verb
    started = code == 101
    assert ev["stage"] == ("ResponseStarted" if started else "ResponseComplete")
    assert ev["user"] == {}
    assert "annotations" not in ev and "sourceIPs" not in ev


def test_the_rpc_table_covers_every_google_rpc_error_code() -> None:
    assert sorted(HTTP_OF_RPC) == list(range(1, 17))


def test_document_adds_the_names_sigma_gcp_rules_read() -> None:
    unit = entries()["a1b2c3d4-rbac-0006"]
    doc = document(unit, decode(unit))
    audit = doc["gcp"]["audit"]
    assert audit["method_name"] == "io.k8s.authorization.rbac.v1.clusterrolebindings.create"
    assert audit["service_name"] == "k8s.io"
    assert audit["resource_name"] == "rbac.authorization.k8s.io/v1/clusterrolebindings/alice-admin"
    assert audit["type"] == "type.googleapis.com/google.cloud.audit.AuditLog"
    assert audit["authentication_info"] == {"principal_email": "alice@example.com"}
    assert audit["request_metadata"]["caller_ip"] == "203.0.113.24"
    assert audit["authorization_info"][0]["granted"] is True
    # the LogEntry itself, unchanged
    del doc["gcp"]
    assert doc == json.loads(unit)


@pytest.mark.parametrize(
    ("rule_file", "insert_id"),
    [
        ("gcp_kubernetes_rolebinding.yml", "a1b2c3d4-rbac-0006"),
        ("gcp_kubernetes_secrets_modified_or_deleted.yml", None),
    ],
)
def test_sigma_gcp_rules_match_the_document(rule_file: str, insert_id: str | None) -> None:
    """SigmaHQ's gcp.audit rules read `gcp.audit.method_name`; run them over a record whose
    JSON is this format's document (how the engine reads fields of non-audit sources)."""
    path = SIGMA_GCP / rule_file
    loaded = load_rules([str(path)])
    [rule] = loaded.rules
    engine = Engine(loaded.rules, match="all")
    units = entries()
    if insert_id is None:  # a secret patch, made from the exec entry
        doc = json.loads(units["a1b2c3d4-exec-0001"])
        doc["protoPayload"]["methodName"] = "io.k8s.core.v1.secrets.patch"
        unit = json.dumps(doc).encode()
    else:
        unit = units[insert_id]
    entry = decode(unit)
    raw = msgspec.json.encode(document(unit, entry))
    record = Record(rule.source, "gke", 1, 0, 0, entry_time_ns(entry), raw, entry)
    assert [a.rule for a in engine.process(record)] == [rule.name]
    other = units["a1b2c3d4-create-0002"]
    raw = msgspec.json.encode(document(other, decode(other)))
    assert not engine.process(Record(rule.source, "gke", 2, 0, 0, 0, raw, decode(other)))


def test_a_gcloud_array_splits_into_entries() -> None:
    units = entries_of(GCLOUD.read_bytes())
    assert len(units) == 2
    for unit in units:
        assert isinstance(unit, bytes)
        decode(unit)
    page = b'{"entries": [' + b",".join(u for u in units if isinstance(u, bytes)) + b"]}"
    assert entries_of(page) == units
    assert entries_of(b"\xef\xbb\xbf" + GCLOUD.read_bytes()) == units


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"insertId": "x", "timestamp": "2024-03-12T09:20:11Z"}, "missing protoPayload"),
        (
            {"insertId": "x", "timestamp": "t", "protoPayload": {"@type": "other"}},
            "@type",
        ),
        ({"insertId": "x", "timestamp": "t", "protoPayload": {}}, "methodName"),
        ({"insertId": "x", "protoPayload": {"methodName": "m"}}, "missing timestamp"),
        ({"timestamp": "t", "protoPayload": {"methodName": "m"}}, "missing insertId"),
        ({"insertId": 1, "protoPayload": {"methodName": "m"}}, "not a GKE audit LogEntry"),
        ({"jsonPayload": {"message": "x"}}, "missing protoPayload"),
    ],
)
def test_malformed_entries_say_why(entry: dict[str, Any], reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        decode(json.dumps(entry).encode())


def test_an_unparseable_timestamp_is_malformed_at_time() -> None:
    unit = json.dumps(
        {"insertId": "x", "timestamp": "yesterday", "protoPayload": {"methodName": "m"}}
    ).encode()
    with pytest.raises(MalformedInput, match="RFC 3339"):
        entry_time_ns(decode(unit))


def test_format_object() -> None:
    assert FORMAT.source == cloud_gke.SOURCE == "gke_audit"
    unit = entries()["a1b2c3d4-exec-0001"]
    view = FORMAT.decode(unit)
    assert FORMAT.alert_labels(view) == {
        "namespace": "shop",
        "resource": "pods/exec",
        "user": "alice@example.com",
    }
    assert FORMAT.alert_ids(view) == ("a1b2c3d4-exec-0001", None)


def exercise(data: bytes) -> None:
    try:
        view = decode(data)
    except MalformedInput:
        return
    with contextlib.suppress(MalformedInput):
        FORMAT.time_ns(view)
    FORMAT.alert_ids(view)
    FORMAT.alert_labels(view)
    for _, raw in FORMAT.derived(data, view):
        assert isinstance(k8s_audit.decode(raw), k8s_audit.AuditEvent)
    msgspec.json.encode(FORMAT.document(data, view))


@given(st.binary(max_size=300))
def test_any_bytes_give_a_view_or_malformed_input(data: bytes) -> None:
    exercise(data)
    for unit in entries_of(data):
        if isinstance(unit, bytes):
            exercise(unit)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.text(max_size=60),
    st.one_of(st.none(), st.text(max_size=60)),
    st.fixed_dictionaries(
        {},
        optional={
            "status": json_values,
            "request": json_values,
            "response": json_values,
            "requestMetadata": json_values,
            "authenticationInfo": json_values,
        },
    ),
)
def test_any_payload_gives_a_view_or_malformed_input(
    method: str, resource: str | None, extra: dict[str, Any]
) -> None:
    payload = {"serviceName": "k8s.io", "methodName": method, "resourceName": resource} | extra
    entry = {"insertId": "x", "timestamp": "2024-03-12T09:20:11Z", "protoPayload": payload}
    exercise(json.dumps(entry).encode())
