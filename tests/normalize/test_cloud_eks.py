"""EKS audit logs from CloudWatch Logs: subscription deliveries and FilterLogEvents pages
in, envelopes whose message is a Kubernetes audit Event out. The message is a real EKS
audit event (go-lambda-eks-logs README); both wrappers are SYNTHETIC (AWS's documented
shapes), as SOURCES.md says."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES
from logwarden.normalize import cloud_eks, k8s_audit
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.cloud_eks import (
    FORMAT,
    MAX_PAYLOAD_BYTES,
    EksRecord,
    alert_ids,
    alert_labels,
    decode,
    derived,
    document,
    events_of_filter_log_events,
    events_of_subscription,
    record_time_ns,
)

EKS = FIXTURES / "cloud" / "eks"
SUBSCRIPTION = EKS / "SYNTHETIC-cloudwatch-subscription-envelope.json"
FILTER_PAGE = EKS / "SYNTHETIC-filterlogevents-response.json"
AUDIT_ID = "0e507148-8b16-4dfb-934b-9b05dba50974"


def ok(units: list[bytes | MalformedInput]) -> list[bytes]:
    assert all(isinstance(u, bytes) for u in units), units
    return [u for u in units if isinstance(u, bytes)]


def payload() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SUBSCRIPTION.read_bytes())
    return doc


def packed(doc: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(doc).encode())


def the_message() -> str:
    message: str = payload()["logEvents"][0]["message"]
    return message


def test_a_decoded_subscription_payload_gives_one_envelope() -> None:
    [unit] = ok(events_of_subscription(SUBSCRIPTION.read_bytes()))
    env = json.loads(unit)
    assert env == {
        "logGroup": "/aws/eks/example-cluster/cluster",
        "logStream": "kube-apiserver-audit-0123456789abcdef0123456789abcdef",
        "id": "36423456789012345678901234567890123456789012345678901234",
        "timestamp": 1632731804021,
        "message": the_message(),
    }


@pytest.mark.parametrize(
    ("wrap", "copies"),
    [
        (lambda raw: base64.b64encode(raw), 1),  # what a subscription destination receives
        (lambda raw: base64.b64encode(raw) + b"\n", 1),
        (lambda raw: raw, 1),  # Firehose/S3: the gzip bytes
        (lambda raw: raw + raw, 2),  # Firehose joins deliveries: several gzip members
        (lambda raw: json.dumps({"awslogs": {"data": base64.b64encode(raw).decode()}}).encode(), 1),
    ],
    ids=["base64", "base64-newline", "gzip", "gzip-members", "lambda"],
)
def test_subscription_deliveries_in_every_wrapping(wrap: Any, copies: int) -> None:
    units = ok(events_of_subscription(wrap(packed(payload()))))
    assert units == ok(events_of_subscription(SUBSCRIPTION.read_bytes())) * copies


def test_concatenated_json_documents_in_one_gzip_member() -> None:
    text = json.dumps(payload()) + json.dumps(payload())
    units = ok(events_of_subscription(gzip.compress(text.encode())))
    assert len(units) == 2


def test_a_control_message_yields_nothing() -> None:
    control = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {"id": "", "timestamp": 1632731804021, "message": "CWL CONTROL MESSAGE: Checking"}
        ],
    }
    assert events_of_subscription(base64.b64encode(packed(control))) == []


def test_the_derived_record_is_the_message_and_the_audit_format_reads_it() -> None:
    [unit] = ok(events_of_subscription(SUBSCRIPTION.read_bytes()))
    rec = decode(unit)
    [(source, raw)] = derived(unit, rec)
    assert source == k8s_audit.SOURCE
    assert raw == the_message().encode()
    ev = k8s_audit.decode(raw)
    assert isinstance(ev, k8s_audit.AuditEvent)
    assert ev.auditID == AUDIT_ID
    assert ev.verb == "patch"
    assert rec.audit == ev


def test_eks_user_extra_and_authenticator_uid_are_kept() -> None:
    [unit] = ok(events_of_subscription(SUBSCRIPTION.read_bytes()))
    rec = decode(unit)
    assert rec.audit is not None and rec.audit.user is not None
    assert rec.audit.user.uid == "heptio-authenticator-aws:12345678912:AROA2PRXA4MTEFOJD26WP"
    [(_, raw)] = derived(unit, rec)
    extra = json.loads(raw)["user"]["extra"]
    assert sorted(extra) == ["accessKeyId", "arn", "canonicalArn", "sessionName"]
    doc = document(unit, rec)
    assert doc["message"]["user"]["extra"]["sessionName"] == ["i-00000000000000"]
    assert doc["message"]["user"]["uid"].startswith("heptio-authenticator-aws:")


def test_document_is_the_envelope_with_the_message_parsed() -> None:
    [unit] = ok(events_of_subscription(SUBSCRIPTION.read_bytes()))
    doc = document(unit, decode(unit))
    assert doc["logGroup"] == "/aws/eks/example-cluster/cluster"
    assert doc["timestamp"] == 1632731804021
    assert doc["message"] == json.loads(the_message())


def test_ids_labels_and_time_come_from_the_audit_event() -> None:
    [unit] = ok(events_of_subscription(SUBSCRIPTION.read_bytes()))
    rec = decode(unit)
    assert alert_ids(rec) == (AUDIT_ID, "ResponseComplete")
    assert alert_labels(rec) == {
        "namespace": "default",
        "resource": "pods/status",
        "user": "system:node:ip-00-00-00-00.eu-west-1.compute.internal",
    }
    # stageTimestamp (microseconds), not the CloudWatch timestamp (milliseconds)
    assert record_time_ns(rec) == 1632731804_021638000


def test_a_filter_log_events_page_gives_the_same_event() -> None:
    [unit] = ok(events_of_filter_log_events(FILTER_PAGE.read_bytes(), "/aws/eks/x/cluster"))
    env = json.loads(unit)
    assert env["logGroup"] == "/aws/eks/x/cluster"
    assert env["logStream"] == "kube-apiserver-audit-0123456789abcdef0123456789abcdef"
    assert env["id"] == "36423456789012345678901234567890123456789012345678901234"
    rec = decode(unit)
    assert derived(unit, rec) == [(k8s_audit.SOURCE, the_message().encode())]
    [nameless] = ok(events_of_filter_log_events(FILTER_PAGE.read_bytes()))
    assert "logGroup" not in json.loads(nameless)


def envelope(stream: str | None, message: str) -> bytes:
    env = {"logGroup": "/aws/eks/c/cluster", "logStream": stream, "id": "1"}
    return json.dumps(env | {"timestamp": 1632731804021, "message": message}).encode()


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ("authenticator-0123abcd", 'time="2021-09-27T08:36:44Z" level=info msg="access granted"'),
        ("kube-apiserver-0123abcd", "I0927 08:36:44.014671      10 trace.go:205] Trace[1]"),
        ("kube-scheduler-0123abcd", '{"not": "an audit event"}'),
        (None, "I0927 08:36:44.014671 plain text"),
        (None, '{"msg": "a JSON line that is no audit event"}'),
    ],
)
def test_other_control_plane_streams_are_valid_and_derive_nothing(
    stream: str | None, message: str
) -> None:
    unit = envelope(stream, message)
    rec = decode(unit)
    assert rec.audit is None
    assert derived(unit, rec) == []
    assert alert_ids(rec) == ("1", None)
    assert alert_labels(rec) == {}
    assert record_time_ns(rec) == 1632731804021 * 1_000_000
    assert document(unit, rec)["message"] == message


def test_an_audit_stream_without_a_stream_name_is_still_recognized() -> None:
    rec = decode(envelope(None, the_message()))
    assert rec.audit is not None and rec.audit.auditID == AUDIT_ID


@pytest.mark.parametrize(
    ("unit", "reason"),
    [
        (envelope("kube-apiserver-audit-1", "not json"), "message"),
        (envelope("kube-apiserver-audit-1", '{"kind":"Event"}'), "auditID"),
        (b'{"logStream":"x"}', "message"),
        (b'{"message":5}', "not an EKS log event envelope"),
        (b"", "invalid JSON"),
    ],
)
def test_malformed_envelopes_say_why(unit: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        decode(unit)


def test_a_log_event_without_a_message_is_malformed_in_place() -> None:
    doc = payload()
    doc["logEvents"].append({"id": "2", "timestamp": 1})
    units = events_of_subscription(json.dumps(doc).encode())
    assert isinstance(units[0], bytes)
    assert isinstance(units[1], MalformedInput) and "logEvents[1]" in str(units[1])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%%%", "neither JSON, gzip nor base64"),
        (base64.b64encode(b"plain"), "not gzip"),
        (gzip.compress(b"{")[:-12], "truncated"),
        (gzip.compress(b"[1,2]"), "not a CloudWatch Logs subscription payload"),
        (b'{"messageType":"DATA_MESSAGE"}', "missing logEvents"),
        (b"\x1f\x8bnot really gzip", "invalid gzip"),
    ],
)
def test_unusable_deliveries_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        events_of_subscription(data)


def test_a_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b" " * (MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(MalformedInput, match="inflates past"):
        events_of_subscription(bomb)


def test_a_bad_filter_log_events_page_says_why() -> None:
    with pytest.raises(MalformedInput, match="FilterLogEvents"):
        events_of_filter_log_events(b'{"nextToken": "x"}')
    [bad] = events_of_filter_log_events(b'{"events": [{"eventId": "1"}]}')
    assert isinstance(bad, MalformedInput) and "events[0]" in str(bad)


def test_format_object() -> None:
    assert FORMAT.source == cloud_eks.SOURCE == "eks_audit"
    [unit] = ok(events_of_subscription(SUBSCRIPTION.read_bytes()))
    view = FORMAT.decode(unit)
    assert isinstance(view, EksRecord)
    assert FORMAT.time_ns(view) == record_time_ns(view)


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
    for fn in (events_of_subscription, events_of_filter_log_events):
        try:
            units = fn(data)
        except MalformedInput:
            continue
        for unit in units:
            if isinstance(unit, bytes):
                exercise(unit)


@given(st.binary(max_size=200))
def test_any_gzip_payload_gives_units_or_malformed_input(data: bytes) -> None:
    for wrapped in (gzip.compress(data), base64.b64encode(gzip.compress(data))):
        with contextlib.suppress(MalformedInput):
            events_of_subscription(wrapped)


@given(st.sampled_from(["kube-apiserver-audit-1", "authenticator-1", None]), st.text(max_size=60))
def test_any_message_gives_a_view_or_malformed_input(stream: str | None, message: str) -> None:
    exercise(envelope(stream, message))
    exercise(envelope(stream, message + "\ud800"))


def firehose(second: str) -> bytes:
    """Two deliveries back to back, as Firehose writes them, the second as given."""
    return gzip.compress(json.dumps(payload()).encode() + second.encode())


@pytest.mark.parametrize(
    ("replace", "reason"),
    [
        # Python's JSON reader takes these, msgspec (and JSON) do not: they were re-encoded
        # (UnicodeEncodeError) or silently read as null (NaN)
        (('"timestamp": ', '"timestamp": NaN, "x": '), "invalid JSON"),
        (('"message": "', '"message": "\\ud800'), "invalid JSON"),
    ],
)
def test_a_bad_document_among_concatenated_ones_is_malformed(
    replace: tuple[str, str], reason: str
) -> None:
    second = json.dumps(payload()).replace(*replace, 1)
    assert second != json.dumps(payload())
    with pytest.raises(MalformedInput, match=reason):
        events_of_subscription(firehose(second))


def test_a_long_integer_among_concatenated_documents_is_malformed_in_place() -> None:
    """int() refuses 4,301 digits: Python's JSON reader raised ValueError on it."""
    doc = payload()
    doc["logEvents"][0]["timestamp"] = 0
    text = json.dumps(doc).replace('"timestamp": 0', '"timestamp": ' + "9" * 5000)
    first, bad = events_of_subscription(firehose(text))
    assert isinstance(first, bytes)
    assert isinstance(bad, MalformedInput)
    assert "logEvents[0]" in str(bad) and "out of range" in str(bad)
