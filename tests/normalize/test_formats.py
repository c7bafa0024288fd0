"""What every format module must do with hostile input (normalize/base.py): a unit that is
not an event of its format is `MalformedInput` with the reason, never another exception,
and every time a format gives is one a record may have (`records.format_time_ns` prints
it). Each case starts from a real sample of the format and changes one thing."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from conftest import FIXTURES
from logwarden.normalize import FORMATS, cloud_aks, cloud_eks, cloud_gke, journald
from logwarden.normalize.base import MAX_TIME_NS, MIN_TIME_NS, MalformedInput, checked_time_ns
from logwarden.records import format_time_ns

DEEP = "[" * 5000 + "]" * 5000  # deeper than msgspec or Python's json can follow


def first(units: list[bytes | MalformedInput]) -> bytes:
    unit = units[0]
    assert isinstance(unit, bytes)
    return unit


def sample(source: str) -> dict[str, Any]:
    """A real unit of the format `source`, as JSON."""
    if source == "aks_audit":
        data = (FIXTURES / "cloud/aks/sysdiglabs-aks-audit-log-event.json").read_bytes()
        unit = first(cloud_aks.records_of(data))
    elif source == "eks_audit":
        data = (FIXTURES / "cloud/eks/SYNTHETIC-cloudwatch-subscription-envelope.json").read_bytes()
        unit = first(cloud_eks.events_of_subscription(data))
    elif source == "gke_audit":
        data = (FIXTURES / "cloud/gke/SYNTHETIC-gke-cloudaudit-entries.jsonl").read_bytes()
        unit = first(cloud_gke.entries_of(data))
    elif source == "journald":
        data = (FIXTURES / "journald/beats-journalctl-sample-journal-event.json").read_bytes()
        unit = first(journald.entries_of_json_file(data))
    elif source == "hubble_flow":
        path = FIXTURES / "network/hubble/hubble-otel-basic-sample-10-flows.json"
        unit = path.read_bytes().splitlines()[0]
    elif source == "k8s_event":
        unit = (FIXTURES / "k8s_events/k8s-openapi-test-eventsv1-event-kind-2023.json").read_bytes()
    elif source == "k8s_audit":
        unit = (FIXTURES / "audit/demo.log").read_bytes().splitlines()[0]
    else:
        assert source == "container_log"
        return {"time": "2025-02-03T15:53:14.123456789Z", "stream": "stderr", "log": "x"}
    doc: dict[str, Any] = json.loads(unit)
    return doc


JSON_SOURCES = sorted(set(FORMATS) - {"ingress_nginx", "nginx_access", "envoy_access"})


def test_the_json_sources_are_every_format_but_the_access_logs() -> None:
    assert len(JSON_SOURCES) == len(FORMATS) - 3
    for source in JSON_SOURCES:
        fmt = FORMATS[source]
        fmt.time_ns(fmt.decode(json.dumps(sample(source)).encode()))


@pytest.mark.parametrize("source", JSON_SOURCES)
def test_a_member_nested_too_deeply_is_malformed(source: str) -> None:
    """msgspec raises RecursionError past ~1,000 levels, also in a member it only skips."""
    text = json.dumps(sample(source))
    data = (text[:1] + f'"deep": {DEEP}, ' + text[1:]).encode()
    with pytest.raises(MalformedInput, match=r"nested too deeply|recursion"):
        FORMATS[source].decode(data)


@pytest.mark.parametrize("source", JSON_SOURCES)
def test_a_unit_that_is_only_deep_nesting_is_malformed(source: str) -> None:
    with pytest.raises(MalformedInput):
        FORMATS[source].decode(DEEP.encode())


@pytest.mark.parametrize(
    ("source", "split"),
    [
        ("aks_audit", cloud_aks.records_of),
        ("gke_audit", cloud_gke.entries_of),
        ("journald", journald.entries_of_json_file),
    ],
    ids=["aks", "gke", "journald"],
)
@pytest.mark.parametrize(
    "data",
    [
        DEEP.encode(),
        b'{"records": ' + DEEP.encode() + b"}",
        b'{"a": 1}\n{"a": ' + DEEP.encode() + b"}\n",
        b'{\n  "a": ' + DEEP.encode() + b"\n}\n",
    ],
    ids=["array", "object", "json-lines", "pretty"],
)
def test_a_delivery_nested_too_deeply_gives_malformed_units(
    source: str, split: Any, data: bytes
) -> None:
    """Each unit is malformed where it is split off, or where it is decoded."""
    units = split(data)
    assert units
    for unit in units:
        if isinstance(unit, bytes):
            with pytest.raises(MalformedInput):
                FORMATS[source].decode(unit)


@pytest.mark.parametrize(
    "unit",
    [DEEP.encode(), b'{"awslogs": ' + DEEP.encode() + b"}", b'{"a": ' + DEEP.encode() + b"}"],
    ids=["array", "lambda", "object"],
)
def test_an_eks_delivery_nested_too_deeply_is_malformed(unit: bytes) -> None:
    with pytest.raises(MalformedInput):
        cloud_eks.events_of_subscription(unit)
    with pytest.raises(MalformedInput):
        cloud_eks.events_of_filter_log_events(unit)


# --- times ------------------------------------------------------------------------------

#: RFC 3339 times whose offset takes them out of years 1 to 9999 in UTC (Go writes and
#: reads them; Python's datetime holds none of them)
OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.5-00:01"]


def with_time(source: str, text: str) -> bytes:
    """The sample of `source` with its event time (the one `time_ns` reads) set to `text`."""
    doc = sample(source)
    if source in ("aks_audit", "eks_audit"):
        key = "message" if source == "eks_audit" else "log"
        holder = doc if source == "eks_audit" else doc["properties"]
        event = json.loads(holder[key])
        event["stageTimestamp"] = text
        holder[key] = json.dumps(event)
    elif source == "hubble_flow":
        doc["flow"]["time"] = text
    elif source == "k8s_event":
        doc["deprecatedLastTimestamp"] = text
    elif source in ("gke_audit", "k8s_audit", "container_log"):
        doc[{"gke_audit": "timestamp", "k8s_audit": "stageTimestamp"}.get(source, "time")] = text
    else:
        assert source == "journald"
        doc["__REALTIME_TIMESTAMP"] = text
    return json.dumps(doc).encode()


RFC3339_SOURCES = sorted(set(JSON_SOURCES) - {"journald"})


@pytest.mark.parametrize("text", OUT_OF_RANGE)
@pytest.mark.parametrize("source", RFC3339_SOURCES)
def test_an_rfc3339_time_out_of_range_is_malformed(source: str, text: str) -> None:
    """Before, `time_ns` gave a number that `format_time_ns` (every alert's time) could not
    print: ValueError "year 0 is out of range" when a rule fired."""
    fmt = FORMATS[source]
    with pytest.raises(MalformedInput, match="out of range"):
        fmt.time_ns(fmt.decode(with_time(source, text)))


@pytest.mark.parametrize("source", RFC3339_SOURCES)
def test_the_last_and_first_instants_are_in_range(source: str) -> None:
    fmt = FORMATS[source]
    for text, ns in (
        ("9999-12-31T23:59:59.999999999Z", MAX_TIME_NS),
        ("0001-01-01T00:00:00Z", MIN_TIME_NS),
        ("0001-01-01T01:00:00+01:00", MIN_TIME_NS),
    ):
        assert fmt.time_ns(fmt.decode(with_time(source, text))) == ns
        format_time_ns(ns)


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("journald", with_time("journald", "253402300800000000")),  # year 10000, in µs
        ("journald", with_time("journald", "9" * 5000)),  # int() refuses 4,301 digits
        (
            "eks_audit",
            b'{"logStream":"authenticator-1","timestamp":253402300800000,"message":"x"}',
        ),
        ("hubble_flow", b'{"time":{"seconds":253402300800,"nanos":0},"verdict":1}'),
        (
            "nginx_access",
            b'1.2.3.4 - - [01/Jan/0001:00:00:00 +0100] "GET / HTTP/1.1" 200 1 "-" "-"',
        ),
        (
            "envoy_access",
            b'[0001-01-01T00:00:00+01:00] "GET / HTTP/1.1" 200 - 0 1 2 - "-" "-" "-" "-" "-"',
        ),
    ],
)
def test_a_time_of_another_form_out_of_range_is_malformed(source: str, data: bytes) -> None:
    fmt = FORMATS[source]
    with pytest.raises(MalformedInput, match="out of range"):
        fmt.time_ns(fmt.decode(data))


def test_checked_time_ns_bounds() -> None:
    assert checked_time_ns(MAX_TIME_NS, "t") == MAX_TIME_NS
    assert checked_time_ns(MIN_TIME_NS, "t") == MIN_TIME_NS
    assert format_time_ns(MAX_TIME_NS) == "9999-12-31T23:59:59.999999999Z"
    assert format_time_ns(MIN_TIME_NS).endswith("1-01-01T00:00:00.000000000Z")
    for ns in (MAX_TIME_NS + 1, MIN_TIME_NS - 1):
        with pytest.raises(MalformedInput, match="t is out of range: years 1 to 9999"):
            checked_time_ns(ns, "t")


def test_any_time_a_format_gives_can_be_printed() -> None:
    """The point of the bounds: an alert prints its record's time."""
    for source in RFC3339_SOURCES:
        fmt = FORMATS[source]
        for text in ("2024-02-29T23:59:59.123456789+14:00", "1970-01-01T00:00:00-12:00"):
            msgspec.json.encode(format_time_ns(fmt.time_ns(fmt.decode(with_time(source, text)))))


def test_the_first_and_last_instants_print_as_rfc3339() -> None:
    # strftime's %Y left the year unpadded ("1-01-01T..."), which no RFC 3339 reader takes
    assert format_time_ns(MIN_TIME_NS) == "0001-01-01T00:00:00.000000000Z"
    assert format_time_ns(MAX_TIME_NS) == "9999-12-31T23:59:59.999999999Z"
