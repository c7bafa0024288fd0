"""Extractors of the json plugin's `jevt.*`/`json.*` fields and of Falco's `evt.*` fields.

`jevt.value[ptr]` walks an RFC 6901 JSON pointer (`~1` is `/`, `~0` is `~`, numbers index
arrays; the leading `/` is optional, as in the plugin); strings come back as they are,
other values (null included) as compact JSON. `evt.time` and `evt.datetime` print local
time, as Falco does; `evt.time.iso8601` is UTC.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from logwarden.detect.audit_fields import (
    MISSING,
    Value,
    annotation_map,
    document,
    request,
    response,
    text,
)
from logwarden.records import Record, format_time_ns

Extractor = Callable[[Record], Value]

# members kept raw until needed (pointers to the typed view's plain members never get
# here: the field catalog gives them the shared canonical fields)
_RAW: dict[str, Callable[[Record], Any]] = {
    "requestObject": request,
    "responseObject": response,
    "annotations": annotation_map,
}


def normalize_pointer(pointer: str) -> str:
    """The pointer with its leading '/', which the json plugin lets rules leave out."""
    return pointer if pointer.startswith("/") or pointer == "" else "/" + pointer


def _walk(obj: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(obj, dict):
            if token not in obj:
                return MISSING
            obj = obj[token]
        elif isinstance(obj, list):
            if not token.isdigit() or int(token) >= len(obj):
                return MISSING
            obj = obj[int(token)]
        else:
            return MISSING
    return obj


def json_pointer(pointer: str) -> Extractor:
    pointer = normalize_pointer(pointer)
    if pointer == "":
        return lambda rec: text(document(rec))
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    top, rest = tokens[0], tokens[1:]
    if top in _RAW:
        part = _RAW[top]

        def lazy(rec: Record) -> Value:
            return text(_walk(part(rec), rest))

        return lazy

    def whole(rec: Record) -> Value:
        return text(_walk(document(rec), tokens))

    return whole


def obj(rec: Record) -> Value:
    return msgspec.json.format(rec.raw, indent=2).decode()


def rawtime(rec: Record) -> Value:
    return str(rec.time_ns)


def _local(ns: int, fmt: str, fraction: bool) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    out = datetime.fromtimestamp(secs).strftime(fmt)
    return f"{out}.{frac:09d}" if fraction else out


def evt_time(rec: Record) -> Value:
    return _local(rec.time_ns, "%H:%M:%S", True)


def evt_time_s(rec: Record) -> Value:
    return _local(rec.time_ns, "%H:%M:%S", False)


def evt_datetime(rec: Record) -> Value:
    return _local(rec.time_ns, "%Y-%m-%d %H:%M:%S", True)


def evt_datetime_s(rec: Record) -> Value:
    return _local(rec.time_ns, "%Y-%m-%d %H:%M:%S", False)


def evt_iso8601(rec: Record) -> Value:
    return format_time_ns(rec.time_ns)


_HOSTNAME = socket.gethostname()


def hostname(_rec: Record) -> Value:
    return _HOSTNAME
