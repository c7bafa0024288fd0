"""The parser core the web access formats share (`normalize.web_access`).

One input unit is one log line (bytes, without its newline). Each format is a list of named
fields, each a regular expression (`_Grammar`); the formats share everything else: one
compiled expression per format, the request line, URI and address splitting, the time
caches, the document's Sigma members and the `normalize.base.Format` object (`_WebFormat`).
A line that does not match is diagnosed field by field, so `MalformedInput` names the first
field that is wrong and where (``status: expected ... at column 57``); `_PATTERN_NAMES`
says what each field pattern expects, and the format modules add their own patterns to it.

The grammars themselves are in `_access_nginx` (ingress-nginx, nginx ``combined``) and
`_access_envoy` (Envoy, Istio).
"""

from __future__ import annotations

import calendar
import ipaddress
import re
from collections.abc import Callable
from typing import Any

import msgspec

from logwarden.normalize.base import MalformedInput, checked_time_ns, no_derived
from logwarden.normalize.k8s_audit import parse_rfc3339_ns

__all__ = ["AccessLine", "parse_time_local_ns"]


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
    +0000``; the offset under 24 hours, the time in UTC within years 1 to 9999); whole
    seconds are cached, as one log shares few distinct seconds."""
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
        and int(tzh) < 24
        and int(tzm) < 60
    ):
        raise MalformedInput(f"time_local: {text!r} is not a valid date and time")
    offset = (int(tzh) * 3600 + int(tzm) * 60) * (-1 if sign == "-" else 1)
    secs = calendar.timegm((y, month, d, h, mi, s, 0, 0, 0)) - offset
    checked_time_ns(secs * 1_000_000_000, f"time_local: {text!r}")  # the offset can leave 1-9999
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
        self.derived = no_derived


# --- shared field patterns --------------------------------------------------------------

# checked by time_ns (parse_time_local_ns); no "[" inside, so that a remote user holding
# " [" costs one scan, not one per "[" after it
_TIME_LOCAL_P = r" \[([^\[\]]++)\]"
_USER_P = r" - (.*?)"
# the request line, and its method, target and protocol when it is well formed
_REQUEST_P = r' "(([^" ]+) ([^" ]+) (HTTP/[0-9.]+)|[^"]*)"'
_STATUS_P = r" ([0-9]{3})"
#: a 64-bit count (int() refuses 4,301 digits); a longer one fails at its own field
_COUNT = r"[0-9]{1,20}(?![0-9])"
_BYTES_P = rf" ({_COUNT}|-)"
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
    _BYTES_P.lstrip(" "): "a byte count (at most 20 digits) or '-'",
    _QUOTED_P.lstrip(" "): "a quoted string",
    _NUMLIST_P.lstrip(" "): "a number, '-' or a list of those",
    _TIMELIST_P.lstrip(" "): "seconds, '-' or a list of those",
    _ADDRLIST_P.lstrip(" "): "an address or a list of addresses",
}


def _int_or_none(text: str) -> int | None:
    return None if text == "-" else int(text)
