"""The Envoy access format (`ENVOY`): Envoy's default format and Istio's default TEXT
format, on the parser core of `_access`.

The grammar, the document members and the labels are described in `normalize.web_access`,
where these names are public. Istio's members are optional groups of the one grammar, so a
line is read as Istio's when it has them.
"""

from __future__ import annotations

from typing import Any

from logwarden.normalize._access import (
    _COUNT,
    _EXTRA_P,
    _PATTERN_NAMES,
    AccessLine,
    _dash,
    _document,
    _Grammar,
    _int_or_none,
    _ip_of,
    _start_time_ns,
    _text,
    _WebFormat,
)

__all__ = ["ENVOY", "EnvoyLine"]


class EnvoyLine(AccessLine, gc=False):
    """An Envoy default-format line, with Istio's members when the line has them."""

    response_flags: str | None = None
    duration: int | None = None
    upstream_service_time: int | None = None
    x_forwarded_for: str | None = None
    upstream_host: str | None = None
    response_code_details: str | None = None
    connection_termination_details: str | None = None
    upstream_transport_failure_reason: str | None = None
    upstream_cluster: str | None = None
    upstream_local_address: str | None = None
    downstream_local_address: str | None = None
    downstream_remote_address: str | None = None
    requested_server_name: str | None = None
    route_name: str | None = None
    extra: str | None = None


# --- Envoy / Istio ----------------------------------------------------------------------

_NUMBER_P = rf" ({_COUNT})"
_NUMBER_OR_DASH_P = rf" ({_COUNT}|-)"

_ENVOY = _Grammar(
    "Envoy access log",
    (
        ("start_time", r"(?:ACCESS )?\[([0-9]{4}-[^\]]*)\]"),
        ("request", r' "(\S*) (.*?) (\S*)"'),
        ("response_code", _NUMBER_P),
        ("response_flags", r" (\S+)"),
        ("response_code_details", r'(?: (\S+) (\S+) "(.*?)")?'),
        ("bytes_received", _NUMBER_P),
        ("bytes_sent", _NUMBER_P),
        ("duration", _NUMBER_OR_DASH_P),
        ("upstream_service_time", _NUMBER_OR_DASH_P),
        ("x_forwarded_for", r' "(.*?)"'),
        ("user_agent", r' "(.*?)"'),
        ("request_id", r' "(.*?)"'),
        ("authority", r' "(.*?)"'),
        ("upstream_host", r' "(.*?)"'),
        ("upstream_cluster", r"(?: (\S+) (\S+) (\S+) (\S+) (\S+) (\S+))?"),
        ("extra", _EXTRA_P),
    ),
)
_PATTERN_NAMES[r"(?:ACCESS )?\[([0-9]{4}-[^\]]*)\]"] = "[yyyy-mm-ddThh:mm:ss.mmmZ]"
_PATTERN_NAMES[r'"(\S*) (.*?) (\S*)"'] = "a quoted 'method path protocol'"
_PATTERN_NAMES[_NUMBER_P.lstrip(" ")] = "a number (at most 20 digits)"
_PATTERN_NAMES[_NUMBER_OR_DASH_P.lstrip(" ")] = "a number (at most 20 digits) or '-'"
_PATTERN_NAMES[r'"(.*?)"'] = "a quoted string"


def _decode_envoy(data: bytes) -> EnvoyLine:
    text = _text(data)
    m = _ENVOY.match(text)
    if m is None:
        raise _ENVOY.diagnose(text)
    g = m.groups()
    xff = _dash(g[13])
    downstream = _dash(g[21])
    if xff is not None:
        client: str | None = xff.partition(",")[0].strip()
    else:
        client = _ip_of(downstream)
    return EnvoyLine(
        client,
        None,
        g[0],
        f"{g[1]} {g[2]} {g[3]}",
        _dash(g[1]),
        _dash(g[2]),
        _dash(g[3]),
        int(g[4]),
        int(g[10]),
        int(g[9]),
        None,
        _dash(g[14]),
        _dash(g[16]),
        _dash(g[15]),
        _dash(g[5]),
        _int_or_none(g[11]),
        _int_or_none(g[12]),
        xff,
        _dash(g[17]),
        _dash(g[6]),
        _dash(g[7]),
        _dash(g[8]),
        _dash(g[18]),
        _dash(g[19]),
        _dash(g[20]),
        downstream,
        _dash(g[22]),
        _dash(g[23]),
        g[24],
    )


def _document_envoy(_raw: bytes, view: EnvoyLine) -> dict[str, Any]:
    doc = _document(view, _ip_of(view.upstream_host))
    doc["response_flags"] = view.response_flags
    doc["duration"] = view.duration
    doc["upstream_service_time"] = view.upstream_service_time
    doc["x_forwarded_for"] = view.x_forwarded_for
    doc["request_id"] = view.request_id
    doc["upstream_host"] = view.upstream_host
    doc["response_code_details"] = view.response_code_details
    doc["connection_termination_details"] = view.connection_termination_details
    doc["upstream_transport_failure_reason"] = view.upstream_transport_failure_reason
    doc["upstream_cluster"] = view.upstream_cluster
    doc["upstream_local_address"] = view.upstream_local_address
    doc["downstream_local_address"] = view.downstream_local_address
    doc["downstream_remote_address"] = view.downstream_remote_address
    doc["requested_server_name"] = view.requested_server_name
    doc["route_name"] = view.route_name
    doc["extra"] = view.extra
    return doc


ENVOY = _WebFormat("envoy_access", _decode_envoy, _start_time_ns, _document_envoy)
