"""The nginx access formats: ingress-nginx's ``upstreaminfo`` (`INGRESS_NGINX`) and nginx
``combined`` (`NGINX`), on the parser core of `_access`.

The grammars, the document members and the labels are described in `normalize.web_access`,
where these names are public. ingress-nginx's upstream lists are kept as logged in the view
(`IngressLine`) and split only by the document; nginx's address position (a virtual host, a
forwarded list, quoted or bare) is read by `_address_position`.
"""

from __future__ import annotations

import re
from typing import Any

from logwarden.normalize._access import (
    _ADDRLIST_P,
    _BYTES_P,
    _EXTRA_P,
    _NUMLIST_P,
    _PATTERN_NAMES,
    _QUOTED_P,
    _REQUEST_P,
    _SEP,
    _STATUS_P,
    _TIME_LOCAL_P,
    _TIMELIST_P,
    _USER_P,
    AccessLine,
    _dash,
    _document,
    _Grammar,
    _ip_of,
    _split_request,
    _text,
    _time_local_ns,
    _WebFormat,
)

__all__ = ["INGRESS_NGINX", "NGINX", "IngressLine", "NginxLine", "upstream_namespace"]


class IngressLine(AccessLine, gc=False):
    """An ingress-nginx ``upstreaminfo`` line; upstream members as logged (lists unsplit)."""

    request_time: float | None = None
    proxy_upstream_name: str | None = None
    proxy_alternative_upstream_name: str | None = None
    upstream_addr: str | None = None
    upstream_response_length: str = "-"
    upstream_response_time: str = "-"
    upstream_status: str = "-"


class NginxLine(AccessLine, gc=False):
    """An nginx ``combined`` line; `addresses` is every address of the address position."""

    addresses: tuple[str, ...] = ()
    extra: str | None = None


# --- ingress-nginx ----------------------------------------------------------------------

_INGRESS = _Grammar(
    "ingress-nginx upstreaminfo",
    (
        ("remote_addr", r"([^ ]++)"),
        ("remote_user", _USER_P),
        ("time_local", _TIME_LOCAL_P),
        ("request", _REQUEST_P),
        ("status", _STATUS_P),
        ("body_bytes_sent", _BYTES_P),
        ("http_referer", _QUOTED_P),
        ("http_user_agent", _QUOTED_P),
        ("request_length", _BYTES_P),
        ("request_time", r" ([0-9]+(?:\.[0-9]+)?|-)"),
        ("proxy_upstream_name", r" \[([^\]]*+)\]"),
        ("proxy_alternative_upstream_name", r" \[([^\]]*+)\]"),
        ("upstream_addr", _ADDRLIST_P),
        ("upstream_response_length", _NUMLIST_P),
        ("upstream_response_time", _TIMELIST_P),
        ("upstream_status", _NUMLIST_P),
        ("req_id", r" ([^ ]++)"),
    ),
)
_PATTERN_NAMES[r"\[([^\]]*+)\]"] = "a [bracketed] upstream name"
_PATTERN_NAMES[r"([0-9]+(?:\.[0-9]+)?|-)"] = "seconds or '-'"
_PATTERN_NAMES[r"([^ ]++)"] = "a value without spaces"


def _decode_ingress(data: bytes) -> IngressLine:
    text = data.decode("utf-8", "replace")  # as _text, inlined
    m = _INGRESS.match(text)
    if m is None:
        raise _INGRESS.diagnose(text)
    (
        addr,
        user,
        time,
        request,
        method,
        target,
        version,
        status,
        sent,
        referer,
        ua,
        length,
        rtime,
        name,
        alt,
        up_addr,
        up_length,
        up_time,
        up_status,
        req_id,
    ) = m.groups()
    if method is None:
        method, target, version = _split_request(request)
    return IngressLine(
        addr,
        None if user == "-" else user,
        time,
        request,
        method,
        target,
        version,
        int(status),
        None if sent == "-" else int(sent),
        None if length == "-" else int(length),
        None if referer == "-" else referer,
        None if ua == "-" else ua,
        None,
        None if req_id == "-" else req_id,
        None if rtime == "-" else float(rtime),
        name or None,
        alt or None,
        None if up_addr == "-" else up_addr,
        up_length,
        up_time,
        up_status,
    )


_LIST_SPLIT = re.compile(_SEP).split


def _document_ingress(_raw: bytes, view: IngressLine) -> dict[str, Any]:
    addr = view.upstream_addr
    length = view.upstream_response_length
    rtime = view.upstream_response_time
    status = view.upstream_status
    addrs: list[str | None] | None
    lengths: list[int | float | str | None] | None
    times: list[int | float | str | None] | None
    statuses: list[int | float | str | None] | None
    if addr is None:
        addrs = lengths = times = statuses = None
        dst_ip = None
    elif "," in addr or " : " in addr or "," in length or "," in rtime or "," in status:
        # several tries (``, ``) or internal redirects (`` : ``), a `-` for each missing value
        addrs = [None if t == "-" else t for t in _LIST_SPLIT(addr)]
        lengths = [_number(t, int) for t in _LIST_SPLIT(length)]
        times = [_number(t, float) for t in _LIST_SPLIT(rtime)]
        statuses = [_number(t, int) for t in _LIST_SPLIT(status)]
        dst_ip = _ip_of(addrs[-1])
    else:
        addrs = [addr]
        lengths = [_number(length, int)]
        times = [_number(rtime, float)]
        statuses = [_number(status, int)]
        dst_ip = _ip_of(addr)
    doc = _document(view, dst_ip)
    doc["request"] = view.request
    doc["request_time"] = view.request_time
    doc["proxy_upstream_name"] = view.proxy_upstream_name
    doc["proxy_alternative_upstream_name"] = view.proxy_alternative_upstream_name
    doc["upstream_addr"] = addrs
    doc["upstream_response_length"] = lengths
    doc["upstream_response_time"] = times
    doc["upstream_status"] = statuses
    doc["request_id"] = view.request_id
    return doc


def upstream_namespace(name: str | None) -> str | None:
    """The namespace in an ingress-nginx upstream name ``<namespace>-<service>-<port>``,
    when the name can only be read one way (exactly three parts; see the module doc)."""
    if not name or name == "upstream-default-backend":
        return None
    parts = name.split("-")
    return parts[0] if len(parts) == 3 and all(parts) else None


def _ingress_labels(view: IngressLine) -> dict[str, str]:
    labels = {"user": view.user} if view.user else {}
    namespace = upstream_namespace(view.proxy_upstream_name)
    if namespace:
        labels["namespace"] = namespace
    return labels


INGRESS_NGINX = _WebFormat(
    "ingress_nginx", _decode_ingress, _time_local_ns, _document_ingress, _ingress_labels
)


# --- nginx combined ---------------------------------------------------------------------

_NGINX = _Grammar(
    "nginx combined",
    (
        # up to the first " - ": what a match would take anyway (the user may hold " - "),
        # committed to, so that a line that does not match costs one scan, not one per " - "
        ("remote_addr", r"(?>(.+?)(?= - ))"),
        ("remote_user", _USER_P),
        ("time_local", _TIME_LOCAL_P),
        ("request", _REQUEST_P),
        ("status", _STATUS_P),
        ("body_bytes_sent", _BYTES_P),
        ("http_referer", _QUOTED_P),
        ("http_user_agent", _QUOTED_P),
        ("extra", _EXTRA_P),
    ),
)
_PATTERN_NAMES["(?>(.+?)(?= - ))"] = "an address"


def _address_position(prefix: str) -> tuple[str | None, tuple[str, ...]]:
    """The virtual host and the addresses of what precedes `` - $remote_user``.

    Groups are separated by a space not preceded by a comma; a group of one item before
    the last group is the virtual host (as filebeat reads it), a longer group a forwarded
    list. Quotes around a list are dropped.
    """
    if " " not in prefix and '"' not in prefix:
        return None, (prefix,)
    groups: list[list[str]] = [[]]
    for token in prefix.replace('"', "").split(" "):
        if not token:
            continue
        groups[-1].append(token.rstrip(","))
        if not token.endswith(","):
            groups.append([])
    groups = [g for g in groups if g]
    host = None
    if len(groups) > 1 and len(groups[0]) == 1:
        host = groups.pop(0)[0]
    return host, tuple(a for g in groups for a in g)


def _decode_nginx(data: bytes) -> NginxLine:
    text = _text(data)
    m = _NGINX.match(text)
    if m is None:
        raise _NGINX.diagnose(text)
    (prefix, user, time, request, method, target, version, status, sent, referer, ua, extra) = (
        m.groups()
    )
    host, addresses = _address_position(prefix)
    if method is None:
        method, target, version = _split_request(request)
    return NginxLine(
        _dash(addresses[0]) if addresses else None,
        None if user == "-" else user,
        time,
        request,
        method,
        target,
        version,
        int(status),
        None if sent == "-" else int(sent),
        None,
        None if referer == "-" else referer,
        None if ua == "-" else ua,
        host,
        None,
        addresses,
        extra,
    )


def _document_nginx(_raw: bytes, view: NginxLine) -> dict[str, Any]:
    doc = _document(view, None)
    doc["request"] = view.request
    doc["remote_addr"] = list(view.addresses) if len(view.addresses) > 1 else None
    doc["extra"] = view.extra
    return doc


NGINX = _WebFormat("nginx_access", _decode_nginx, _time_local_ns, _document_nginx)


def _number(token: str, kind: type[int] | type[float]) -> int | float | str | None:
    """An upstream list's value: None for `-`, the number, or (odd input) the text as
    logged, so a document is made whatever the line held."""
    if token == "-":
        return None
    try:
        return kind(token)
    except ValueError:
        return token
