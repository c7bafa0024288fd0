"""The Hubble flow format: real `hubble observe -o jsonpb` output and exporter lines in,
flows in the current shape or precise reasons out (tests/fixtures/network/SOURCES.md).

The legacy lines below are written here in the shape Hubble before 0.8 printed for
``-o json`` (Go's encoding/json of the Flow struct); no captured sample was available.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.hubble import FORMAT, SOURCE, Flow, decode, document, flow_time_ns

HUBBLE = FIXTURES / "network" / "hubble"
SAMPLES = sorted(HUBBLE.glob("hubble-otel-basic-sample-*.json"))
EXPORTER = HUBBLE / "cilium-docs-hubble-exporter-dropped.jsonl"


def lines_of(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def ns_of(text: str, frac_ns: int) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 1_000_000_000 + frac_ns


ALL = [line for path in [*SAMPLES, EXPORTER] for line in lines_of(path)]
LEGACY = (
    b'{"time":{"seconds":1692619938,"nanos":510175415},"verdict":2,"drop_reason":133,'
    b'"IP":{"source":"10.244.1.60","destination":"10.244.1.5","ipVersion":1},'
    b'"l4":{"Protocol":{"TCP":{"source_port":44916,"destination_port":80,"flags":{"SYN":true}}}},'
    b'"source":{"ID":12,"identity":5,"namespace":"default","labels":["k8s:class=xwing"],'
    b'"pod_name":"xwing"},"destination":{"namespace":"default",'
    b'"pod_name":"deathstar-7848d6c4d5-th9v2"},"Type":1,"node_name":"kind-worker",'
    b'"event_type":{"type":1,"sub_type":133},"traffic_direction":1,'
    b'"is_reply":{"value":false},"Summary":"TCP Flags: SYN"}'
)
LEGACY_DNS = (
    b'{"time":{"seconds":1633346546,"nanos":592280339},"verdict":1,'
    b'"IP":{"source":"10.156.2.2","destination":"10.156.2.3","ipVersion":1},'
    b'"l4":{"Protocol":{"UDP":{"source_port":59102,"destination_port":53}}},'
    b'"source":{"namespace":"kube-system","pod_name":"node-local-dns-88zrp"},'
    b'"destination":{"namespace":"kube-system"},"Type":2,"node_name":"gke-node",'
    b'"l7":{"type":1,"Record":{"Dns":{"query":"example.com.","qtypes":["A"]}}},'
    b'"reply":true,"traffic_direction":2,"trace_observation_point":101}'
)


def test_format_object() -> None:
    assert FORMAT.source == SOURCE == "hubble_flow"
    assert FORMAT.decode is decode
    assert FORMAT.document is document
    assert FORMAT.time_ns is flow_time_ns


def test_every_sample_flow_decodes() -> None:
    """The sample files hold 1,916 flows (the SPDX header SOURCES.md mentions is not in
    the copies; `test_comment_lines_are_malformed` covers it)."""
    counts: Counter[str] = Counter()
    for line in ALL:
        view = decode(line)
        assert isinstance(view, Flow)
        doc = document(line, view)
        msgspec.json.encode(doc)
        assert FORMAT.time_ns(view) > 0
        assert FORMAT.derived(line, view) == []
        counts[doc["verdict"]] += 1
        assert doc == json.loads(line)["flow"]  # already in the current shape
    assert sum(counts.values()) == 1918
    assert counts == {"FORWARDED": 1459, "REDIRECTED": 457, "DROPPED": 2}


def test_l3_l4_tcp_flow() -> None:
    line = lines_of(HUBBLE / "hubble-otel-basic-sample-10-flows.json")[0]
    view = decode(line)
    assert view.node_name == "gke-ilya-otel-demo-1-ilya-otel-demo-1-6114bb84-zr1l"
    assert flow_time_ns(view) == ns_of("2021-06-16T16:52:13+00:00", 136834446)
    assert FORMAT.alert_labels(view) == {"namespace": "bookinfo", "resource": "pods"}
    assert FORMAT.alert_ids(view) == (None, None)
    doc = document(line, view)
    assert doc["Type"] == "L3_L4"
    assert doc["IP"] == {"source": "10.0.2.16", "destination": "10.0.2.1", "ipVersion": "IPv4"}
    assert doc["l4"]["TCP"]["source_port"] == 15020
    assert doc["source"]["identity"] == 25339
    assert "k8s:app=reviews" in doc["source"]["labels"]
    assert doc["destination"] == {"identity": 1, "labels": ["reserved:host"]}
    assert doc["traffic_direction"] == "INGRESS"


def test_l7_dns_and_http_flows() -> None:
    dns = lines_of(HUBBLE / "hubble-otel-basic-sample-5-dns-flows.json")[1]
    doc = document(dns, decode(dns))
    assert doc["l7"]["dns"]["rcode"] == 3
    assert doc["l7"]["dns"]["query"].endswith("cluster.local.")
    http = lines_of(HUBBLE / "hubble-otel-basic-sample-5-http-flows.json")[0]
    doc = document(http, decode(http))
    assert doc["l7"]["http"]["method"] == "GET"
    assert doc["l7"]["http"]["url"] == "http://10.128.0.4:9990/metrics"
    assert doc["destination"]["labels"] == ["reserved:world"]


def test_udp_icmpv4_and_redirected_flows() -> None:
    kinds = Counter()
    for path in SAMPLES:
        for line in lines_of(path):
            doc = document(line, decode(line))
            kinds[next(iter(doc["l4"]))] += 1
            if doc["verdict"] == "REDIRECTED":
                assert doc["Type"] == "L3_L4"
    assert set(kinds) == {"TCP", "UDP", "ICMPv4"}
    assert kinds["ICMPv4"] == 18


def test_exporter_policy_denied_drop() -> None:
    line = lines_of(EXPORTER)[1]
    view = decode(line)
    assert FORMAT.alert_labels(view) == {"namespace": "default", "resource": "pods"}
    assert flow_time_ns(view) == ns_of("2023-08-21T12:12:18+00:00", 510175415)
    doc = document(line, view)
    assert doc["verdict"] == "DROPPED"
    assert doc["drop_reason_desc"] == "POLICY_DENIED"
    assert doc["l4"]["TCP"]["flags"] == {"SYN": True}
    assert doc["destination"]["pod_name"] == "deathstar-7848d6c4d5-th9v2"


def test_exporter_icmpv6_drop_with_empty_endpoints() -> None:
    line = lines_of(EXPORTER)[0]
    view = decode(line)
    assert FORMAT.alert_labels(view) == {}
    doc = document(line, view)
    assert doc["source"] == {} and doc["destination"] == {}
    assert doc["drop_reason_desc"] == "INVALID_SOURCE_IP"
    assert doc["l4"] == {"ICMPv6": {"type": 133}}
    assert doc["IP"]["ipVersion"] == "IPv6"


def test_field_mask_without_time_and_node_in_the_flow_takes_the_wrapper_ones() -> None:
    line = (
        b'{"flow":{"verdict":"DROPPED","destination":{"namespace":"prod"}},'
        b'"node_name":"kind-kind/kind-worker","time":"2023-08-21T12:12:18.510175415Z"}'
    )
    view = decode(line)
    assert view.node_name == "kind-kind/kind-worker"
    assert flow_time_ns(view) == ns_of("2023-08-21T12:12:18+00:00", 510175415)
    assert FORMAT.alert_labels(view) == {"namespace": "prod"}
    doc = document(line, view)
    assert doc["node_name"] == "kind-kind/kind-worker"
    assert doc["time"] == "2023-08-21T12:12:18.510175415Z"


def test_flow_uuid_is_the_alert_id() -> None:
    line = lines_of(EXPORTER)[1].replace(b'{"flow":{', b'{"flow":{"uuid":"8f1c0d2e-1",', 1)
    assert FORMAT.alert_ids(decode(line)) == ("8f1c0d2e-1", None)


def test_bare_flow_in_the_current_encoding() -> None:
    line = json.dumps(json.loads(lines_of(EXPORTER)[1])["flow"]).encode()
    view = decode(line)
    assert flow_time_ns(view) == ns_of("2023-08-21T12:12:18+00:00", 510175415)
    assert document(line, view)["drop_reason_desc"] == "POLICY_DENIED"


def test_legacy_flow_is_normalized_to_the_current_shape() -> None:
    view = decode(LEGACY)
    assert flow_time_ns(view) == ns_of("2023-08-21T12:12:18+00:00", 510175415)
    assert FORMAT.alert_labels(view) == {"namespace": "default", "resource": "pods"}
    doc = document(LEGACY, view)
    assert doc["time"] == "2023-08-21T12:12:18.510175415Z"
    assert doc["verdict"] == "DROPPED"
    assert doc["drop_reason_desc"] == "POLICY_DENIED"
    assert doc["Type"] == "L3_L4"
    assert doc["traffic_direction"] == "INGRESS"
    assert doc["IP"]["ipVersion"] == "IPv4"
    assert doc["l4"] == {
        "TCP": {"source_port": 44916, "destination_port": 80, "flags": {"SYN": True}}
    }
    assert doc["is_reply"] is False
    current = json.loads(lines_of(EXPORTER)[1])["flow"]
    for key in ("verdict", "drop_reason_desc", "IP", "l4", "time"):
        assert doc[key] == current[key]


def test_legacy_l7_flow() -> None:
    doc = document(LEGACY_DNS, decode(LEGACY_DNS))
    assert doc["l7"] == {"type": "REQUEST", "dns": {"query": "example.com.", "qtypes": ["A"]}}
    assert doc["l4"] == {"UDP": {"source_port": 59102, "destination_port": 53}}
    assert doc["Type"] == "L7"
    assert doc["traffic_direction"] == "EGRESS"
    assert doc["trace_observation_point"] == "TO_ENDPOINT"
    assert doc["is_reply"] is True


def test_unknown_enum_numbers_stay_numbers() -> None:
    line = LEGACY.replace(b'"verdict":2', b'"verdict":99').replace(
        b'"drop_reason":133', b'"drop_reason":250'
    )
    doc = document(line, decode(line))
    assert doc["verdict"] == 99
    assert doc["drop_reason_desc"] == 250


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"// SPDX-License-Identifier: Apache-2.0", "a // comment line"),
        (b"// Copyright Authors of Cilium", "a // comment line"),
        (b"{}", "neither a flow member nor a bare flow"),
        (b'{"flow":null}', "neither a flow member nor a bare flow"),
        (
            b'{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"3"},'
            b'"node_name":"n","time":"2023-01-01T00:00:00Z"}',
            "lost_events notice",
        ),
        (b'{"node_status":{"state_change":"NODE_CONNECTED"}}', "node_status notice"),
        (b'{"flow":{"verdict":"FORWARDED"}}', "missing time"),
        (b'{"verdict":"FORWARDED"}', "missing time"),
        (
            b'{"flow":{"time":"2023-01-01T00:00:00Z","source":{"namespace":3}}}',
            r"\$\.flow\.source\.namespace",
        ),
        (b'{"verdict":1,"time":{"seconds":"x"}}', r"\$\.time"),
        (b'{"verdict":1,"time":"2023-01-01T00:00:00Z","source":[]}', r"\$\.source"),
        (b"[1]", "Expected `object`"),
        (b"\xff", "invalid JSON"),
        (b'{"flow":{"time":"\xff"}}', "UTF-8"),
    ],
)
def test_malformed_input_says_why(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput, match=reason):
        decode(data)


def test_truncated_json_is_flagged() -> None:
    with pytest.raises(MalformedInput) as info:
        decode(ALL[0][:100])
    assert info.value.truncated


def test_bad_time_is_malformed_at_time_ns() -> None:
    view = decode(b'{"flow":{"time":"yesterday","verdict":"FORWARDED"}}')
    with pytest.raises(MalformedInput, match="RFC 3339"):
        flow_time_ns(view)


def _exercise(data: bytes) -> None:
    try:
        view = decode(data)
    except MalformedInput:
        return
    with contextlib.suppress(MalformedInput):
        flow_time_ns(view)
    FORMAT.alert_ids(view)
    FORMAT.alert_labels(view)
    doc: Any = document(data, view)
    msgspec.json.encode(doc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_view_or_malformed_input(data: bytes) -> None:
    _exercise(data)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([*ALL[:40], *lines_of(EXPORTER), LEGACY, LEGACY_DNS]),
    st.integers(0, 2000),
    st.integers(0, 2000),
    st.binary(max_size=6),
)
def test_cut_and_spliced_flows_give_a_view_or_malformed_input(
    line: bytes, start: int, end: int, junk: bytes
) -> None:
    _exercise(line[:start])
    _exercise(line[:start] + junk + line[max(start, end) :])


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "flow",
                        "time",
                        "verdict",
                        "Type",
                        "source",
                        "destination",
                        "namespace",
                        "pod_name",
                        "l4",
                        "l7",
                        "Protocol",
                        "Record",
                        "IP",
                        "ipVersion",
                        "is_reply",
                        "seconds",
                        "nanos",
                        "node_name",
                        "drop_reason",
                        "value",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=20,
    )
)
def test_wrongly_typed_members_give_a_view_or_malformed_input(value: Any) -> None:
    _exercise(json.dumps(value).encode())
    _exercise(json.dumps({"flow": value, "time": "2023-01-01T00:00:00Z"}).encode())


@pytest.mark.parametrize("member", ["lost_events", "node_status"])
def test_a_notice_with_invalid_utf8_is_malformed(member: str) -> None:
    """msgspec does not check the UTF-8 of a member it keeps raw; the message decoded it
    strictly and raised UnicodeDecodeError."""
    data = b'{"' + member.encode() + b'":{"source":"\xff"}}'
    with pytest.raises(MalformedInput, match=f"a Hubble {member} notice, not a flow: .*\ufffd"):
        decode(data)


@pytest.mark.parametrize("nanos", [-1, 1_000_000_000, 1 << 40])
def test_a_legacy_time_with_nanos_out_of_range_is_malformed(nanos: int) -> None:
    """A protobuf Timestamp's nanos are 0 to 999,999,999; others were added to the seconds."""
    data = b'{"time":{"seconds":1692619938,"nanos":%d},"verdict":2}' % nanos
    with pytest.raises(MalformedInput, match=f"time.nanos {nanos} is not 0 to 999999999"):
        flow_time_ns(decode(data))


def test_the_document_of_a_legacy_time_out_of_range_keeps_it_as_written() -> None:
    data = b'{"time":{"seconds":253402300800,"nanos":0},"verdict":2}'
    with pytest.raises(MalformedInput, match="out of range"):
        flow_time_ns(decode(data))
    assert document(data, decode(data))["time"] == {"seconds": 253402300800, "nanos": 0}


def test_an_integer_longer_than_int_reads_is_in_the_document() -> None:
    """msgspec skips it in decode(); document() raised ValidationError on it."""
    from decimal import Decimal

    data = ALL[0].replace(b'{"flow":{', b'{"flow":{"extra":' + b"9" * 5000 + b",", 1)
    assert document(data, decode(data))["extra"] == Decimal("9" * 5000)
