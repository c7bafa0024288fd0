"""Sigma field names to record fields.

A Sigma field is a path into the record's JSON document (for audit records, the audit
event; records of other sources are read the same way from their raw JSON):

* a dotted path (`objectRef.resource`, `requestObject.spec.volumes.hostPath.path`): each
  step reads an object member; a step that meets an array continues into every element,
  so a path through arrays yields every value it reaches (Sigma's "any value matches");
* a JSON pointer (`/annotations/authorization.k8s.io~1decision`), for keys that contain
  dots; it reads exactly one value.

One name is logwarden's own, for what no path can name: `sourceIPs.last`, the address of
the connection's peer (the apiserver lists the `X-Forwarded-For` and `X-Real-Ip` addresses
a client sent first, and the peer last; all but the last can be set by the client).

Values are text: strings as they are, numbers and booleans as JSON (`401`, `true`),
objects and arrays as compact JSON; JSON `null` counts as missing, as Sigma's `null`
means. The fields every rule format shares (`verb`, `objectRef.resource`, ...) resolve
to the canonical Field objects of `detect/audit_fields.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from logwarden.detect.audit_fields import (
    CANONICAL,
    MISSING,
    annotation_map,
    document,
    request,
    response,
)
from logwarden.detect.ir import Field
from logwarden.errors import RuleError
from logwarden.normalize.k8s_audit import SOURCE as K8S_AUDIT
from logwarden.normalize.k8s_audit import json_value
from logwarden.records import Record

__all__ = ["KEYWORDS", "presence", "resolve"]

_encode = msgspec.json.encode
_RAW: dict[str, Callable[[Record], Any]] = {
    "requestObject": request,
    "responseObject": response,
    "annotations": annotation_map,
}


def _text(value: Any) -> str | None:
    if value is None or value is MISSING:
        return None
    if isinstance(value, str):
        return value
    return _encode(value).decode()


def _fan_out(value: Any, steps: list[str], out: list[str]) -> None:
    """Collect every value at `steps` below `value`, entering arrays at every step."""
    if isinstance(value, list):
        for element in value:
            _fan_out(element, steps, out)
        return
    if not steps:
        text = _text(value)
        if text is not None:
            out.append(text)
        return
    if isinstance(value, dict) and steps[0] in value:
        _fan_out(value[steps[0]], steps[1:], out)


def _dotted(path: str, audit: bool) -> Field:
    steps = path.split(".")
    top, rest = steps[0], steps[1:]
    part = _RAW.get(top) if audit else None

    def extract(rec: Record) -> list[str] | None:
        if part is not None:
            base = part(rec)
        else:
            doc = document(rec)
            base = doc.get(top, MISSING) if isinstance(doc, dict) else MISSING
        if base is MISSING:
            return None
        out: list[str] = []
        _fan_out(base, rest, out)
        return out or None

    return Field(path, extract, is_list=True, cost=10 if part is not None else 20)


def _source_ips(rec: Record) -> list[str] | None:
    # the typed view holds these as strings; a JSON null in them would have made the event
    # malformed, so no value needs the text conversion
    return rec.view.sourceIPs or None


def _groups(member: str) -> Field:
    def extract(rec: Record) -> list[str] | None:
        user = getattr(rec.view, member)
        return (user.groups or None) if user is not None else None

    return Field(f"{member}.groups", extract, is_list=True)


def _peer_ip(rec: Record) -> str | None:
    ips = rec.view.sourceIPs
    return ips[-1] if ips else None


#: logwarden's own fields of an audit event (see the module doc)
_DERIVED = {
    "sourceIPs.last": Field(
        "sourceIPs.last", _peer_ip, expr="_i[-1] if (_i := r.view.sourceIPs) else None"
    ),
}

# list members of the typed view, read without decoding the whole event
_TYPED_LISTS = {
    "sourceIPs": Field("sourceIPs", _source_ips, is_list=True),
    "user.groups": _groups("user"),
    "impersonatedUser.groups": _groups("impersonatedUser"),
}


def _tokens(pointer: str) -> list[str]:
    """The reference tokens of a JSON pointer (RFC 6901), unescaped."""
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _step(value: Any, token: str) -> Any:
    """One pointer step: an object's member or an array's element, or MISSING."""
    if isinstance(value, dict) and token in value:
        return value[token]
    if isinstance(value, list) and token.isdigit() and int(token) < len(value):
        return value[int(token)]
    return MISSING


def _pointer(pointer: str, audit: bool) -> Field:
    tokens = _tokens(pointer)
    part = _RAW.get(tokens[0]) if audit and tokens else None
    if part is not None:
        tokens = tokens[1:]

    def extract(rec: Record) -> str | None:
        value: Any = part(rec) if part is not None else document(rec)
        for token in tokens:
            value = _step(value, token)
        return _text(value)

    return Field(pointer, extract, cost=10 if part is not None else 20)


def _present(value: Any, steps: list[str]) -> bool:
    """Whether `steps` lead to a member below `value` (entering arrays at every step),
    whatever its value: null and an empty array are present."""
    if not steps:
        return True
    if isinstance(value, list):
        return any(_present(element, steps) for element in value)
    if isinstance(value, dict) and steps[0] in value:
        return _present(value[steps[0]], steps[1:])
    return False


_presences: dict[tuple[str, str], Field] = {}


def presence(source: str, name: str) -> Field:
    """Whether the event has the field `name` at all (Sigma's `exists`, which "only
    verifies the presence of a field, not its value, be it empty or null"): "" when it
    has, None when not.

    A field with a value is present. Without one, the field may still be there as null or
    an empty array, which only the JSON tells: for an audit event, the member it is in
    (`requestObject`, `responseObject`, `annotations`, decoded once per event for every
    rule); for other records, the whole record. The members of an audit event that its
    typed view reads (`user`, `impersonatedUser`, `objectRef`, ...) are present when they
    have a value: the apiserver leaves out those that are empty, never writing them null.
    """
    found = _presences.get((source, name))
    if found is not None:
        return found
    field = value = resolve(source, name)
    pointer = name.startswith("/")
    steps = _tokens(name) if pointer else name.split(".")
    audit = source == K8S_AUDIT
    part = _RAW.get(steps[0]) if audit else None
    if not audit or part is not None:
        extract_value = value.extract

        def there(rec: Record) -> bool:
            doc, rest = (part(rec), steps[1:]) if part is not None else (document(rec), steps)
            if pointer:
                for token in rest:
                    doc = _step(doc, token)
                return doc is not MISSING
            return doc is not MISSING and _present(doc, rest)

        def extract(rec: Record) -> str | None:
            return "" if extract_value(rec) is not None or there(rec) else None

        field = Field(f"{name}|exists", extract, cost=10)
    _presences[(source, name)] = field
    return field


def _leaves(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        for member in value.values():
            _leaves(member, out)
    elif isinstance(value, list):
        for element in value:
            _leaves(element, out)
    else:
        text = _text(value)
        if text is not None:
            out.append(text)


def _json_of(rec: Record) -> Any:
    """The record as received, as JSON values, or MISSING for a record that is text (an
    access log line, a journal entry's message)."""
    if rec.source == K8S_AUDIT:
        return document(rec)
    if rec.raw[:1] not in (b"{", b"["):
        return MISSING
    try:
        return json_value(rec.raw)
    except msgspec.DecodeError:
        return MISSING


def _values(rec: Record) -> list[str] | None:
    cache = rec.cache
    if cache is not None and "kw" in cache:
        found: list[str] | None = cache["kw"]
        return found
    out: list[str] = []
    doc = _json_of(rec)
    if doc is not MISSING:
        _leaves(doc, out)
    else:
        out.append(rec.raw.decode("utf-8", "replace"))
    if rec.cache is None:
        rec.cache = {}
    rec.cache["kw"] = out or None
    return out or None


#: Every value of the event (strings as they are, numbers and booleans as JSON; not the
#: member names), which Sigma keywords (values without a field) search: "across an entire
#: event". A record received as text (an access log line) is that text.
KEYWORDS = Field("<keywords>", _values, is_list=True, cost=20)

_made: dict[tuple[str, str], Field] = {}


def resolve(source: str, name: str) -> Field:
    """The Field a Sigma field name stands for on records of `source`."""
    key = (source, name)
    field = _made.get(key)
    if field is not None:
        return field
    if not name or name.strip() != name:
        raise RuleError(f"field name {name!r} is empty or has surrounding spaces")
    audit = source == K8S_AUDIT
    if name.startswith("/"):
        field = _pointer(name, audit)
    elif audit and name in CANONICAL:
        field = CANONICAL[name]
    elif audit and name in _TYPED_LISTS:
        field = _TYPED_LISTS[name]
    elif audit and name in _DERIVED:
        field = _DERIVED[name]
    else:
        field = _dotted(name, audit)
    _made[key] = field
    return field
