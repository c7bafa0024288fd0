"""Correlation: alerts about how often, how varied and in what order rules match.

The four Sigma correlation types, evaluated as a stream over event time:

* ``event_count``: matches of the base rules per group within `timespan`;
* ``value_count``: distinct values of one field among those matches;
* ``temporal``: every base rule matched within `timespan` (in any order);
* ``temporal_ordered``: the base rules matched in the given order within `timespan`.

Windows slide: for `gt`/`gte` conditions an alert fires as soon as the matches of the last
`timespan` satisfy it, and the group starts over. Conditions that can only be judged once
a window is over (`lt`, `lte`, `eq`, `neq`) use a window that opens at the group's first
match and are judged when it closes.

Replay is deterministic: matches are buffered and processed in event-time order once the
watermark (the latest event time seen, minus the allowed lateness) has passed them, so
events out of order by up to `lateness` give the same alerts as sorted input. A match
older than the watermark is too late: it is counted (`late`), not used. State is bounded:
groups whose window has passed are dropped, and past `max_groups` per correlation the least
recently updated group is dropped and counted (`overflow`).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from logwarden.detect.ir import Extractor, Field
from logwarden.records import (
    Alert,
    Origin,
    Record,
    fingerprint,
    format_duration_ns,
    format_time_ns,
)

__all__ = ["KINDS", "Correlation", "Correlator"]

KINDS = ("event_count", "value_count", "temporal", "temporal_ordered")
_OPS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda n, k: n > k,
    "gte": lambda n, k: n >= k,
    "lt": lambda n, k: n < k,
    "lte": lambda n, k: n <= k,
    "eq": lambda n, k: n == k,
    "neq": lambda n, k: n != k,
}
_AT_ONCE = {"gt", "gte"}  # judged as matches arrive; the others when a window closes
_NOTHING: list[Alert] = []  # returned when nothing is due (never appended to)


@dataclass
class Correlation:
    """One correlation rule, with its base rules resolved to their names in the engine."""

    name: str
    kind: str
    rules: tuple[str, ...]  # base rule names, in the rule's order
    timespan_ns: int
    op: str
    count: int
    group_by: tuple[str, ...] = ()
    #: per base rule name, the fields to read for `group_by` (aliases resolved)
    group_fields: dict[str, tuple[Field, ...]] = field(default_factory=dict)
    #: value_count: per base rule name, the field whose distinct values are counted
    value_fields: dict[str, Field] = field(default_factory=dict)
    priority: str = "Warning"
    severity: str = "medium"
    tags: tuple[str, ...] = ()
    desc: str = ""
    origin: str = ""
    generate: bool = False


class _Event(msgspec.Struct, gc=False):
    time_ns: int
    rule: str
    group: tuple[str | None, ...]
    value: str | None
    audit_id: str | None
    origin: Origin


class _Group(msgspec.Struct, gc=False):
    events: deque[_Event]
    first_ns: int
    last_ns: int = 0
    # temporal_ordered: latest start time of a chain through position k
    starts: list[int | None] = msgspec.field(default_factory=list)
    #: how many events of the window hold each measured item (a value for value_count, a
    #: base rule for temporal), so the measure is the number of keys: no pass over the window
    tally: dict[str | None, int] = msgspec.field(default_factory=dict)


def _text(value: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


class _Plan:
    """What is fixed about one correlation, read on every match."""

    __slots__ = ("at_once", "judge", "kind", "tallied", "timespan_ns")

    def __init__(self, corr: Correlation) -> None:
        self.kind = corr.kind
        self.timespan_ns = corr.timespan_ns
        self.at_once = corr.op in _AT_ONCE
        op, count = _OPS[corr.op], corr.count
        self.judge: Callable[[int], bool] = lambda n: op(n, count)
        #: the tally's item of an event: its value (value_count) or its rule (temporal)
        self.tallied = corr.kind in ("value_count", "temporal")


class Correlator:
    """Feeds base-rule matches through every correlation that uses them."""

    def __init__(
        self,
        correlations: Sequence[Correlation],
        alert_ids: Callable[[str, Any], tuple[str | None, str | None]],
        *,
        lateness_ns: int = 5_000_000_000,
        max_groups: int = 100_000,
    ) -> None:
        self.correlations = list(correlations)
        self._plans = [_Plan(corr) for corr in self.correlations]
        self._alert_ids = alert_ids  # (record source, view) -> (audit id, stage)
        #: per base rule name: each correlation using it, with the extractors of its group
        #: key and of its counted value for that rule
        self._feeds: dict[str, list[tuple[int, tuple[Extractor, ...], Extractor | None]]] = {}
        for i, corr in enumerate(self.correlations):
            for rule in dict.fromkeys(corr.rules):
                fields = tuple(f.extract for f in corr.group_fields.get(rule, ()))
                vf = corr.value_fields.get(rule)
                feed = (i, fields, vf.extract if vf is not None else None)
                self._feeds.setdefault(rule, []).append(feed)
        self._groups: list[dict[tuple[str | None, ...], _Group]] = [{} for _ in correlations]
        self._pending: list[tuple[int, int, int, _Event]] = []
        self._arrival = itertools.count()
        self._lateness = lateness_ns
        self._max_groups = max_groups
        self.watermark = -(1 << 62)
        self._next_scan = self.watermark
        #: the event time from which `advance` may have work: callers skip it before then
        self.gate = self.watermark
        #: matches that arrived after the watermark had passed them
        self.late = 0
        #: groups dropped because a correlation had `max_groups` of them
        self.overflow = 0

    def observe(self, rule: str, record: Record) -> list[Alert]:
        """A base rule matched `record`; returns the alerts now due."""
        t = record.time_ns
        if t < self.watermark:
            self.late += 1
            return self.advance(t)
        audit_id = self._alert_ids(record.source, record.view)[0]
        origin = Origin(record.instance, record.seq, record.line, record.index)
        pending, arrival = self._pending, self._arrival
        for i, fields, counted in self._feeds.get(rule, ()):
            group = tuple([_text(f(record)) for f in fields])
            value = _text(counted(record)) if counted is not None else None
            event = _Event(t, rule, group, value, audit_id, origin)
            heapq.heappush(pending, (t, next(arrival), i, event))
        due = t + self._lateness
        if due < self.gate:
            self.gate = due
        return self.advance(t)

    def advance(self, time_ns: int) -> list[Alert]:
        """Event time has reached `time_ns`: process what the watermark has passed.

        Cheap when nothing is due: windows are scanned for closing at most once per second
        of event time, so a window-close alert may come up to a second late.
        """
        mark = time_ns - self._lateness
        if mark <= self.watermark:
            return _NOTHING
        self.watermark = mark
        due = self._pending and self._pending[0][0] <= mark
        if not due and mark < self._next_scan:
            self._set_gate()
            return _NOTHING
        alerts = self._drain(mark)
        self._set_gate()
        return alerts

    def _set_gate(self) -> None:
        """The next event time at which a match becomes due or windows need a scan."""
        nxt = self._next_scan
        if self._pending and self._pending[0][0] < nxt:
            nxt = self._pending[0][0]
        self.gate = nxt + self._lateness

    def flush(self) -> list[Alert]:
        """The input is over: process everything and close every window."""
        alerts = self._drain(None)
        for i, groups in enumerate(self._groups):
            for key, group in groups.items():
                self._close(i, key, group, alerts)
            groups.clear()
        return alerts

    # --- processing ------------------------------------------------------------------------

    def _drain(self, mark: int | None) -> list[Alert]:
        alerts: list[Alert] = []
        pending = self._pending
        while pending and (mark is None or pending[0][0] <= mark):
            _t, _n, i, event = heapq.heappop(pending)
            groups = self._groups[i]
            if groups:
                self._expire(i, event.time_ns, alerts)
            self._add(i, event, alerts)
        if mark is not None and mark >= self._next_scan:
            self._next_scan = mark + 1_000_000_000
            for i, groups in enumerate(self._groups):
                if groups:
                    self._expire(i, mark, alerts)
        return alerts

    def _expire(self, i: int, now_ns: int, alerts: list[Alert]) -> None:
        """Close the windows of correlation `i` that ended before `now_ns`.

        Groups are kept in the order their windows end: by last update for conditions
        judged as matches arrive, by creation for those judged at the window's close.
        """
        plan, groups = self._plans[i], self._groups[i]
        span = plan.timespan_ns
        while groups:
            key, group = next(iter(groups.items()))
            if group.last_ns + span >= now_ns and (plan.at_once or group.first_ns + span >= now_ns):
                break
            del groups[key]
            self._close(i, key, group, alerts)

    def _close(
        self, i: int, key: tuple[str | None, ...], group: _Group, alerts: list[Alert]
    ) -> None:
        """A window closed: judge a condition that waits for the close."""
        plan = self._plans[i]
        if plan.at_once or not group.events:
            return
        n = self._measure(plan, group)
        if plan.judge(n):
            alerts.append(self._alert(i, key, group, n))

    def _add(self, i: int, event: _Event, alerts: list[Alert]) -> None:
        plan, groups = self._plans[i], self._groups[i]
        at_once = plan.at_once
        key, t = event.group, event.time_ns
        # windows judged at once slide: keep groups by last update (re-insert last)
        group = groups.pop(key, None) if at_once else groups.get(key)
        if group is None:
            if len(groups) >= self._max_groups:
                groups.pop(next(iter(groups)))
                self.overflow += 1
            n_rules = len(self.correlations[i].rules)
            group = _Group(deque(), t, starts=[None] * n_rules)
        groups[key] = group
        group.last_ns = t
        if plan.kind == "temporal_ordered":
            self._chain(i, groups, event, group, alerts)
            return
        events, tally = group.events, group.tally
        events.append(event)
        if plan.tallied:
            item = event.value if plan.kind == "value_count" else event.rule
            tally[item] = tally.get(item, 0) + 1
        if not at_once:
            return
        cutoff = t - plan.timespan_ns
        while events and events[0].time_ns < cutoff:
            gone = events.popleft()
            if plan.tallied:
                item = gone.value if plan.kind == "value_count" else gone.rule
                left = tally[item] - 1
                if left:
                    tally[item] = left
                else:
                    del tally[item]
        n = self._measure(plan, group)
        if plan.judge(n):
            del groups[key]
            alerts.append(self._alert(i, key, group, n))

    @staticmethod
    def _measure(plan: _Plan, group: _Group) -> int:
        if plan.kind == "event_count":
            return len(group.events)
        if plan.kind == "value_count":  # distinct values; a missing one is no value
            return len(group.tally) - (None in group.tally)
        return len(group.tally)  # temporal: distinct base rules seen

    def _chain(
        self,
        i: int,
        groups: dict[tuple[str | None, ...], _Group],
        event: _Event,
        group: _Group,
        alerts: list[Alert],
    ) -> None:
        """temporal_ordered: extend the chains the event continues (latest start wins)."""
        corr = self.correlations[i]
        t, starts = event.time_ns, group.starts
        for k in range(len(starts)):
            if starts[k] is not None and t - starts[k] > corr.timespan_ns:  # type: ignore[operator]
                starts[k] = None
        positions = [k for k, name in enumerate(corr.rules) if name == event.rule]
        for k in reversed(positions):
            if k == 0:
                starts[0] = t
            elif starts[k - 1] is not None:
                starts[k] = max(starts[k] or starts[k - 1], starts[k - 1])  # type: ignore[type-var]
        group.events.append(event)
        if starts[-1] is None:
            return
        del groups[event.group]
        alerts.append(self._alert(i, event.group, group, len(corr.rules)))

    def _alert(self, i: int, key: tuple[str | None, ...], group: _Group, n: int) -> Alert:
        corr = self.correlations[i]
        events = group.events
        last = events[-1]
        first_ns = events[0].time_ns
        labels = dict(zip(corr.group_by, key, strict=True))
        shown = " ".join(f"{k}={v if v is not None else '<NA>'}" for k, v in labels.items())
        what = {
            "event_count": f"{n} matches",
            "value_count": f"{n} distinct values",
            "temporal": f"{n} of {len(set(corr.rules))} rules",
            "temporal_ordered": f"{' then '.join(corr.rules)}",
        }[corr.kind]
        span = format_duration_ns(corr.timespan_ns)
        output = f"{corr.name}: {what} of {', '.join(dict.fromkeys(corr.rules))} within {span}"
        if shown:
            output += f" ({shown})"
        audit_ids = [e.audit_id for e in events if e.audit_id is not None][-10:]
        return Alert(
            rule=corr.name,
            priority=corr.priority,
            severity=corr.severity,
            time=format_time_ns(last.time_ns),
            source="correlation",
            output=output,
            audit_id=last.audit_id,
            stage=None,
            tags=corr.tags,
            output_fields={
                **labels,
                "count": n,
                "first_time": format_time_ns(first_ns),
                "audit_ids": audit_ids,
            },
            rule_format="sigma-correlation",
            origin=last.origin,
            fingerprint=fingerprint(corr.name, key),
            labels=_alert_labels(labels),
        )


#: group-by fields that name what alert labels name
_LABEL_OF_FIELD = {
    "user.username": "user",
    "objectRef.namespace": "namespace",
    "objectRef.resource": "resource",
}


def _alert_labels(group: dict[str, str | None]) -> dict[str, str]:
    """A correlation's group-by values as alert labels: known audit fields under the label
    names every alert uses, others under their field name made a label name (`[a-z0-9_]`)."""
    out = {}
    for name, value in group.items():
        if value is None:
            continue
        label = _LABEL_OF_FIELD.get(name) or "".join(c if c.isalnum() else "_" for c in name)
        out[label] = value if isinstance(value, str) else ",".join(map(str, value))
    return out
