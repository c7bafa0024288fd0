"""Web access logs: ingress-nginx, nginx and Envoy/Istio lines, one parser core for three formats.

One input unit is one log line (bytes, without its newline). Each format is a list of named
fields, each a regular expression; the formats share everything else: one compiled
expression per format, the request line, URI and address splitting, the time caches and the
document. A line that does not match is diagnosed field by field, so `MalformedInput` names
the first field that is wrong and where (``status: expected ... at column 57``).

Formats (module-level objects, each a `normalize.base.Format`):

* `INGRESS_NGINX` (source ``ingress_nginx``): ingress-nginx's default ``upstreaminfo``::

    $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
    "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name]
    [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length
    $upstream_response_time $upstream_status $req_id

* `NGINX` (source ``nginx_access``): nginx ``combined``, ``$remote_addr - $remote_user
  [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"``,
  with what real logs add: a leading virtual host (``lessons.example.com 192.168.0.1 - -``),
  an X-Forwarded-For list in the address position, bare (``10.0.0.2, 10.0.0.1, 127.0.0.1``)
  or quoted and followed by the address (``"10.5.102.222, 199.96.1.1" 10.2.1.185``), and
  extra trailing fields (``"$http_x_forwarded_for"``), kept unparsed.
* `ENVOY` (source ``envoy_access``): Envoy's default format::

    [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
    %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
    %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
    "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"

  and Istio's default TEXT format, which adds ``%RESPONSE_CODE_DETAILS%
  %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%"`` after the flags
  and ``%UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS%
  %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%`` at the end. A leading
  ``ACCESS `` (Ambassador) is accepted; trailing extra fields are kept unparsed.

The document: Sigma's webserver and proxy field names, so SigmaHQ's web rules run
unchanged (these are the names the rules in ``rules/web`` use, plus the taxonomy's basic
webserver ones). A value logged as ``-`` (or empty) is ``None``, which Sigma's ``null``
matches.

=================== ====================================================================
``c-ip``            the client: the first address of a forwarded list, else the peer
                    (Envoy: the first X-Forwarded-For entry, else the downstream remote
                    address without its port)
``cs-username``     ``$remote_user`` (nginx formats)
``cs-method``       the method as logged, also invalid ones (``PATCHp``)
``cs-uri``          the request target as logged (path and query, percent-encoded)
``cs-uri-stem``,    the target up to the first ``?``
``c-uri``
``cs-uri-query``,   the target after the first ``?`` (without it); ``None`` without ``?``
``c-uri-query``
``c-uri-extension`` the extension of the last path segment of the stem (``exe``), or None
``cs-version``      the protocol (``HTTP/1.1``, ``HTTP/2``)
``sc-status``       the status code (int; Envoy's 0 when the client went away)
``sc-bytes``        response bytes (nginx ``$body_bytes_sent``; Envoy ``BYTES_SENT``)
``cs-bytes``        request bytes (``$request_length``; Envoy ``BYTES_RECEIVED``)
``cs-referer``      the Referer header
``cs-user-agent``,  the User-Agent header
``c-useragent``
``cs-host``         the virtual host (nginx prefix) or Envoy's ``:authority``
``dst_ip``          the upstream's IP: ingress-nginx the last entry of ``$upstream_addr``
                    (the one that answered), Envoy ``%UPSTREAM_HOST%``; None for a
                    ``unix:`` socket or an address that is not ``ip:port``
=================== ====================================================================

URIs stay as logged, percent-encoded: nginx writes ``$request`` raw and Envoy its
``:path``, and SigmaHQ's web rules expect that: where a payload may be encoded they list
both spellings (``'=<script>'`` and ``'=%3Cscript%3E'``, ``'${'`` and ``'$%7B'``), and
their keywords search the whole line. Decoding here would make the encoded spellings
unmatchable and let double-encoded payloads (``%253C``) change meaning.

Format-specific members, under the log format's own variable names:

* ingress-nginx: ``request`` (the request line), ``request_time`` (seconds, float),
  ``proxy_upstream_name``, ``proxy_alternative_upstream_name``, ``upstream_addr`` (list of
  str), ``upstream_response_length`` (list of int), ``upstream_response_time`` (list of
  float), ``upstream_status`` (list of int), ``request_id`` (``$req_id``). Upstream lists
  keep nginx's order, a ``-`` entry is None; ``, `` separates tries and `` : `` internal
  redirects, both become one flat list.
* nginx: ``request``, ``remote_addr`` (every address of the address position, in order,
  when there is more than one), ``extra`` (trailing fields after the user agent, as
  logged).
* Envoy: ``response_flags``, ``duration`` and ``upstream_service_time`` (ms, int),
  ``x_forwarded_for``, ``request_id``, ``upstream_host``; Istio adds
  ``response_code_details``, ``connection_termination_details``,
  ``upstream_transport_failure_reason``, ``upstream_cluster``, ``upstream_local_address``,
  ``downstream_local_address``, ``downstream_remote_address``, ``requested_server_name``,
  ``route_name``; ``extra`` as for nginx.

Alert labels: ``user`` is ``$remote_user`` when logged. ingress-nginx names its upstream
``<namespace>-<service>-<port>``; since namespaces, services and port names may all contain
``-``, the namespace is only read from a name of exactly three ``-``-separated parts
(``default-web-8080``), never from ``upstream-default-backend``; ``esmon-esmon-es-http-9200``
gives no namespace. Alert ids: the request id (ingress-nginx ``$req_id``, Envoy
``X-Request-Id``), no stage.

What cannot be recovered: nginx's ``combined`` has no request length, upstream or request
id; an X-Forwarded-For list says what proxies claimed, the first entry is not proven; a
line from a custom ``log_format`` is malformed, naming the first field that differs.
"""

from __future__ import annotations

import calendar
import ipaddress
import re
from collections.abc import Callable
from typing import Any

import msgspec

from logwarden.normalize.base import MalformedInput
from logwarden.normalize.k8s_audit import parse_rfc3339_ns

__all__ = [
    "ENVOY",
    "INGRESS_NGINX",
    "NGINX",
    "AccessLine",
    "EnvoyLine",
    "IngressLine",
    "NginxLine",
    "parse_time_local_ns",
    "upstream_namespace",
]


class AccessLine(msgspec.Struct, gc=False):
    """One access log line: the members every web format has (``None`` when not logged)."""

    client: str | None
    user: str | None
    time: str
    request: str
    method: str | None
    target: str | None
    version: str | None
    status: int
    bytes_sent: int | None
    bytes_received: int | None
    referer: str | None
    user_agent: str | None
    host: str | None
    request_id: str | None


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


# --- the parser core -------------------------------------------------------------------

#: (field name, pattern) pairs, each pattern including its leading separator.
_Fields = tuple[tuple[str, str], ...]


class _Grammar:
    """A line format: its fields, the whole-line expression, and a field-by-field diagnosis
    for lines that do not match."""

    def __init__(self, what: str, fields: _Fields) -> None:
        self.what = what
        self.fields = fields
        self.match = re.compile("".join(p for _, p in fields) + r"\Z", re.DOTALL).match
        self._prefixes: list[re.Pattern[str]] | None = None

    def diagnose(self, text: str) -> MalformedInput:
        """Why `text` does not match: the first field whose pattern fails, and where."""
        if self._prefixes is None:
            acc = ""
            self._prefixes = []
            for _, pattern in self.fields:
                acc += pattern
                self._prefixes.append(re.compile(acc, re.DOTALL))
        end = 0
        for (name, pattern), prefix in zip(self.fields, self._prefixes, strict=True):
            m = prefix.match(text)
            if m is None:
                found = text[end : end + 40]
                return MalformedInput(
                    f"not an {self.what} line: {name}: expected {_pattern_text(pattern)} "
                    f"at column {end + 1}, found {found!r}"
                )
            end = m.end()
        return MalformedInput(
            f"not an {self.what} line: unexpected text at column {end + 1}: "
            f"{text[end : end + 40]!r}"
        )


def _pattern_text(pattern: str) -> str:
    return _PATTERN_NAMES.get(pattern.lstrip(" "), f"/{pattern}/")


def _text(data: bytes) -> str:
    """The line as text. nginx escapes bytes above 0x7f (``\\xNN``) unless told not to; raw
    invalid UTF-8 becomes U+FFFD so one bad byte in a header cannot hide the request."""
    return data.decode("utf-8", "replace")


def _dash(value: str | None) -> str | None:
    return None if value == "-" or value == "" else value


def _split_request(request: str) -> tuple[str | None, str | None, str | None]:
    """Method, target and protocol of a request line as nginx logs it (``""`` for a request
    that never came, one token for garbage such as a TLS hello, spaces inside the target
    for a request nginx rejected with 400)."""
    parts = request.split(" ")
    n = len(parts)
    if n == 3:
        method, target, version = parts
        return _dash(method), _dash(target), _dash(version)
    if n < 2:
        return None, None, None
    if n == 2:
        return _dash(parts[0]), _dash(parts[1]), None
    if parts[-1].startswith("HTTP/"):
        return parts[0], " ".join(parts[1:-1]), parts[-1]
    return parts[0], " ".join(parts[1:]), None


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_TIME_LOCAL = re.compile(
    r"([0-9]{2})/([A-Z][a-z]{2})/([0-9]{4}):([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r" ([+-])([0-9]{2})([0-9]{2})\Z"
)
_local_seconds: dict[str, int] = {}


def parse_time_local_ns(text: str) -> int:
    """Nanoseconds since the epoch of nginx's ``$time_local`` (``17/May/2024:08:00:00
    +0000``); whole seconds are cached, as one log shares few distinct seconds."""
    secs = _local_seconds.get(text)
    if secs is not None:
        return secs * 1_000_000_000
    m = _TIME_LOCAL.match(text)
    month = _MONTHS.get(m.group(2), 0) if m is not None else 0
    if m is None or not month:
        raise MalformedInput(f"time_local: {text!r} is not like 17/May/2024:08:00:00 +0000")
    day, _, year, hour, minute, second, sign, tzh, tzm = m.groups()
    d, y, h, mi, s = int(day), int(year), int(hour), int(minute), int(second)
    if not (
        y >= 1
        and 1 <= d <= calendar.monthrange(y, month)[1]
        and h < 24
        and mi < 60
        and s < 61
        and int(tzm) < 60
    ):
        raise MalformedInput(f"time_local: {text!r} is not a valid date and time")
    offset = (int(tzh) * 3600 + int(tzm) * 60) * (-1 if sign == "-" else 1)
    secs = calendar.timegm((y, month, d, h, mi, s, 0, 0, 0)) - offset
    if len(_local_seconds) > 65536:
        _local_seconds.clear()
    _local_seconds[text] = secs
    return secs * 1_000_000_000


def _time_local_ns(view: AccessLine) -> int:
    secs = _local_seconds.get(view.time)
    if secs is not None:
        return secs * 1_000_000_000
    return parse_time_local_ns(view.time)


def _start_time_ns(view: AccessLine) -> int:
    try:
        return parse_rfc3339_ns(view.time)
    except MalformedInput as exc:
        raise MalformedInput(f"start_time: {exc}") from None


_ips: dict[str, str | None] = {}


def _ip_of(address: str | None) -> str | None:
    """The IP of ``ip:port``, ``[v6]:port``, ``tcp://ip:port`` or a bare IP, else None
    (``unix:`` sockets, names, invalid addresses); cached, as a log names few upstreams."""
    if address is None:
        return None
    ip = _ips.get(address, "")
    if ip != "":
        return ip
    host = address.removeprefix("tcp://")
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        ip = None
    if len(_ips) > 65536:
        _ips.clear()
    _ips[address] = ip
    return ip


def _extension(stem: str) -> str | None:
    last = stem[stem.rfind("/") + 1 :]
    dot = last.rfind(".")
    return (last[dot + 1 :] or None) if dot >= 0 else None


_uri_parts: dict[str, tuple[str, str | None, str | None]] = {}


def _split_uri(target: str) -> tuple[str, str | None, str | None]:
    """Stem, query (after the first ``?``) and extension of a request target; cached, as
    a site's requests repeat few targets."""
    stem, sep, rest = target.partition("?")
    parts = (stem, rest if sep else None, _extension(stem) if "." in stem else None)
    if len(_uri_parts) > 65536:
        _uri_parts.clear()
    _uri_parts[target] = parts
    return parts


def _document(view: AccessLine, dst_ip: str | None) -> dict[str, Any]:
    """The Sigma webserver/proxy members every format has."""
    target = view.target
    if target is None:
        stem = query = ext = None
    else:
        stem, query, ext = _uri_parts.get(target) or _split_uri(target)
    ua = view.user_agent
    return {
        "c-ip": view.client,
        "cs-username": view.user,
        "cs-method": view.method,
        "cs-uri": target,
        "cs-uri-stem": stem,
        "c-uri": stem,
        "cs-uri-query": query,
        "c-uri-query": query,
        "c-uri-extension": ext,
        "cs-version": view.version,
        "sc-status": view.status,
        "sc-bytes": view.bytes_sent,
        "cs-bytes": view.bytes_received,
        "cs-referer": view.referer,
        "cs-user-agent": ua,
        "c-useragent": ua,
        "cs-host": view.host,
        "dst_ip": dst_ip,
    }


def _no_derived(_raw: bytes, _view: AccessLine) -> list[tuple[str, bytes]]:
    return []


def _request_ids(view: AccessLine) -> tuple[str | None, str | None]:
    return view.request_id, None


def _user_labels(view: AccessLine) -> dict[str, str]:
    return {"user": view.user} if view.user else {}


class _WebFormat:
    """A web access format as a `normalize.base.Format`."""

    def __init__(
        self,
        source: str,
        decode: Callable[[bytes], AccessLine],
        time_ns: Callable[[AccessLine], int],
        document: Callable[[bytes, Any], Any],
        alert_labels: Callable[[Any], dict[str, str]] = _user_labels,
    ) -> None:
        self.source = source
        self.decode = decode
        self.time_ns = time_ns
        self.alert_ids = _request_ids
        self.alert_labels = alert_labels
        self.document = document
        self.derived = _no_derived


# --- shared field patterns --------------------------------------------------------------

_TIME_LOCAL_P = r" \[([^\]]++)\]"  # checked by time_ns (parse_time_local_ns)
_USER_P = r" - (.*?)"
# the request line, and its method, target and protocol when it is well formed
_REQUEST_P = r' "(([^" ]+) ([^" ]+) (HTTP/[0-9.]+)|[^"]*)"'
_STATUS_P = r" ([0-9]{3})"
_BYTES_P = r" ([0-9]+|-)"
_QUOTED_P = r' "([^"]*+)"'
_ITEM = r"(?:[0-9]+|-)"
_FITEM = r"(?:[0-9]+(?:\.[0-9]+)?|-)"
_SEP = r"(?:,| :) "
_NUMLIST_P = rf" ({_ITEM}(?:{_SEP}{_ITEM})*)"
_TIMELIST_P = rf" ({_FITEM}(?:{_SEP}{_FITEM})*)"
_ADDRLIST_P = rf" ([^ ,]+(?:{_SEP}[^ ,]+)*)"
_EXTRA_P = r"(?: (.*))?"

_PATTERN_NAMES = {
    _TIME_LOCAL_P.lstrip(" "): "a [bracketed] time",
    _USER_P.lstrip(" "): "'- ' and the remote user",
    _REQUEST_P.lstrip(" "): "a quoted request line",
    _STATUS_P.lstrip(" "): "a 3-digit status",
    _BYTES_P.lstrip(" "): "a byte count or '-'",
    _QUOTED_P.lstrip(" "): "a quoted string",
    _NUMLIST_P.lstrip(" "): "a number, '-' or a list of those",
    _TIMELIST_P.lstrip(" "): "seconds, '-' or a list of those",
    _ADDRLIST_P.lstrip(" "): "an address or a list of addresses",
}


def _int_or_none(text: str) -> int | None:
    return None if text == "-" else int(text)


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
        ("remote_addr", r"(.+?)"),
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
_PATTERN_NAMES["(.+?)"] = "an address"


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


# --- Envoy / Istio ----------------------------------------------------------------------

_ENVOY = _Grammar(
    "Envoy access log",
    (
        ("start_time", r"(?:ACCESS )?\[([0-9]{4}-[^\]]*)\]"),
        ("request", r' "(\S*) (.*?) (\S*)"'),
        ("response_code", r" ([0-9]+)"),
        ("response_flags", r" (\S+)"),
        ("response_code_details", r'(?: (\S+) (\S+) "(.*?)")?'),
        ("bytes_received", r" ([0-9]+)"),
        ("bytes_sent", r" ([0-9]+)"),
        ("duration", r" ([0-9]+|-)"),
        ("upstream_service_time", r" ([0-9]+|-)"),
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
_PATTERN_NAMES[r"([0-9]+)"] = "a number"
_PATTERN_NAMES[r"([0-9]+|-)"] = "a number or '-'"
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


def _number(token: str, kind: type[int] | type[float]) -> int | float | str | None:
    """An upstream list's value: None for `-`, the number, or (odd input) the text as
    logged, so a document is made whatever the line held."""
    if token == "-":
        return None
    try:
        return kind(token)
    except ValueError:
        return token
