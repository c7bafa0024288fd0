"""Shared helpers of the Falco field extractors: lazily decoded parts and JSON-to-text.

A path that is absent yields `MISSING`; a JSON `null` is a value (rendered `null`), as in
the plugins' fastjson code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from logwarden.normalize.k8s_audit import AuditEvent, json_value
from logwarden.records import Record

__all__ = [
    "MISSING",
    "Value",
    "annotation_map",
    "document",
    "get",
    "items",
    "nonempty",
    "pick",
    "request",
    "response",
    "text",
]

Value = str | list[str] | None


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: An absent path (as opposed to a JSON null).
MISSING: Any = _Missing()
_encode = msgspec.json.encode


def _cached(rec: Record, key: str, make: Callable[[AuditEvent], Any]) -> Any:
    cache = rec.cache
    if cache is None:
        cache = rec.cache = {}
    try:
        return cache[key]
    except KeyError:
        value = cache[key] = make(rec.view)
        return value


def _member(raw: msgspec.Raw) -> Any:
    return json_value(raw) if raw else MISSING


def request(rec: Record) -> Any:
    """`requestObject` as plain JSON values, or MISSING."""
    return _cached(rec, "req", lambda v: _member(v.requestObject))


def response(rec: Record) -> Any:
    """`responseObject` as plain JSON values, or MISSING."""
    return _cached(rec, "resp", lambda v: _member(v.responseObject))


def annotation_map(rec: Record) -> Any:
    """`annotations` as plain JSON values, or MISSING."""
    return _cached(rec, "ann", lambda v: _member(v.annotations))


def document(rec: Record) -> Any:
    """The whole event as plain JSON values (for pointers outside the typed view)."""
    return _cached(rec, "doc", lambda _v: json_value(rec.raw))


def text(value: Any) -> str | None:
    """A JSON value as a field value: strings as they are, anything else (null included)
    as compact JSON; None for MISSING."""
    if value is MISSING:
        return None
    if isinstance(value, str):
        return value
    return _encode(value).decode()


def get(obj: Any, *path: str) -> Any:
    """`obj[path[0]][path[1]]...`, or MISSING when a step is absent or not an object."""
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return MISSING
        obj = obj[key]
    return obj


def items(obj: Any) -> list[Any]:
    """The elements of a JSON array (none for anything else)."""
    return obj if isinstance(obj, list) else []


def pick(values: list[Any], index: int | None) -> list[Any]:
    """All elements, or only element `index` (none if out of range) for a `[N]` argument."""
    if index is None:
        return values
    return values[index : index + 1]


def nonempty(values: list[str]) -> list[str] | None:
    """A list field's value: no values is a missing field."""
    return values or None
