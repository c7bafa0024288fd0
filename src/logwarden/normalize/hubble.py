"""Cilium Hubble flows, one JSON object per line: how raw bytes become a view.

Shapes accepted, one per line:

* the current one, ``hubble observe -o json`` (``-o jsonpb`` before Hubble 0.8): a
  GetFlowsResponse ``{"flow": {...}, "node_name": "...", "time": "..."}``, flow members
  under their protobuf names (``node_name``, ``drop_reason_desc``), enums as names, times as
  RFC 3339 with nanoseconds. Hubble's exporter (``hubble-export-file-path``) writes the
  same shape, and with a field mask (``hubble-export-fieldmask``) only some members: an
  endpoint may be ``{}`` (the ICMPv6 INVALID_SOURCE_IP drop in the samples);
* the legacy one, Hubble before 0.8's ``-o json``: the bare Flow object, as Go's
  encoding/json wrote the generated struct: enums as numbers (``"verdict": 2``), the time as
  ``{"seconds": ..., "nanos": ...}``, oneofs wrapped (``"l4": {"Protocol": {"TCP": ...}}``,
  ``"l7": {"Record": {"Dns": ...}}``), ``is_reply`` as ``{"value": true}``. A bare flow in
  the current encoding is accepted too.

A GetFlowsResponse that carries ``lost_events`` or ``node_status`` instead of a flow, a
``//`` comment line (the sample files of hubble-otel begin with an SPDX header; a file
reader should skip lines starting with ``//`` before calling `decode`), invalid JSON and
members of the wrong type are `MalformedInput`, with the reason.

The view (`Flow`) holds the members alert labels and times need; `document` is the flow
itself in the current shape (what sits under ``"flow"``), so rules read ``verdict``,
``drop_reason_desc``, ``IP.source``, ``IP.destination``, ``l4.TCP.destination_port``,
``l4.UDP.source_port``, ``l4.ICMPv4.type``, ``l4.ICMPv6.type``, ``source.namespace``,
``source.pod_name``, ``source.labels``, ``source.identity`` (and the same under
``destination``), ``destination_names``, ``l7.type``, ``l7.dns.query``, ``l7.dns.rcode``,
``l7.http.method``, ``l7.http.url``, ``l7.http.code``, ``Type``, ``traffic_direction``,
``is_reply``, ``node_name`` and ``time``. ``node_name`` and ``time`` come from the wrapper
when a field mask left them out of the flow. A legacy flow is converted: enum numbers to
names, ``{"seconds","nanos"}`` to RFC 3339 with nine digits, oneof wrappers removed, a
deprecated numeric ``drop_reason`` without ``drop_reason_desc`` named (133 becomes
``POLICY_DENIED``).

Alert labels: ``namespace`` is the source endpoint's namespace, else the destination's; with
it ``resource`` is ``pods`` when that endpoint is a pod (has ``pod_name``). No ``user``:
flows carry none. Alert ids: the flow's ``uuid`` (Cilium 1.14 and later), no stage.

What cannot be recovered: members a field mask dropped; in legacy flows, enum numbers
newer than this table stay numbers; protojson writes 64-bit integers (``l7.latency_ns``,
``socket_cookie``) as strings, and they stay strings.
"""

from __future__ import annotations

from typing import Any

import msgspec

from logwarden.normalize.base import (
    MAX_TIME_NS,
    MIN_TIME_NS,
    MalformedInput,
    checked_time_ns,
    no_derived,
)
from logwarden.normalize.k8s_audit import json_value, parse_rfc3339_ns
from logwarden.records import format_time_ns

__all__ = [
    "FORMAT",
    "SOURCE",
    "Endpoint",
    "Flow",
    "alert_ids",
    "alert_labels",
    "decode",
    "document",
    "flow_time_ns",
]

#: The `Record.source` of Hubble flows.
SOURCE = "hubble_flow"

_EMPTY = msgspec.Raw(b"")


class Timestamp(msgspec.Struct, gc=False):
    """A protobuf Timestamp as Go's encoding/json writes it (legacy flows)."""

    seconds: int = 0
    nanos: int = 0


class Endpoint(msgspec.Struct, gc=False):
    namespace: str | None = None
    pod_name: str | None = None


class Flow(msgspec.Struct, gc=False):
    """The members of a flow logwarden reads eagerly; `node_name` and `time` are the
    wrapper's when the flow lacks them."""

    time: str | Timestamp | None = None
    uuid: str | None = None
    verdict: str | int | None = None
    Type: str | int | None = None
    source: Endpoint | None = None
    destination: Endpoint | None = None
    node_name: str | None = None


class _Line(msgspec.Struct, gc=False):
    """A line: a GetFlowsResponse, or (no `flow`) perhaps a bare flow."""

    flow: Flow | None = None
    node_name: str | None = None
    time: str | Timestamp | None = None
    lost_events: msgspec.Raw = _EMPTY
    node_status: msgspec.Raw = _EMPTY
    verdict: str | int | None = None
    Type: str | int | None = None


_line_decoder = msgspec.json.Decoder(_Line)
_flow_decoder = msgspec.json.Decoder(Flow)


def _malformed(data: bytes, exc: Exception) -> MalformedInput:
    if data[:2] == b"//":
        return MalformedInput("a // comment line, not a Hubble flow (e.g. an SPDX header)")
    if isinstance(exc, UnicodeDecodeError):
        return MalformedInput(f"invalid UTF-8 at byte {exc.start}: JSON text must be UTF-8")
    if isinstance(exc, RecursionError):
        return MalformedInput("JSON nested too deeply to read")
    if isinstance(exc, msgspec.ValidationError):
        return MalformedInput(f"not a Hubble flow: {exc}")
    truncated = "truncated" in str(exc)
    return MalformedInput(f"invalid JSON: {exc}", truncated=truncated)


def decode(data: bytes) -> Flow:
    """The view of one line: a GetFlowsResponse with a flow, or a bare (legacy) flow."""
    try:
        line = _line_decoder.decode(data)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError) as exc:
        raise _malformed(data, exc) from None
    flow = line.flow
    if flow is None:
        return _bare(data, line)
    if flow.node_name is None:
        flow.node_name = line.node_name
    if flow.time is None:
        flow.time = line.time
        if flow.time is None:
            raise MalformedInput("not a Hubble flow: missing time (flow.time and time)")
    return flow


def _bare(data: bytes, line: _Line) -> Flow:
    if line.lost_events:
        raise MalformedInput(f"a Hubble lost_events notice, not a flow: {_text(line.lost_events)}")
    if line.node_status:
        raise MalformedInput(f"a Hubble node_status notice, not a flow: {_text(line.node_status)}")
    if line.verdict is None and line.Type is None:
        raise MalformedInput(
            "not a Hubble flow: neither a flow member nor a bare flow (verdict, Type)"
        )
    try:
        flow = _flow_decoder.decode(data)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError) as exc:
        raise _malformed(data, exc) from None
    if flow.time is None:
        raise MalformedInput("not a Hubble flow: missing time")
    return flow


def _text(raw: msgspec.Raw) -> str:
    """A member kept as read, for a message (msgspec does not check the UTF-8 it skips)."""
    return bytes(raw).decode("utf-8", "replace")


def flow_time_ns(flow: Flow) -> int:
    """The flow's time (RFC 3339 with nanoseconds, or a legacy seconds/nanos pair: a
    protobuf Timestamp, whose nanos are 0 to 999,999,999)."""
    text = flow.time
    if isinstance(text, str):
        return parse_rfc3339_ns(text)
    if isinstance(text, Timestamp):
        seconds, nanos = text.seconds, text.nanos
        if not 0 <= nanos < 1_000_000_000:
            raise MalformedInput(f"not a Hubble flow: time.nanos {nanos} is not 0 to 999999999")
        return checked_time_ns(
            seconds * 1_000_000_000 + nanos, f"Hubble flow: time.seconds {seconds}"
        )
    raise MalformedInput("not a Hubble flow: missing time")


def alert_ids(flow: Flow) -> tuple[str | None, str | None]:
    """The flow's uuid; flows have no stage."""
    return flow.uuid, None


def alert_labels(flow: Flow) -> dict[str, str]:
    """The namespace of the source endpoint, else of the destination (see the module doc)."""
    for end in (flow.source, flow.destination):
        if end is not None and end.namespace:
            if end.pod_name:
                return {"namespace": end.namespace, "resource": "pods"}
            return {"namespace": end.namespace}
    return {}


# --- the document ------------------------------------------------------------------------

_VERDICTS = (
    "VERDICT_UNKNOWN",
    "FORWARDED",
    "DROPPED",
    "ERROR",
    "AUDIT",
    "REDIRECTED",
    "TRACED",
    "TRANSLATED",
)
_FLOW_TYPES = ("UNKNOWN_TYPE", "L3_L4", "L7", "SOCK")
_DIRECTIONS = ("TRAFFIC_DIRECTION_UNKNOWN", "INGRESS", "EGRESS")
_IP_VERSIONS = ("IP_NOT_USED", "IPv4", "IPv6")
_L7_TYPES = ("UNKNOWN_L7_TYPE", "REQUEST", "RESPONSE", "SAMPLE")
_OBSERVATION_POINTS = {
    0: "UNKNOWN_POINT",
    1: "TO_PROXY",
    2: "TO_HOST",
    3: "TO_STACK",
    4: "TO_OVERLAY",
    101: "TO_ENDPOINT",
    5: "FROM_ENDPOINT",
    6: "FROM_PROXY",
    7: "FROM_HOST",
    8: "FROM_STACK",
    9: "FROM_OVERLAY",
    10: "FROM_NETWORK",
    11: "TO_NETWORK",
}
#: Cilium's DropReason enum (api/v1/flow/flow.proto).
DROP_REASONS = {
    0: "DROP_REASON_UNKNOWN",
    130: "INVALID_SOURCE_MAC",
    131: "INVALID_DESTINATION_MAC",
    132: "INVALID_SOURCE_IP",
    133: "POLICY_DENIED",
    134: "INVALID_PACKET_DROPPED",
    135: "CT_TRUNCATED_OR_INVALID_HEADER",
    136: "CT_MISSING_TCP_ACK_FLAG",
    137: "CT_UNKNOWN_L4_PROTOCOL",
    138: "CT_CANNOT_CREATE_ENTRY_FROM_PACKET",
    139: "UNSUPPORTED_L3_PROTOCOL",
    140: "MISSED_TAIL_CALL",
    141: "ERROR_WRITING_TO_PACKET",
    142: "UNKNOWN_L4_PROTOCOL",
    143: "UNKNOWN_ICMPV4_CODE",
    144: "UNKNOWN_ICMPV4_TYPE",
    145: "UNKNOWN_ICMPV6_CODE",
    146: "UNKNOWN_ICMPV6_TYPE",
    147: "ERROR_RETRIEVING_TUNNEL_KEY",
    148: "ERROR_RETRIEVING_TUNNEL_OPTIONS",
    149: "INVALID_GENEVE_OPTION",
    150: "UNKNOWN_L3_TARGET_ADDRESS",
    151: "STALE_OR_UNROUTABLE_IP",
    152: "NO_MATCHING_LOCAL_CONTAINER_FOUND",
    153: "ERROR_WHILE_CORRECTING_L3_CHECKSUM",
    154: "ERROR_WHILE_CORRECTING_L4_CHECKSUM",
    155: "CT_MAP_INSERTION_FAILED",
    156: "INVALID_IPV6_EXTENSION_HEADER",
    157: "IP_FRAGMENTATION_NOT_SUPPORTED",
    158: "SERVICE_BACKEND_NOT_FOUND",
    160: "NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT",
    161: "FAILED_TO_INSERT_INTO_PROXYMAP",
    162: "REACHED_EDT_RATE_LIMITING_DROP_HORIZON",
    163: "UNKNOWN_CONNECTION_TRACKING_STATE",
    164: "LOCAL_HOST_IS_UNREACHABLE",
    165: "NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION",
    166: "UNSUPPORTED_L2_PROTOCOL",
    167: "NO_MAPPING_FOR_NAT_MASQUERADE",
    168: "UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE",
    169: "FIB_LOOKUP_FAILED",
    170: "ENCAPSULATION_TRAFFIC_IS_PROHIBITED",
    171: "INVALID_IDENTITY",
    172: "UNKNOWN_SENDER",
    173: "NAT_NOT_NEEDED",
    174: "IS_A_CLUSTERIP",
    175: "FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND",
    176: "FORBIDDEN_ICMPV6_MESSAGE",
    177: "DENIED_BY_LB_SRC_RANGE_CHECK",
    178: "SOCKET_LOOKUP_FAILED",
    179: "SOCKET_ASSIGN_FAILED",
    180: "PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL",
    181: "POLICY_DENY",
    182: "VLAN_FILTERED",
    183: "INVALID_VNI",
    184: "INVALID_TC_BUFFER",
    185: "NO_SID",
    186: "MISSING_SRV6_STATE",
    187: "NAT46",
    188: "NAT64",
    189: "AUTH_REQUIRED",
    190: "CT_NO_MAP_FOUND",
    191: "SNAT_NO_MAP_FOUND",
    192: "INVALID_CLUSTER_ID",
    193: "UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP",
    194: "NO_EGRESS_GATEWAY",
    196: "TTL_EXCEEDED",
    197: "NO_NODE_ID",
    202: "DROP_HOST_NOT_READY",
    203: "DROP_EP_NOT_READY",
}


def _name(value: Any, names: Any) -> Any:
    """The enum name of a number (a tuple indexed by it, or a dict), else the value."""
    if type(value) is not int:
        return value
    if isinstance(names, tuple):
        return names[value] if 0 <= value < len(names) else value
    return names.get(value, value)


def _unwrap(member: Any, wrapper: str) -> None:
    """``{"Protocol": {"TCP": ...}}`` as ``{"TCP": ...}``: Go's encoding/json of a oneof."""
    if isinstance(member, dict) and isinstance(member.get(wrapper), dict):
        member.update(member.pop(wrapper))


def _legacy(flow: dict[str, Any]) -> None:
    """Convert, in place, what Go's encoding/json wrote differently from protojson."""
    time = flow.get("time")
    if isinstance(time, dict):
        seconds, nanos = time.get("seconds", 0), time.get("nanos", 0)
        if type(seconds) is int and type(nanos) is int and 0 <= nanos < 1_000_000_000:
            ns = seconds * 1_000_000_000 + nanos
            if MIN_TIME_NS <= ns <= MAX_TIME_NS:
                flow["time"] = format_time_ns(ns)
    for key, names in (
        ("verdict", _VERDICTS),
        ("Type", _FLOW_TYPES),
        ("traffic_direction", _DIRECTIONS),
        ("trace_observation_point", _OBSERVATION_POINTS),
        ("drop_reason_desc", DROP_REASONS),
    ):
        if key in flow:
            flow[key] = _name(flow[key], names)
    ip = flow.get("IP")
    if isinstance(ip, dict) and "ipVersion" in ip:
        ip["ipVersion"] = _name(ip["ipVersion"], _IP_VERSIONS)
    _unwrap(flow.get("l4"), "Protocol")
    l7 = flow.get("l7")
    if isinstance(l7, dict):
        record = l7.pop("Record", None)
        if isinstance(record, dict):
            l7.update({k.lower(): v for k, v in record.items()})
        if "type" in l7:
            l7["type"] = _name(l7["type"], _L7_TYPES)
    is_reply = flow.get("is_reply")
    if isinstance(is_reply, dict):
        flow["is_reply"] = is_reply.get("value", False)
    elif is_reply is None and flow.get("reply") is True:
        flow["is_reply"] = True


def document(raw: bytes, _view: Flow) -> Any:
    """The flow in the current shape (see the module doc)."""
    top = json_value(raw)  # invalid UTF-8 where decode() reads no member becomes U+FFFD
    flow = top.get("flow")
    if isinstance(flow, dict):
        if "node_name" not in flow and "node_name" in top:
            flow["node_name"] = top["node_name"]
        if "time" not in flow and "time" in top:
            flow["time"] = top["time"]
    else:
        flow = top
    if type(flow.get("verdict")) is int or isinstance(flow.get("time"), dict):
        _legacy(flow)
    reason = flow.get("drop_reason")
    if type(reason) is int and reason and "drop_reason_desc" not in flow:
        flow["drop_reason_desc"] = DROP_REASONS.get(reason, reason)
    return flow


class _HubbleFormat:
    source = SOURCE
    decode = staticmethod(decode)
    time_ns = staticmethod(flow_time_ns)
    alert_ids = staticmethod(alert_ids)
    alert_labels = staticmethod(alert_labels)
    document = staticmethod(document)
    derived = staticmethod(no_derived)


#: The Hubble flow format as a `normalize.base.Format`.
FORMAT = _HubbleFormat()
