"""Redaction: no secret value survives into what is stored, detected or alerted on."""

from __future__ import annotations

import base64
import json
from typing import Any

from conftest import TRACES
from logwarden.normalize import k8s_audit
from logwarden.records import Record
from logwarden.redact import MASK, NOTE, Redactor

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
