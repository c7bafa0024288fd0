"""AKS diagnostic records: real Event Hubs batches (sysdiglabs/aks-audit-log samples) in,
records whose derived audit Events the `k8s_audit` format accepts unchanged out."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES
from logwarden.normalize import cloud_aks, k8s_audit
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.cloud_aks import (
    FORMAT,
    AksRecord,
    alert_ids,
    alert_labels,
    decode,
    derived,
    document,
    record_time_ns,
    records_of,
)

AKS = FIXTURES / "cloud" / "aks"
BATCH = AKS / "sysdiglabs-aks-audit-log-event.json"
SINGLE_BOM = AKS / "sysdiglabs-aks-audit-log-sample_EventHubs_event.json"
BARE_BOM = AKS / "sysdiglabs-aks-audit-log-sample_KubeAuditLog_event.json"
BOM = b"\xef\xbb\xbf"


def units(data: bytes) -> list[bytes]:
    out = records_of(data)
    assert not [u for u in out if isinstance(u, MalformedInput)]
    return [u for u in out if isinstance(u, bytes)]


def batch_records() -> list[bytes]:
    return units(BATCH.read_bytes())


def audit_of(unit: bytes) -> tuple[AksRecord, k8s_audit.AuditEvent, bytes]:
    rec = decode(unit)
    [(source, raw)] = derived(unit, rec)
    assert source == k8s_audit.SOURCE
    ev = k8s_audit.decode(raw)
    assert isinstance(ev, k8s_audit.AuditEvent)
    return rec, ev, raw


def test_the_event_hubs_batch_splits_into_its_22_records() -> None:
    records = batch_records()
    assert len(records) == 22
    verbs: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    for unit in records:
        rec, ev, _ = audit_of(unit)
        assert rec.category == "kube-audit"
        assert rec.resourceId is not None and rec.resourceId.endswith("/KUBETEST")
        verbs[ev.verb or ""] += 1
        stages[ev.stage or ""] += 1
    assert verbs == {"get": 17, "watch": 4, "create": 1}
    assert stages == {"ResponseComplete": 20, "ResponseStarted": 2}


def test_the_log_string_ending_in_a_newline_becomes_the_audit_event_bytes() -> None:
    unit = batch_records()[0]
    log = json.loads(unit)["properties"]["log"]
    assert log.endswith("\n")
    _, ev, raw = audit_of(unit)
    assert raw == log.strip().encode()
    assert json.loads(raw) == json.loads(log)
    assert ev.auditID == "55ffceaa-b7c3-478e-98c6-e509cd2f0dd7"


def test_every_derived_event_is_what_the_audit_format_reads_from_the_log() -> None:
    for unit in batch_records():
        _, ev, raw = audit_of(unit)
        log = json.loads(unit)["properties"]["log"]
        assert ev == k8s_audit.decode(log.encode())
        assert k8s_audit.document(raw, ev) == json.loads(log)


def test_a_record_file_with_a_bom_is_one_record() -> None:
    data = SINGLE_BOM.read_bytes()
    assert data.startswith(BOM)
    [unit] = units(data)
    assert not unit.startswith(BOM)
    rec, ev, _ = audit_of(unit)
    assert ev.auditID == "4e2a4193-cb3d-4ff7-bf37-32c392fbc23b"
    # the BOM is also harmless when the raw record still carries it
    assert decode(data) == rec
    assert document(data, rec)["category"] == "kube-audit"


def test_a_bare_pretty_printed_audit_event_with_a_bom_derives_itself() -> None:
    data = BARE_BOM.read_bytes()
    assert data.startswith(BOM)
    [unit] = units(data)
    rec, ev, raw = audit_of(unit)
    assert rec.category is None
    assert raw == unit
    assert ev.verb == "update"
    assert ev.level == "RequestResponse"
    assert alert_labels(rec) == {
        "namespace": "kube-system",
        "resource": "controllerrevisions",
        "user": "system:serviceaccount:kube-system:daemon-set-controller",
    }
    assert record_time_ns(rec) == k8s_audit.event_time_ns(ev)


def test_extra_azure_members_stay_in_the_document() -> None:
    unit = batch_records()[0]
    rec = decode(unit)
    doc = document(unit, rec)
    for name in ("ccpNamespace", "Cloud", "Environment", "UnderlayClass", "UnderlayName"):
        assert name in doc
    assert doc["operationName"] == "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read"
    assert doc["properties"]["pod"] == "kube-apiserver-79599f95c7-qn557"
    assert doc == json.loads(unit)


def test_the_time_is_the_audit_events_and_else_the_records_seven_digit_time() -> None:
    unit = batch_records()[0]
    rec, ev, _ = audit_of(unit)
    assert record_time_ns(rec) == k8s_audit.event_time_ns(ev)
    assert json.loads(unit)["time"] == "2020-05-05T16:16:37.0000000Z"
    other = decode(edited(unit, category="kube-apiserver"))
    assert record_time_ns(other) == 1588695397 * 1_000_000_000


def edited(unit: bytes, **changes: Any) -> bytes:
    doc = json.loads(unit)
    doc.update(changes)
    return json.dumps(doc).encode()


def test_a_log_given_as_an_object_is_used_as_is() -> None:
    # Elastic's variant (SOURCES.md, not copied): properties.log is the Event object
    unit = batch_records()[3]
    doc = json.loads(unit)
    doc["properties"]["log"] = json.loads(doc["properties"]["log"])
    data = json.dumps(doc).encode()
    _rec, ev, raw = audit_of(data)
    assert json.loads(raw) == doc["properties"]["log"]
    _, ev_string, raw_string = audit_of(unit)
    assert (ev.auditID, ev.verb, ev.objectRef) == (
        ev_string.auditID,
        ev_string.verb,
        ev_string.objectRef,
    )
    assert k8s_audit.document(raw, ev) == k8s_audit.document(raw_string, ev_string)


def test_kube_audit_admin_is_an_audit_category() -> None:
    rec, ev, _ = audit_of(edited(batch_records()[0], category="kube-audit-admin"))
    assert rec.category == "kube-audit-admin"
    assert ev.auditID == "55ffceaa-b7c3-478e-98c6-e509cd2f0dd7"


@pytest.mark.parametrize("category", ["kube-apiserver", "cluster-autoscaler", "guard"])
def test_other_categories_with_klog_text_are_valid_and_derive_nothing(category: str) -> None:
    # the shape of the Sumo Logic samples in SOURCES.md (not copied): klog text as log
    log = 'I0505 16:16:37.655912       1 trace.go:116] Trace[1]: "List" url:/api/v1/nodes\n'
    record = {
        "category": category,
        "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "properties": {"log": log, "stream": "stderr", "pod": "kube-apiserver-1"},
        "time": "2020-05-05T16:16:37.0000000Z",
    }
    unit = json.dumps(record).encode()
    rec = decode(unit)
    assert rec.audit is None
    assert derived(unit, rec) == []
    assert alert_ids(rec) == (None, None)
    assert alert_labels(rec) == {}
    assert document(unit, rec)["properties"]["log"] == log


def test_records_of_reads_json_lines_and_arrays() -> None:
    records = batch_records()
    jsonl = b"\n".join(records[:3]) + b"\n\n"
    assert units(jsonl) == records[:3]
    assert units(b"[" + b",".join(records[:2]) + b"]") == records[:2]
    out = records_of(records[0] + b"\n{not json\n" + records[1])
    assert out[0] == records[0] and out[2] == records[1]
    assert isinstance(out[1], MalformedInput) and "line 2" in str(out[1])
    assert records_of(b"") == []
    assert records_of(BOM + b"  \n") == []
    [bad] = records_of(b'{"records": [')
    assert isinstance(bad, MalformedInput) and bad.truncated


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"properties": {"log": "x"}}, "missing category"),
        ({"category": "kube-audit"}, "missing properties.log"),
        ({"category": "kube-audit", "properties": {"log": "not json"}}, "properties.log"),
        ({"category": "kube-audit", "properties": {"log": '{"kind":"Event"}'}}, "auditID"),
        ({"category": "kube-audit", "properties": {"log": 5}}, "properties.log"),
        ({"category": 5}, "not an AKS diagnostic record"),
        ({"kind": "Event", "auditID": "x"}, "bare audit Event"),
    ],
)
def test_malformed_records_say_why(record: dict[str, Any], reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        decode(json.dumps(record).encode())


def test_format_object() -> None:
    assert FORMAT.source == cloud_aks.SOURCE == "aks_audit"
    unit = batch_records()[0]
    view = FORMAT.decode(unit)
    assert FORMAT.alert_ids(view) == ("55ffceaa-b7c3-478e-98c6-e509cd2f0dd7", "ResponseComplete")
    assert FORMAT.alert_labels(view)["user"].endswith("resourcequota-controller")
    assert FORMAT.derived(unit, view) == derived(unit, view)


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
    for unit in records_of(data):
        if isinstance(unit, bytes):
            exercise(unit)


@given(
    st.sampled_from(["kube-audit", "kube-audit-admin", "kube-apiserver", None]),
    st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1"))),
)
def test_any_log_text_gives_a_view_or_malformed_input(category: str | None, log: str) -> None:
    exercise(json.dumps({"category": category, "properties": {"log": log}}).encode())
    exercise(json.dumps({"category": category, "properties": {"log": log + "\ud800"}}).encode())


@given(st.integers(min_value=1, max_value=5000))
def test_truncated_records_are_malformed(cut: int) -> None:
    unit = batch_records()[5]
    with pytest.raises(MalformedInput):
        decode(unit[: min(cut, len(unit) - 1)])
