"""Kubernetes audit events (`audit.k8s.io/v1` and `v1beta1`): how raw bytes become a view.

One input unit (a log line, a webhook body) holds a single `Event`, an `EventList`
(`items`) or a JSON array of those. Decoding is lazy where it pays: the typed partial
struct below reads only the top-level members rules look at; `requestObject`,
`responseObject` and `annotations` stay `msgspec.Raw` until a rule asks for them.

An input unit is an audit event when it is a JSON object with `auditID`, `stage`, `verb`
and a timestamp (`stageTimestamp`, or `timestamp` in v1beta1), and `kind`, if present,
is ``Event``. Anything else is malformed and reported with the reason.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from logwarden.normalize.base import MalformedInput, checked_time_ns, no_derived

__all__ = [
    "FORMAT",
    "SOURCE",
    "AuditEvent",
    "alert_ids",
    "alert_labels",
    "decode",
    "decode_raw",
    "document",
    "event_time_ns",
    "json_value",
    "parse_rfc3339_ns",
]

#: The `Record.source` of audit events, whatever carried them (file, webhook, cloud).
SOURCE = "k8s_audit"

_EMPTY = msgspec.Raw(b"")


class UserInfo(msgspec.Struct, gc=False):
    username: str | None = None
    uid: str | None = None
    groups: list[str] | None = None


class ObjectReference(msgspec.Struct, gc=False):
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    apiGroup: str | None = None
    apiVersion: str | None = None
    resourceVersion: str | None = None
    subresource: str | None = None


class ResponseStatus(msgspec.Struct, gc=False):
    code: int | None = None
    status: str | None = None
    reason: str | None = None
    message: str | None = None


class AuditEvent(msgspec.Struct, gc=False):
    """The members of an audit Event that logwarden reads eagerly; names as in the schema."""

    kind: str | None = None
    apiVersion: str | None = None
    level: str | None = None
    auditID: str | None = None
    stage: str | None = None
    requestURI: str | None = None
    verb: str | None = None
    user: UserInfo | None = None
    impersonatedUser: UserInfo | None = None
    sourceIPs: list[str] | None = None
    userAgent: str | None = None
    objectRef: ObjectReference | None = None
    responseStatus: ResponseStatus | None = None
    requestObject: msgspec.Raw = _EMPTY
    responseObject: msgspec.Raw = _EMPTY
    requestReceivedTimestamp: str | None = None
    stageTimestamp: str | None = None
    timestamp: str | None = None
    annotations: msgspec.Raw = _EMPTY


class _Container(msgspec.Struct):
    kind: str | None = None
    items: list[msgspec.Raw] | None = None


class _TypedList(msgspec.Struct):
    items: list[AuditEvent] | None = None


_event_decoder = msgspec.json.Decoder(AuditEvent)
_typed_list_decoder = msgspec.json.Decoder(_TypedList)
_container_decoder = msgspec.json.Decoder(_Container)
_array_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_generic_decode = msgspec.json.Decoder().decode
_EVENT_LIST_HEAD = b'{"kind":"EventList"'
_TOO_DEEP = "JSON nested too deeply to read"

#: An item of a container: its own bytes and either its view or why it is malformed.
Item = tuple[bytes, "AuditEvent | MalformedInput"]


def _check(ev: AuditEvent) -> AuditEvent:
    if ev.kind is not None and ev.kind != "Event":
        raise MalformedInput(f'not a Kubernetes audit event: kind is "{ev.kind}", expected "Event"')
    if ev.auditID is None:
        raise MalformedInput("not a Kubernetes audit event: missing auditID")
    if ev.stage is None:
        raise MalformedInput("not a Kubernetes audit event: missing stage")
    if ev.verb is None:
        raise MalformedInput("not a Kubernetes audit event: missing verb")
    if ev.stageTimestamp is None and ev.timestamp is None:
        raise MalformedInput(
            "not a Kubernetes audit event: missing stageTimestamp (v1) and timestamp (v1beta1)"
        )
    return ev


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"invalid UTF-8 at byte {exc.start}: JSON text must be UTF-8"
    text = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        return f"not a Kubernetes audit event: {text}"
    return f"invalid JSON: {text}"


def _malformed(exc: Exception) -> MalformedInput:
    truncated = isinstance(exc, msgspec.DecodeError) and "truncated" in str(exc)
    return MalformedInput(_reason(exc), truncated=truncated)


def decode(data: bytes) -> AuditEvent | list[Item]:
    """Decode one input unit.

    Returns the event's view for a single Event (the fast, common case), or a list of
    `(item bytes, view or MalformedInput)` for an EventList or a JSON array. Raises
    `MalformedInput` when the unit as a whole is not usable.
    """
    if data.startswith(_EVENT_LIST_HEAD):  # the webhook's body, kind first as the apiserver
        try:  # writes it: not read as an Event first
            return _decode_list(data)
        except MalformedInput:
            pass  # said as below, whatever the body turns out to be
    try:
        ev = _event_decoder.decode(data)
    except msgspec.ValidationError as exc:
        if data.lstrip()[:1] == b"[":
            return _decode_array(data)
        raise MalformedInput(_reason(exc)) from None
    except msgspec.DecodeError as exc:
        raise _malformed(exc) from None
    except UnicodeDecodeError as exc:
        raise _malformed(exc) from None
    except RecursionError:
        raise MalformedInput(_TOO_DEEP) from None
    kind = ev.kind
    if kind is None or kind == "Event":  # `_check`, inlined for the common case
        if (
            ev.auditID is not None
            and ev.stage is not None
            and ev.verb is not None
            and (ev.stageTimestamp is not None or ev.timestamp is not None)
        ):
            return ev
    elif kind == "EventList":
        return _decode_list(data)
    return _check(ev)


def _float(text: str) -> float | Decimal:
    """A JSON number with a fraction or exponent: a float, or when no float holds it
    (`1e999`) the exact number."""
    value = float(text)
    return value if math.isfinite(value) else Decimal(text)


_wide_decode = msgspec.json.Decoder(float_hook=_float).decode


def json_value(data: bytes) -> Any:
    """Plain JSON values of bytes already known to be valid JSON (a lazily kept member).

    Invalid UTF-8 inside strings becomes U+FFFD, as Go's encoder (the apiserver's) would
    have written it; in the members decoded eagerly it makes the whole event malformed.
    A number no float holds (`1e999`), or an integer longer than int() reads, is a
    `Decimal`. Raises MalformedInput for JSON nested deeper than the interpreter can follow.
    """
    if not data:
        return None
    try:
        try:
            return _any_number(data)
        except UnicodeDecodeError:
            return _any_number(bytes(data).decode("utf-8", "replace").encode())
    except RecursionError:
        raise MalformedInput(_TOO_DEEP) from None


def _long_int(text: str) -> int | Decimal:
    """A JSON integer: an int, or when it is longer than int() reads (4,300 digits) the
    exact number."""
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def _any_number(data: bytes) -> Any:
    try:
        return _generic_decode(data)
    except msgspec.ValidationError:  # a number out of a float's range, or a long integer
        try:
            return _wide_decode(data)
        except msgspec.ValidationError:  # an integer int() refuses: msgspec has no int hook
            return json.loads(data, parse_int=_long_int, parse_float=_float)


def decode_raw(raw: bytes) -> AuditEvent:
    """Decode the bytes of exactly one Event (an item of a list), raising MalformedInput."""
    try:
        return _check(_event_decoder.decode(raw))
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise _malformed(exc) from None
    except RecursionError:
        raise MalformedInput(_TOO_DEEP) from None


def _items(raws: list[msgspec.Raw], where: str) -> list[Item]:
    out: list[Item] = []
    for i, raw in enumerate(raws):
        item = bytes(raw)
        try:
            out.append((item, decode_raw(item)))
        except MalformedInput as exc:
            out.append((item, MalformedInput(f"{where}[{i}]: {exc}")))
    return out


def _decode_list(data: bytes) -> list[Item]:
    try:
        doc = _container_decoder.decode(data)
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise MalformedInput(f"not a Kubernetes audit EventList: {exc}") from None
    except RecursionError:
        raise MalformedInput(_TOO_DEEP) from None
    if doc.items is None:
        raise MalformedInput("not a Kubernetes audit EventList: missing items")
    fast = _typed_items(data, doc.items)
    return fast if fast is not None else _items(doc.items, "items")


def _typed_items(data: bytes, raws: list[msgspec.Raw]) -> list[Item] | None:
    """The items of an EventList decoded in one pass (the webhook's common case, about
    twice as fast as item by item), or None when some item is not an event (the caller
    then finds which, item by item)."""
    try:
        views = _typed_list_decoder.decode(data).items
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        return None
    if views is None or len(views) != len(raws):
        return None
    try:
        return [(bytes(raw), _check(view)) for raw, view in zip(raws, views, strict=True)]
    except MalformedInput:
        return None


def _decode_array(data: bytes) -> list[Item]:
    try:
        raws = _array_decoder.decode(data)
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise _malformed(exc) from None
    except RecursionError:
        raise MalformedInput(_TOO_DEEP) from None
    out: list[Item] = []
    for i, raw in enumerate(raws):
        item = bytes(raw)
        try:
            sub = decode(item)
        except MalformedInput as exc:
            out.append((item, MalformedInput(f"[{i}]: {exc}")))
            continue
        if isinstance(sub, list):
            out.extend(sub)
        else:
            out.append((item, sub))
    return out


_TS = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.([0-9]{1,9})[0-9]*)?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)
_seconds: dict[str, int] = {}
_SCALE: list[int] = [10 ** (9 - n) for n in range(10)]


def parse_rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 timestamp, keeping all nine digits.

    Raises MalformedInput for anything else, and for a time outside years 1 to 9999 in UTC
    (`0001-01-01T00:00:00+01:00`: no record may have it). Whole seconds are cached: the
    events of one log share few distinct seconds, and this runs once per event. The common
    UTC form (`2024-05-17T08:00:00.123456Z`) takes a fast path without a regular expression.
    """
    if len(text) > 21 and text[19] == "." and text[-1] == "Z":
        secs = _seconds.get(text[:19])
        frac = text[20:-1]
        if secs is not None and len(frac) <= 9 and frac.isascii() and frac.isdigit():
            return secs * 1_000_000_000 + int(frac) * _SCALE[len(frac)]
    m = _TS.match(text)
    if m is None:
        raise MalformedInput(f"timestamp {text!r} is not RFC 3339")
    base, digits, zone = m.groups()
    utc = zone in ("Z", "z")
    key = base if utc else base + zone
    secs = _seconds.get(key)
    if secs is None:
        try:
            secs = int(datetime.fromisoformat(base + ("+00:00" if utc else zone)).timestamp())
        except ValueError:
            raise MalformedInput(f"timestamp {text!r} is not a valid date and time") from None
        checked_time_ns(secs * 1_000_000_000, f"timestamp {text!r}")  # an offset can leave 1-9999
        if len(_seconds) > 65536:
            _seconds.clear()
        _seconds[key] = secs
    if digits is None:
        return secs * 1_000_000_000
    return secs * 1_000_000_000 + int(digits) * _SCALE[len(digits)]


def event_time_ns(ev: AuditEvent) -> int:
    """The event's time: `stageTimestamp`, else v1beta1's `timestamp`."""
    text = ev.stageTimestamp or ev.timestamp
    if text is None:
        raise MalformedInput("not a Kubernetes audit event: missing stageTimestamp and timestamp")
    # the fast path of parse_rfc3339_ns, inlined: this runs once per event
    if len(text) > 21 and text[19] == "." and text[-1] == "Z":
        secs = _seconds.get(text[:19])
        frac = text[20:-1]
        if secs is not None and len(frac) <= 9 and frac.isascii() and frac.isdigit():
            return secs * 1_000_000_000 + int(frac) * _SCALE[len(frac)]
    return parse_rfc3339_ns(text)


def alert_ids(ev: AuditEvent) -> tuple[str | None, str | None]:
    """The identifiers an alert about this event carries: audit ID and stage."""
    return ev.auditID, ev.stage


def alert_labels(ev: AuditEvent) -> dict[str, str]:
    """Alert labels of this event: the object's namespace, the user and the resource
    (`pods/exec` with a subresource)."""
    labels = {}
    ref = ev.objectRef
    if ref is not None:
        if ref.namespace:
            labels["namespace"] = ref.namespace
        if ref.resource:
            sub = ref.subresource
            labels["resource"] = f"{ref.resource}/{sub}" if sub else ref.resource
    user = ev.user
    if user is not None and user.username:
        labels["user"] = user.username
    return labels


def document(raw: bytes, _view: AuditEvent) -> Any:
    """The whole event as plain JSON values."""
    return json_value(raw)


class _AuditFormat:
    source = SOURCE
    # the module functions themselves, so a call through FORMAT adds no frame
    decode = staticmethod(decode)
    time_ns = staticmethod(event_time_ns)
    alert_ids = staticmethod(alert_ids)
    alert_labels = staticmethod(alert_labels)
    document = staticmethod(document)
    derived = staticmethod(no_derived)


#: The audit format as a `normalize.base.Format`.
FORMAT = _AuditFormat()
