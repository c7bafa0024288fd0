"""The Kubernetes audit format: real audit.k8s.io/v1 and v1beta1 events in, views or precise
reasons out. Every input here is a captured event (audit2rbac's demo logs, Falco's traces)
or a container built around captured events."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from conftest import FIXTURES, TRACES
from logwarden.normalize import k8s_audit
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.k8s_audit import (
    FORMAT,
    AuditEvent,
    alert_ids,
    decode,
    decode_raw,
    event_time_ns,
    parse_rfc3339_ns,
)

DEMO_V1 = FIXTURES / "audit" / "demo.log"
DEMO_V1BETA1 = FIXTURES / "audit" / "demo-full-v1beta1-2017.log"
TRACE_FILES = sorted(p for p in TRACES.glob("*.json") if p.name != "fal_01_003.json")


def lines_of(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def utc_ns(*parts: int, frac_ns: int = 0) -> int:
    """Nanoseconds since the epoch of a UTC date and time, computed independently."""
    return int(datetime(*parts, tzinfo=UTC).timestamp()) * 1_000_000_000 + frac_ns


def without(line: bytes, *names: str) -> bytes:
    doc = json.loads(line)
    for name in names:
        del doc[name]
    return json.dumps(doc).encode()


def event_list(items: list[bytes]) -> bytes:
    return (
        b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":['
        + b",".join(items)
        + b"]}"
    )


def assert_matches_source(view: AuditEvent, doc: dict[str, Any]) -> None:
    """The eagerly decoded members equal what the JSON says."""
    assert view.kind == doc.get("kind")
    assert view.apiVersion == doc.get("apiVersion")
    assert view.level == doc.get("level")
    assert view.auditID == doc["auditID"]
    assert view.stage == doc["stage"]
    assert view.verb == doc["verb"]
    assert view.requestURI == doc.get("requestURI")
    assert view.sourceIPs == doc.get("sourceIPs")
    assert view.userAgent == doc.get("userAgent")
    assert view.stageTimestamp == doc.get("stageTimestamp")
    assert view.timestamp == doc.get("timestamp")
    assert view.requestReceivedTimestamp == doc.get("requestReceivedTimestamp")
    assert view.user is not None
    assert view.user.username == doc["user"].get("username")
    assert view.user.groups == doc["user"].get("groups")
    if "impersonatedUser" in doc:
        assert view.impersonatedUser is not None
        assert view.impersonatedUser.username == doc["impersonatedUser"]["username"]
    else:
        assert view.impersonatedUser is None
    ref = doc.get("objectRef")
    if ref is None:
        assert view.objectRef is None
    else:
        assert view.objectRef is not None
        for name in ("resource", "namespace", "name", "subresource", "apiGroup", "apiVersion"):
            assert getattr(view.objectRef, name) == ref.get(name)
    status = doc.get("responseStatus")
    if status is not None:
        assert view.responseStatus is not None
        assert view.responseStatus.code == status.get("code")
        assert view.responseStatus.reason == status.get("reason")


# --- real events ----------------------------------------------------------------------------


def test_every_v1_line_of_the_demo_log_decodes_to_its_members() -> None:
    lines = lines_of(DEMO_V1)
    assert len(lines) == 37
    for line in lines:
        view = decode(line)
        assert isinstance(view, AuditEvent)
        doc = json.loads(line)
        assert_matches_source(view, doc)
        assert view.apiVersion == "audit.k8s.io/v1"
        assert view.impersonatedUser is not None  # every demo event impersonates
    first = decode(lines[0])
    assert isinstance(first, AuditEvent)
    assert first.auditID == "033d17af-082d-4b24-aa22-627752e83d71"
    assert first.responseStatus is not None
    assert (first.responseStatus.code, first.responseStatus.reason) == (403, "Forbidden")


def test_every_v1beta1_line_of_the_2017_log_decodes_with_its_timestamp() -> None:
    lines = lines_of(DEMO_V1BETA1)
    stages: Counter[str] = Counter()
    impersonated = 0
    for line in lines:
        view = decode(line)
        assert isinstance(view, AuditEvent)
        doc = json.loads(line)
        assert_matches_source(view, doc)
        assert view.apiVersion == "audit.k8s.io/v1beta1"
        assert view.stageTimestamp is None
        assert view.timestamp is not None
        assert event_time_ns(view) == parse_rfc3339_ns(doc["timestamp"])
        stages[view.stage or ""] += 1
        impersonated += view.impersonatedUser is not None
    # the counts SOURCES.md states for this file
    assert len(lines) == 757
    assert stages == {"RequestReceived": 320, "ResponseComplete": 437}
    assert impersonated == 37


@pytest.mark.parametrize("trace", TRACE_FILES, ids=lambda p: p.stem)
def test_falco_trace_events_decode(trace: Path) -> None:
    lines = lines_of(trace)
    assert lines
    for line in lines:
        view = FORMAT.decode(line)
        assert isinstance(view, AuditEvent)
        doc = json.loads(line)
        assert_matches_source(view, doc)
        assert FORMAT.time_ns(view) == parse_rfc3339_ns(doc["stageTimestamp"])
        assert FORMAT.alert_ids(view) == (doc["auditID"], doc["stage"])


def test_falco_trace_event_members_in_detail() -> None:
    (line,) = lines_of(TRACES / "create_configmap.json")
    view = decode(line)
    assert isinstance(view, AuditEvent)
    assert view.auditID == "155b887c-c27c-4fdb-9667-999f74512d0a"
    assert view.verb == "create"
    assert view.level == "RequestResponse"
    assert view.sourceIPs == ["192.168.99.1"]
    assert view.user is not None
    assert view.user.username == "minikube-user"
    assert view.user.groups == ["system:masters", "system:authenticated"]
    assert view.objectRef is not None
    assert view.objectRef.resource == "configmaps"
    assert view.objectRef.namespace == "default"
    assert view.objectRef.name == "my-config"
    assert view.objectRef.uid == "b4952dc3-d670-11e5-8cd0-68f728db1985"
    assert view.responseStatus is not None
    assert view.responseStatus.code == 201
    assert view.responseStatus.status is None


# --- lazily kept members --------------------------------------------------------------------


def test_request_response_and_annotations_stay_raw_json() -> None:
    (line,) = lines_of(TRACES / "create_configmap.json")
    doc = json.loads(line)
    view = decode(line)
    assert isinstance(view, AuditEvent)
    for name in ("requestObject", "responseObject", "annotations"):
        raw = getattr(view, name)
        assert isinstance(raw, msgspec.Raw)
        # the bytes are the member exactly as it appears in the line, not re-encoded
        assert bytes(raw) in line
        assert msgspec.json.decode(raw) == doc[name]
    assert msgspec.json.decode(view.annotations) == {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": "",
    }
    assert msgspec.json.decode(view.requestObject)["data"]["ui.properties"].startswith(
        "color.good=purple"
    )


def test_absent_raw_members_are_empty() -> None:
    line = lines_of(DEMO_V1)[0]
    assert b"requestObject" not in line
    view = decode(line)
    assert isinstance(view, AuditEvent)
    for name in ("requestObject", "responseObject", "annotations"):
        raw = getattr(view, name)
        assert isinstance(raw, msgspec.Raw)
        assert bytes(raw) == b""


def test_raw_members_are_not_validated_eagerly() -> None:
    # a requestObject of an unexpected shape does not make the event malformed
    doc = json.loads(lines_of(DEMO_V1)[0])
    doc["requestObject"] = ["not", "an", {"object": 1}]
    view = decode(json.dumps(doc).encode())
    assert isinstance(view, AuditEvent)
    assert msgspec.json.decode(view.requestObject) == ["not", "an", {"object": 1}]


# --- containers -----------------------------------------------------------------------------


def test_event_list_yields_item_bytes_and_views() -> None:
    lines = lines_of(DEMO_V1)[:3]
    items = decode(event_list(lines))
    assert isinstance(items, list)
    assert [raw for raw, _ in items] == lines
    for (raw, view), line in zip(items, lines, strict=True):
        assert isinstance(view, AuditEvent)
        assert view.auditID == json.loads(line)["auditID"]
        assert raw == line


def test_event_list_reports_a_bad_item_by_index_and_keeps_the_others() -> None:
    good = lines_of(DEMO_V1)
    no_auditid = without(good[1], "auditID")
    items = decode(event_list([good[0], no_auditid, good[2], b'{"kind": 0}']))
    assert isinstance(items, list)
    assert len(items) == 4
    assert isinstance(items[0][1], AuditEvent)
    assert isinstance(items[2][1], AuditEvent)
    bad = items[1][1]
    assert isinstance(bad, MalformedInput)
    assert str(bad) == "items[1]: not a Kubernetes audit event: missing auditID"
    assert items[1][0] == no_auditid
    kind = items[3][1]
    assert isinstance(kind, MalformedInput)
    assert str(kind).startswith("items[3]: not a Kubernetes audit event: ")
    assert "`$.kind`" in str(kind)


def test_event_list_of_mixed_versions() -> None:
    v1 = lines_of(DEMO_V1)[0]
    v1beta1 = lines_of(DEMO_V1BETA1)[0]
    trace = lines_of(TRACES / "attach_pod.json")[0]
    items = decode(event_list([v1beta1, v1, trace]))
    assert isinstance(items, list)
    assert all(isinstance(view, AuditEvent) for _, view in items)
    versions = [view.apiVersion for _, view in items if isinstance(view, AuditEvent)]
    # Falco's traces carry no apiVersion
    assert versions == ["audit.k8s.io/v1beta1", "audit.k8s.io/v1", None]


def test_empty_event_list_has_no_items() -> None:
    # an EventList with no items carries no event and nothing to report
    assert decode(event_list([])) == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"kind":"EventList","items":null}', "not a Kubernetes audit EventList: missing items"),
        (b'{"kind":"EventList"}', "not a Kubernetes audit EventList: missing items"),
        (
            b'{"kind":"EventList","items":{}}',
            "not a Kubernetes audit EventList: Expected `array | null`, got `object` - at "
            "`$.items`",
        ),
    ],
)
def test_event_list_without_a_list_of_items_is_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput) as info:
        decode(data)
    assert str(info.value) == reason


def test_json_array_yields_item_bytes_and_views() -> None:
    lines = lines_of(DEMO_V1BETA1)[:4]
    data = b"  [\n" + b",\n".join(lines) + b"\n]\n"
    items = decode(data)
    assert isinstance(items, list)
    assert [raw for raw, _ in items] == lines
    assert [view.auditID for _, view in items if isinstance(view, AuditEvent)] == [
        json.loads(line)["auditID"] for line in lines
    ]


def test_json_array_reports_bad_items_by_index() -> None:
    good = lines_of(DEMO_V1)
    items = decode(b"[" + b",".join([good[0], b"42", without(good[1], "verb")]) + b"]")
    assert isinstance(items, list)
    views = [view for _, view in items]
    assert isinstance(views[0], AuditEvent)
    assert isinstance(views[1], MalformedInput)
    assert str(views[1]) == "[1]: not a Kubernetes audit event: Expected `object`, got `int`"
    assert isinstance(views[2], MalformedInput)
    assert str(views[2]) == "[2]: not a Kubernetes audit event: missing verb"


def test_json_array_of_event_lists_is_flattened() -> None:
    lines = lines_of(DEMO_V1)
    data = b"[" + event_list(lines[:2]) + b"," + lines[2] + b"," + event_list(lines[3:5]) + b"]"
    items = decode(data)
    assert isinstance(items, list)
    assert [raw for raw, _ in items] == lines[:5]
    assert all(isinstance(view, AuditEvent) for _, view in items)


def test_pretty_printed_documents_decode_whole() -> None:
    docs = [json.loads(line) for line in lines_of(DEMO_V1)[:3]]
    pretty_list = json.dumps({"kind": "EventList", "items": docs}, indent=2).encode()
    pretty_array = json.dumps(docs, indent=4).encode()
    for data in (pretty_list, pretty_array):
        items = decode(data)
        assert isinstance(items, list)
        assert [json.loads(raw) for raw, _ in items] == docs
        assert [view.auditID for _, view in items if isinstance(view, AuditEvent)] == [
            d["auditID"] for d in docs
        ]


def test_an_event_list_item_must_be_an_event() -> None:
    line = lines_of(DEMO_V1)[0]
    nested = event_list([line])
    with pytest.raises(MalformedInput) as info:
        decode_raw(nested)
    assert str(info.value) == (
        'not a Kubernetes audit event: kind is "EventList", expected "Event"'
    )
    assert isinstance(decode_raw(line), AuditEvent)


# --- malformed input ------------------------------------------------------------------------


def test_falco_kind_zero_trace_is_malformed() -> None:
    (data,) = lines_of(TRACES / "fal_01_003.json")
    assert json.loads(data) == {"kind": 0}
    with pytest.raises(MalformedInput) as info:
        decode(data)
    assert str(info.value) == (
        "not a Kubernetes audit event: Expected `str | null`, got `int` - at `$.kind`"
    )
    assert info.value.truncated is False


_V1 = lines_of(DEMO_V1)[0]
_TRACE = lines_of(TRACES / "create_configmap.json")[0]
_COLON_AT = _V1.index(b'"auditID"') + len(b'"auditID"')  # where the inserted comma sits
_NO_TIME = "not a Kubernetes audit event: missing stageTimestamp (v1) and timestamp (v1beta1)"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(
            b"kube-apiserver: audit.go:42 started",
            "invalid JSON: JSON is malformed: invalid character (byte 0)",
            id="not-json",
        ),
        pytest.param(
            _V1.replace(b'"auditID"', b'"auditID",', 1),
            f"invalid JSON: JSON is malformed: expected ':' (byte {_COLON_AT})",
            id="invalid-json",
        ),
        pytest.param(
            _V1.replace(b'"kind":"Event"', b'"kind":"Pod"', 1),
            'not a Kubernetes audit event: kind is "Pod", expected "Event"',
            id="kind-pod",
        ),
        pytest.param(
            without(_V1, "auditID"),
            "not a Kubernetes audit event: missing auditID",
            id="no-auditID",
        ),
        pytest.param(
            without(_V1, "stage"), "not a Kubernetes audit event: missing stage", id="no-stage"
        ),
        pytest.param(
            without(_V1, "verb"), "not a Kubernetes audit event: missing verb", id="no-verb"
        ),
        pytest.param(without(_V1, "timestamp"), _NO_TIME, id="v1beta1-style-no-timestamp"),
        pytest.param(
            without(_TRACE, "stageTimestamp", "timestamp"), _NO_TIME, id="v1-no-timestamps"
        ),
        pytest.param(
            _V1.replace(b'"verb":"list"', b'"verb":7', 1),
            "not a Kubernetes audit event: Expected `str | null`, got `int` - at `$.verb`",
            id="verb-not-a-string",
        ),
        pytest.param(
            b"null", "not a Kubernetes audit event: Expected `object`, got `null`", id="null"
        ),
        pytest.param(
            b'"ResponseComplete"',
            "not a Kubernetes audit event: Expected `object`, got `str`",
            id="string",
        ),
    ],
)
def test_malformed_input_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput) as info:
        decode(data)
    assert str(info.value) == reason
    assert info.value.truncated is False


def test_event_without_stage_timestamp_but_with_timestamp_is_accepted() -> None:
    view = decode(without(_TRACE, "stageTimestamp"))
    assert isinstance(view, AuditEvent)
    assert view.stageTimestamp is None


@pytest.mark.parametrize("cut", [1, 40, len(_V1) // 2, len(_V1) - 1])
def test_truncated_json_is_flagged(cut: int) -> None:
    with pytest.raises(MalformedInput) as info:
        decode(_V1[:cut])
    assert str(info.value) == "invalid JSON: Input data was truncated"
    assert info.value.truncated is True


@pytest.mark.parametrize("data", [b"", b"\n", b"{\n", b'{"kind": "EventList",\n'])
def test_start_of_a_pretty_printed_object_is_flagged_truncated(data: bytes) -> None:
    with pytest.raises(MalformedInput) as info:
        decode(data)
    assert info.value.truncated is True


@pytest.mark.parametrize(
    "data",
    [b"[\n", b'[\n  {\n    "kind": "Event",\n', b"[" + _V1],
    ids=["bracket", "bracket-brace", "first-item"],
)
def test_start_of_a_pretty_printed_array_is_flagged_truncated(data: bytes) -> None:
    with pytest.raises(MalformedInput) as info:
        decode(data)
    assert str(info.value) == "invalid JSON: Input data was truncated"
    assert info.value.truncated is True


def test_invalid_utf8_in_a_string_member_is_malformed() -> None:
    data = _V1.replace(b'"username":"bob"', b'"username":"b\xf6b"', 1)
    assert data != _V1
    with pytest.raises(MalformedInput):
        decode(data)


def test_invalid_utf8_in_an_event_list_item_is_reported_per_item() -> None:
    lines = lines_of(DEMO_V1)
    bad = lines[1].replace(b'"::1"', b'"\xf6"', 1)
    assert bad != lines[1]
    items = decode(event_list([lines[0], bad]))
    assert isinstance(items, list)
    assert isinstance(items[0][1], AuditEvent)
    assert isinstance(items[1][1], MalformedInput)
    assert str(items[1][1]).startswith("items[1]: ")


def test_malformed_input_is_a_value_error_with_a_truncated_flag() -> None:
    exc = MalformedInput("why")
    assert isinstance(exc, ValueError)
    assert str(exc) == "why"
    assert exc.truncated is False
    assert MalformedInput("cut", truncated=True).truncated is True
    with pytest.raises(TypeError):
        MalformedInput("positional", True)  # type: ignore[misc]


# --- timestamps -----------------------------------------------------------------------------

_BASE = utc_ns(2024, 5, 17, 8, 0, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-17T08:00:00.123456789Z", _BASE + 123_456_789),
        ("2024-05-17T08:00:00.000000001Z", _BASE + 1),
        ("2024-05-17T08:00:00.123456Z", _BASE + 123_456_000),
        ("2024-05-17T08:00:00.120Z", _BASE + 120_000_000),
        ("2024-05-17T08:00:00.5Z", _BASE + 500_000_000),
        ("2024-05-17T08:00:00Z", _BASE),
        ("2024-05-17T08:00:00.1234567891234Z", _BASE + 123_456_789),  # beyond ns: cut
        ("2024-05-17T10:00:00+02:00", _BASE),
        ("2024-05-17T10:00:00.25+02:00", _BASE + 250_000_000),
        ("2024-05-17T03:30:00.000000007-04:30", _BASE + 7),
        ("2024-05-17T08:00:00+00:00", _BASE),
        ("2024-05-17t08:00:00.5z", _BASE + 500_000_000),
        ("2024-05-17T08:00:00z", _BASE),
        ("2024-05-17 08:00:00.5Z", _BASE + 500_000_000),
        ("2018-10-26T13:13:03.544952Z", utc_ns(2018, 10, 26, 13, 13, 3, frac_ns=544_952_000)),
        ("1969-12-31T23:59:59Z", -1_000_000_000),
    ],
)
def test_parse_rfc3339_ns(text: str, expected: int) -> None:
    assert parse_rfc3339_ns(text) == expected
    # the second call takes the cached (fast) path and must agree
    assert parse_rfc3339_ns(text) == expected


def test_cached_seconds_do_not_mix_zones() -> None:
    # the same wall-clock second in two zones is two different instants, in either order
    assert parse_rfc3339_ns("2031-03-04T05:06:07.5Z") == utc_ns(2031, 3, 4, 5, 6, 7) + 500_000_000
    assert parse_rfc3339_ns("2031-03-04T05:06:07.5+02:00") == (
        utc_ns(2031, 3, 4, 3, 6, 7) + 500_000_000
    )
    assert parse_rfc3339_ns("2032-03-04T05:06:07-01:00") == utc_ns(2032, 3, 4, 6, 6, 7)
    assert parse_rfc3339_ns("2032-03-04T05:06:07.000000009Z") == utc_ns(2032, 3, 4, 5, 6, 7) + 9


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2024-02-30T00:00:00Z", "is not a valid date and time"),
        ("2024-13-01T00:00:00Z", "is not a valid date and time"),
        ("2024-05-17T25:00:00Z", "is not a valid date and time"),
        ("2024-05-17T08:00:00.5+25:00", "is not a valid date and time"),
        ("yesterday", "is not RFC 3339"),
        ("", "is not RFC 3339"),
        ("2024-05-17T08:00:00", "is not RFC 3339"),  # no zone
        ("2024-05-17", "is not RFC 3339"),
        ("2024-05-17T08:00:00.Z", "is not RFC 3339"),
        ("2024-05-17T08:00:00.12xZ", "is not RFC 3339"),
        ("2024-05-17T08:00:00+0200", "is not RFC 3339"),
        ("2024-05-17T08:00:00 Z", "is not RFC 3339"),
        ("17/05/2024 08:00:00Z", "is not RFC 3339"),
    ],
)
def test_parse_rfc3339_ns_rejects(text: str, reason: str) -> None:
    with pytest.raises(MalformedInput) as info:
        parse_rfc3339_ns(text)
    assert str(info.value) == f"timestamp {text!r} {reason}"


def test_invalid_date_is_rejected_even_after_a_valid_one_of_the_same_shape() -> None:
    assert parse_rfc3339_ns("2024-02-29T00:00:00.5Z") == utc_ns(2024, 2, 29) + 500_000_000
    with pytest.raises(MalformedInput, match="not a valid date and time"):
        parse_rfc3339_ns("2023-02-29T00:00:00.5Z")


@pytest.mark.parametrize(
    "text",
    ["2024-05-17T08:00:00Z\n", "2024-05-17T08:00:00.\u0665Z"],
    ids=["trailing-newline", "arabic-indic-digit"],
)
def test_parse_rfc3339_ns_rejects_lookalikes(text: str) -> None:
    with pytest.raises(MalformedInput):
        parse_rfc3339_ns(text)


def test_event_time_prefers_stage_timestamp() -> None:
    view = decode(_TRACE)
    assert isinstance(view, AuditEvent)
    assert view.timestamp == "2018-10-26T13:13:03Z"
    assert view.stageTimestamp == "2018-10-26T13:13:03.544952Z"
    assert event_time_ns(view) == utc_ns(2018, 10, 26, 13, 13, 3, frac_ns=544_952_000)


def test_event_time_falls_back_to_v1beta1_timestamp() -> None:
    view = decode(lines_of(DEMO_V1BETA1)[0])
    assert isinstance(view, AuditEvent)
    assert view.stageTimestamp is None
    assert event_time_ns(view) == utc_ns(2017, 9, 11, 19, 55, 5)


def test_event_time_falls_back_when_stage_timestamp_is_empty() -> None:
    doc = json.loads(_TRACE)
    doc["stageTimestamp"] = ""
    view = decode(json.dumps(doc).encode())
    assert isinstance(view, AuditEvent)
    assert event_time_ns(view) == utc_ns(2018, 10, 26, 13, 13, 3)


def test_event_time_of_an_event_without_timestamps_is_malformed() -> None:
    with pytest.raises(MalformedInput) as info:
        event_time_ns(AuditEvent(auditID="a", stage="ResponseComplete", verb="get"))
    assert str(info.value) == "not a Kubernetes audit event: missing stageTimestamp and timestamp"


def test_event_time_with_a_bad_stage_timestamp_is_malformed() -> None:
    doc = json.loads(_TRACE)
    doc["stageTimestamp"] = "26/10/2018 13:13:03"
    view = decode(json.dumps(doc).encode())  # decoding does not parse times
    assert isinstance(view, AuditEvent)
    with pytest.raises(MalformedInput) as info:
        event_time_ns(view)
    assert str(info.value) == "timestamp '26/10/2018 13:13:03' is not RFC 3339"


def test_event_time_fast_path_agrees_with_the_parser() -> None:
    # every distinct stageTimestamp of the Falco traces, twice (cold, then cached)
    for trace in TRACE_FILES:
        for line in lines_of(trace):
            view = decode(line)
            assert isinstance(view, AuditEvent)
            assert view.stageTimestamp is not None
            text = view.stageTimestamp
            seconds = datetime.fromisoformat(text[:19] + "+00:00").timestamp()
            fraction = text[20:-1].ljust(9, "0") if text[19] == "." else "0"
            expected = int(seconds) * 1_000_000_000 + int(fraction)
            assert event_time_ns(view) == expected
            assert event_time_ns(view) == expected


# --- the format object ----------------------------------------------------------------------


def test_format_object() -> None:
    assert FORMAT.source == "k8s_audit" == k8s_audit.SOURCE
    line = lines_of(TRACES / "attach_pod.json")[0]
    view = FORMAT.decode(line)
    assert isinstance(view, AuditEvent)
    assert (
        FORMAT.time_ns(view)
        == event_time_ns(view)
        == parse_rfc3339_ns(json.loads(line)["stageTimestamp"])
    )
    assert FORMAT.alert_ids(view) == alert_ids(view)
    assert FORMAT.alert_ids(view) == ("14933b4e-7b09-4964-af09-b7987367e1ba", "ResponseStarted")
    items = FORMAT.decode(event_list([line]))
    assert isinstance(items, list)
    assert items[0][0] == line
    with pytest.raises(MalformedInput):
        FORMAT.decode(b'{"kind": 0}')


def test_alert_ids_of_an_event_without_ids() -> None:
    assert alert_ids(AuditEvent()) == (None, None)


def test_a_number_no_float_holds_is_read_exactly() -> None:
    from decimal import Decimal

    from logwarden.normalize.k8s_audit import json_value

    assert json_value(b'{"x": 1e999, "y": 1.5, "z": 3}') == {
        "x": Decimal("1E+999"),
        "y": 1.5,
        "z": 3,
    }
    # invalid UTF-8 in a string (read as U+FFFD) as well
    assert json_value(b'{"a": "\xff", "x": 1e999}') == {"a": "\ufffd", "x": Decimal("1E+999")}


def test_json_nested_too_deeply_is_malformed_not_a_crash() -> None:
    import pytest

    from logwarden.normalize.base import MalformedInput
    from logwarden.normalize.k8s_audit import decode, json_value

    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    event = b'{"kind":"Event","auditID":"x","stage":"ResponseComplete","verb":"get",'
    with pytest.raises(MalformedInput, match="nested too deeply"):
        decode(event + b'"stageTimestamp":"2024-05-17T08:00:00Z","requestObject":' + deep + b"}")
    with pytest.raises(MalformedInput, match="nested too deeply"):
        json_value(deep)


def test_an_integer_longer_than_int_reads_is_read_exactly() -> None:
    """Python's int() refuses more than 4,300 digits; msgspec then raised ValidationError
    out of json_value (and out of every cloud format's document())."""
    from decimal import Decimal

    from logwarden.normalize.k8s_audit import json_value

    long = "9" * 5000
    value = json_value(f'{{"n": {long}, "m": [-{long}, 3], "x": 1e999}}'.encode())
    assert value == {"n": Decimal(long), "m": [Decimal("-" + long), 3], "x": Decimal("1E+999")}
    # with invalid UTF-8 in a string as well (read as U+FFFD)
    assert json_value(f'{{"a": "\xff", "n": {long}}}'.encode("latin-1")) == {
        "a": "\ufffd",
        "n": Decimal(long),
    }
