"""Reading fields of Kubernetes audit records, for every rule format.

Two things live here: the lazily decoded members of an audit record (`request`,
`response`, `annotation_map`, `document`, cached on the record) with small JSON helpers,
and the *canonical* fields of the record that every rule format shares (`CANONICAL`):
one `Field` object per value such as `verb` or `objectRef.resource`, whatever a rule
calls it (`ka.verb`, `jevt.value[/verb]`, Sigma's `verb`), so the rule index reads each
key once for all rules.

A path that is absent yields `MISSING`; a JSON `null` is a value. `text` renders values
as the Falco plugins do (null as `null`); Sigma rules see null as missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from logwarden.detect.ir import Field
from logwarden.normalize.k8s_audit import SOURCE as K8S_AUDIT
from logwarden.normalize.k8s_audit import AuditEvent, json_value
from logwarden.records import Record

__all__ = [
    "CANONICAL",
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
    cache = rec.cache  # `_cached`, spelled out: this runs for many records
    if cache is None:
        cache = rec.cache = {}
    elif "req" in cache:
        return cache["req"]
    value = cache["req"] = _member(rec.view.requestObject)
    return value


def response(rec: Record) -> Any:
    """`responseObject` as plain JSON values, or MISSING."""
    cache = rec.cache
    if cache is None:
        cache = rec.cache = {}
    elif "resp" in cache:
        return cache["resp"]
    value = cache["resp"] = _member(rec.view.responseObject)
    return value


def annotation_map(rec: Record) -> Any:
    """`annotations` as plain JSON values, or MISSING."""
    cache = rec.cache
    if cache is None:
        cache = rec.cache = {}
    elif "ann" in cache:
        return cache["ann"]
    value = cache["ann"] = _member(rec.view.annotations)
    return value


def document(rec: Record) -> Any:
    """The whole event as plain JSON values (for pointers outside the typed view); for
    records of other formats, what their format module makes of them (its `document`)."""
    return _cached(rec, "doc", lambda view: _document(rec, view))


def _document(rec: Record, view: Any) -> Any:
    if rec.source == K8S_AUDIT:
        return json_value(rec.raw)
    from logwarden.normalize import FORMATS

    return FORMATS[rec.source].document(rec.raw, view)


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


# --- canonical fields ------------------------------------------------------------------------


def _response_code(rec: Record) -> Value:
    s = rec.view.responseStatus
    if s is None or s.code is None:
        return None
    return str(s.code)


def _top(attr: str, *, indexable: bool = False) -> Field:
    """A plain member of the view (`verb`, `auditID`, ...)."""
    return Field(attr, lambda r: getattr(r.view, attr), indexable=indexable, expr=f"r.view.{attr}")


def _sub(top: str, attr: str, *, indexable: bool = False) -> Field:
    """`top.attr` of a typed sub-struct of the view (user, impersonatedUser, objectRef, ...)."""

    def extract(rec: Record) -> Value:
        part = getattr(rec.view, top)
        return getattr(part, attr) if part is not None else None

    return Field(
        f"{top}.{attr}",
        extract,
        indexable=indexable,
        expr=f"_m.{attr} if (_m := r.view.{top}) is not None else None",
    )


#: JSON path (dotted, as in the audit schema) -> the one Field for it. Indexable fields have
#: few distinct values; the rule index uses them to select candidate rules.
CANONICAL: dict[str, Field] = {
    "stage": _top("stage", indexable=True),
    "verb": _top("verb", indexable=True),
    "objectRef.resource": _sub("objectRef", "resource", indexable=True),
    "objectRef.subresource": _sub("objectRef", "subresource", indexable=True),
    "objectRef.namespace": _sub("objectRef", "namespace"),
    "objectRef.name": _sub("objectRef", "name"),
    "objectRef.apiGroup": _sub("objectRef", "apiGroup"),
    "user.username": _sub("user", "username"),
    "responseStatus.code": Field(
        "responseStatus.code",
        _response_code,
        indexable=True,  # a few dozen distinct codes
        expr="str(_s.code) if (_s := r.view.responseStatus) is not None "
        "and _s.code is not None else None",
    ),
    **{
        name: _top(name)
        for name in (
            "auditID",
            "requestURI",
            "userAgent",
            "level",
            "kind",
            "apiVersion",
            "stageTimestamp",
            "requestReceivedTimestamp",
            "timestamp",
        )
    },
    "user.uid": _sub("user", "uid"),
    "impersonatedUser.username": _sub("impersonatedUser", "username"),
    "impersonatedUser.uid": _sub("impersonatedUser", "uid"),
    "objectRef.uid": _sub("objectRef", "uid"),
    "objectRef.apiVersion": _sub("objectRef", "apiVersion"),
    "objectRef.resourceVersion": _sub("objectRef", "resourceVersion"),
    "responseStatus.status": _sub("responseStatus", "status"),
    "responseStatus.reason": _sub("responseStatus", "reason"),
    "responseStatus.message": _sub("responseStatus", "message"),
}
