"""Kubernetes Event objects (core/v1 `Event`, `events.k8s.io/v1` and `v1beta1`).

One input unit is one Event as JSON: what a watch on events yields (the `object` of a
watch event), one line of an event exporter, or an `EventList`/`List` (`kubectl get
events -o json`), whose items decode one by one. `kind` and `apiVersion` may be absent
(exporters and the list items of `kubectl` drop them).

The view is the `events.k8s.io/v1` shape whatever the input was, so one set of rules reads
every Event:

==========================  ==============================================================
v1 field                    core/v1 (and v1beta1) source
==========================  ==============================================================
``regarding``               ``involvedObject`` (kind, namespace, name, uid, apiVersion,
                            resourceVersion, fieldPath)
``related``                 ``related``
``note``                    ``message``
``reportingController``     ``reportingComponent``, else ``source.component`` (an empty
                            string counts as absent: old events send ``""``)
``reportingInstance``       ``reportingInstance``, else ``source.host``
``deprecatedSource``        ``source``
``deprecatedFirstTimestamp``  ``firstTimestamp``
``deprecatedLastTimestamp``   ``lastTimestamp``
``deprecatedCount``         ``count``
``series``                  ``series``, else ``{count, lastObservedTime: lastTimestamp}``
                            when the count is above 1
==========================  ==============================================================

`count` (added by logwarden) is how many times the event happened: ``series.count``,
else ``deprecatedCount`` (core ``count``), else 1. Rules say ``reason: BackOff`` and
``count|gte: 5``.

The event's time (`time_ns`) is the time of the latest occurrence this object reports,
the first of: ``series.lastObservedTime``, ``eventTime``, ``deprecatedLastTimestamp``
(core ``lastTimestamp``), ``deprecatedFirstTimestamp`` (core ``firstTimestamp``),
``metadata.creationTimestamp``. ``eventTime`` comes after the series' time on purpose:
it is when the *first* occurrence happened and stays the same on every series update.
``eventTime: null`` is common (events written through the core API, as the 2018 GKE and
2023 kind samples show) and falls through to the next.

document() field names: ``regarding.{kind,namespace,name,uid,apiVersion,resourceVersion,
fieldPath}``, ``related.*`` (same), ``reason``, ``note``, ``type``, ``action``,
``reportingController``, ``reportingInstance``, ``eventTime``, ``series.{count,
lastObservedTime}``, ``deprecatedSource.{component,host}``, ``deprecatedFirstTimestamp``,
``deprecatedLastTimestamp``, ``deprecatedCount``, ``metadata.{namespace,name,uid,
resourceVersion,creationTimestamp}``, ``count``; members absent from the input are left
out. What cannot be recovered: labels an exporter adds to ``involvedObject`` (kubernetes
-event-exporter's ``involvedObject.labels``, not part of the API object) and
``metadata.selfLink`` (removed in Kubernetes 1.20) are dropped; ``series.state`` (removed)
too.

`dedupe_key` tells a watcher which updates are repeats: the same object (uid) at the same
count is the same occurrence, whatever else a MODIFIED watch event changed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from logwarden.normalize.base import MalformedInput, no_derived
from logwarden.normalize.k8s_audit import parse_rfc3339_ns

__all__ = [
    "FORMAT",
    "SOURCE",
    "EventMeta",
    "EventSeries",
    "EventSource",
    "K8sEvent",
    "ObjectRef",
    "alert_ids",
    "alert_labels",
    "decode",
    "decode_one",
    "dedupe_key",
    "document",
    "event_time_ns",
]

#: The `Record.source` of Kubernetes Events.
SOURCE = "k8s_event"

_API_VERSIONS = frozenset({"v1", "events.k8s.io/v1", "events.k8s.io/v1beta1"})


class ObjectRef(msgspec.Struct, omit_defaults=True, gc=False):
    """The object an event is about (`regarding`, core `involvedObject`) or `related`."""

    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    apiVersion: str | None = None
    resourceVersion: str | None = None
    fieldPath: str | None = None


class EventMeta(msgspec.Struct, omit_defaults=True, gc=False):
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    creationTimestamp: str | None = None


class EventSource(msgspec.Struct, omit_defaults=True, gc=False):
    component: str | None = None
    host: str | None = None


class EventSeries(msgspec.Struct, omit_defaults=True, gc=False):
    count: int | None = None
    lastObservedTime: str | None = None


class _Wire(msgspec.Struct, gc=False):
    """Every member of the three Event versions that the view reads."""

    kind: str | None = None
    apiVersion: str | None = None
    metadata: EventMeta | None = None
    regarding: ObjectRef | None = None
    involvedObject: ObjectRef | None = None
    related: ObjectRef | None = None
    reason: str | None = None
    note: str | None = None
    message: str | None = None
    type: str | None = None
    action: str | None = None
    reportingController: str | None = None
    reportingComponent: str | None = None
    reportingInstance: str | None = None
    source: EventSource | None = None
    deprecatedSource: EventSource | None = None
    eventTime: str | None = None
    series: EventSeries | None = None
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    count: int | None = None
    deprecatedFirstTimestamp: str | None = None
    deprecatedLastTimestamp: str | None = None
    deprecatedCount: int | None = None


class K8sEvent(msgspec.Struct, omit_defaults=True, gc=False):
    """An Event in the `events.k8s.io/v1` shape, plus `count` (total occurrences)."""

    regarding: ObjectRef
    count: int
    related: ObjectRef | None = None
    reason: str | None = None
    note: str | None = None
    type: str | None = None
    action: str | None = None
    reportingController: str | None = None
    reportingInstance: str | None = None
    eventTime: str | None = None
    series: EventSeries | None = None
    deprecatedSource: EventSource | None = None
    deprecatedFirstTimestamp: str | None = None
    deprecatedLastTimestamp: str | None = None
    deprecatedCount: int | None = None
    metadata: EventMeta | None = None


class _Container(msgspec.Struct):
    kind: str | None = None
    items: list[msgspec.Raw] | None = None


_wire_decoder = msgspec.json.Decoder(_Wire)
_container_decoder = msgspec.json.Decoder(_Container)
_to_builtins = msgspec.to_builtins
_JSON_ERRORS = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError)

#: An item of a list: its own bytes and either its view or why it is malformed.
Item = tuple[bytes, "K8sEvent | MalformedInput"]


def _reason(exc: Exception) -> MalformedInput:
    if isinstance(exc, UnicodeDecodeError):
        return MalformedInput(f"invalid UTF-8 at byte {exc.start}: JSON text must be UTF-8")
    if isinstance(exc, RecursionError):
        return MalformedInput("JSON nested too deeply to read")
    if isinstance(exc, msgspec.ValidationError):
        return MalformedInput(f"not a Kubernetes Event: {exc}")
    return MalformedInput(f"invalid JSON: {exc}", truncated="truncated" in str(exc))


def _normalize(w: _Wire) -> K8sEvent:
    if w.kind is not None and w.kind != "Event":
        raise MalformedInput(f'not a Kubernetes Event: kind is "{w.kind}", expected "Event"')
    if w.apiVersion is not None and w.apiVersion not in _API_VERSIONS:
        raise MalformedInput(
            f'not a Kubernetes Event: apiVersion is "{w.apiVersion}", expected v1, '
            "events.k8s.io/v1 or events.k8s.io/v1beta1"
        )
    regarding = w.regarding or w.involvedObject
    if regarding is None:
        raise MalformedInput("not a Kubernetes Event: missing regarding (involvedObject)")
    source = w.source or w.deprecatedSource
    dep_count = w.deprecatedCount if w.deprecatedCount is not None else w.count
    last = w.deprecatedLastTimestamp or w.lastTimestamp
    series = w.series
    if series is None and dep_count is not None and dep_count > 1:
        series = EventSeries(dep_count, last)
    count = series.count if series is not None and series.count else (dep_count or 1)
    return K8sEvent(
        regarding=regarding,
        count=count,
        related=w.related,
        reason=w.reason,
        note=w.note if w.note is not None else w.message,
        type=w.type,
        action=w.action,
        reportingController=(
            w.reportingController
            or w.reportingComponent
            or (source.component if source is not None else None)
        ),
        reportingInstance=w.reportingInstance or (source.host if source is not None else None),
        eventTime=w.eventTime,
        series=series,
        deprecatedSource=source,
        deprecatedFirstTimestamp=w.deprecatedFirstTimestamp or w.firstTimestamp,
        deprecatedLastTimestamp=last,
        deprecatedCount=dep_count,
        metadata=w.metadata,
    )


def decode_one(data: bytes) -> K8sEvent:
    """The view of exactly one Event (an item of a list), raising MalformedInput."""
    try:
        return _normalize(_wire_decoder.decode(data))
    except _JSON_ERRORS as exc:
        raise _reason(exc) from None


def decode(data: bytes) -> K8sEvent | list[Item]:
    """Decode one input unit: the view of one Event, or `(item bytes, view or
    MalformedInput)` for each item of an `EventList` or `List`."""
    try:
        wire = _wire_decoder.decode(data)
    except _JSON_ERRORS as exc:
        raise _reason(exc) from None
    if wire.kind in ("EventList", "List"):
        return _decode_list(data)
    return _normalize(wire)


def _decode_list(data: bytes) -> list[Item]:
    try:
        items = _container_decoder.decode(data).items
    except _JSON_ERRORS as exc:
        raise MalformedInput(f"not a Kubernetes EventList: {exc}") from None
    if items is None:
        raise MalformedInput("not a Kubernetes EventList: missing items")
    out: list[Item] = []
    for i, raw in enumerate(items):
        item = bytes(raw)
        try:
            out.append((item, decode_one(item)))
        except MalformedInput as exc:
            out.append((item, MalformedInput(f"items[{i}]: {exc}")))
    return out


def event_time_ns(ev: K8sEvent) -> int:
    """The time of the latest occurrence (the order is in the module docstring)."""
    series = ev.series
    meta = ev.metadata
    text = (
        (series.lastObservedTime if series is not None else None)
        or ev.eventTime
        or ev.deprecatedLastTimestamp
        or ev.deprecatedFirstTimestamp
        or (meta.creationTimestamp if meta is not None else None)
    )
    if not text:
        raise MalformedInput(
            "Kubernetes Event has no time: no series.lastObservedTime, eventTime, "
            "lastTimestamp, firstTimestamp or metadata.creationTimestamp"
        )
    return parse_rfc3339_ns(text)


def alert_ids(ev: K8sEvent) -> tuple[str | None, str | None]:
    """The Event object's uid; Events have no stage."""
    meta = ev.metadata
    return (meta.uid if meta is not None else None), None


def alert_labels(ev: K8sEvent) -> dict[str, str]:
    """`namespace` (the regarded object's, else the Event's own), `resource` (the regarded
    object's kind in lower case, `pod`: an Event names a kind, not a resource, and no
    plural can be derived without discovery) and `object` (`Kind/name`)."""
    labels: dict[str, str] = {}
    ref = ev.regarding
    meta = ev.metadata
    namespace = ref.namespace or (meta.namespace if meta is not None else None)
    if namespace:
        labels["namespace"] = namespace
    if ref.kind:
        labels["resource"] = ref.kind.lower()
        if ref.name:
            labels["object"] = f"{ref.kind}/{ref.name}"
    return labels


def document(_raw: bytes, ev: K8sEvent) -> Any:
    """The normalized v1 shape with `count`, as plain JSON values."""
    return _to_builtins(ev)


def dedupe_key(ev: K8sEvent) -> tuple[str, int]:
    """What identifies this occurrence: the Event object (its uid, else
    `namespace/name`) and its count. A MODIFIED watch event with the same key as one
    already seen is a repeat (a resync, a metadata change) and can be dropped; a series
    update raises the count and is new."""
    meta = ev.metadata
    ident = meta.uid if meta is not None else None
    if not ident:
        ns = meta.namespace if meta is not None else None
        name = meta.name if meta is not None else None
        ident = f"{ns or ''}/{name or ''}"
    return ident, ev.count


class _EventFormat:
    source = SOURCE
    decode = staticmethod(decode)
    time_ns = staticmethod(event_time_ns)
    alert_ids = staticmethod(alert_ids)
    alert_labels = staticmethod(alert_labels)
    document = staticmethod(document)
    derived = staticmethod(no_derived)


#: The Kubernetes Event format as a `normalize.base.Format`.
FORMAT = _EventFormat()
