"""Correlation: alerts about how often, how varied and in what order rules match.

The four Sigma correlation types, evaluated as a stream over event time:

* ``event_count``: events its rules matched per group within `timespan` (an event that
  matches several of them counts once);
* ``value_count``: distinct values of one field among those matches;
* ``temporal``: how many of its rules matched within `timespan` (in any order);
* ``temporal_ordered``: how many of its rules matched in the given order within
  `timespan` (how far the chain of matches in that order reaches).

Windows slide: for `gt`/`gte` conditions an alert fires as soon as the matches of the last
`timespan` satisfy it, and the group starts over. Conditions that can only be judged once
a window is over (`lt`, `lte`, `eq`, `neq`) use a window that opens at the group's first
match and are judged when it closes.

A correlation may refer to correlations (Sigma's chaining): an alert of the referenced one
is a match of the one that refers to it, at the time the referenced condition held (the
match that met a `gt`/`gte` condition; for the others, the end of the window), with the
referenced correlation's group values as its fields and the audit ID of the last event
behind the referenced alert. The windows of a referenced
correlation judged at the close are closed before any later match is processed, so these
matches come in event-time order too. A referenced correlation raises alerts of its own
only if a correlation that refers to it says `generate: true`, as base rules do.

Replay is deterministic: matches are buffered and processed in event-time order once the
watermark (the latest event time seen, minus the allowed lateness) has passed them, so
events out of order by up to `lateness` give the same alerts as sorted input. A match
older than the watermark is too late: it is counted (`late`), not used.

An event that lacks one of a correlation's group-by fields is in none of its groups (as
Sigma's backends leave out events whose group-by field is null): it does not count there.

State is bounded. Groups whose window has passed are dropped, and past `max_groups` per
correlation the least recently updated group is dropped and counted (`overflow`). Within a
group, what is held does not grow with the matches: `event_count` keeps the number of
matches (and, when its window slides, their times, which reach its threshold and fire),
`value_count` and `temporal` each distinct value or rule with the time of its latest match,
`temporal_ordered` a start time per position of its order; and each group keeps its
latest matches for its alert. Past `max_held` distinct values (or rules) in a group the
oldest is dropped and counted (`crowded`): only a condition that needs more than
`max_held` of them is affected.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from logwarden.detect.correlation_rule import KINDS, Correlation, correlation_alert
from logwarden.detect.ir import Extractor
from logwarden.records import (
    Alert,
    Origin,
    Record,
)

__all__ = ["KINDS", "Correlation", "Correlator"]

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
_RECENT = 10  # the latest matches an alert names (a group holds up to twice as many)


class _Event(msgspec.Struct, gc=False):
    time_ns: int
    rule: str
    group: tuple[str | None, ...]
    value: str | None
    audit_id: str | None
    origin: Origin


class _Group(msgspec.Struct, gc=False):
    #: the window's opening: the group's first match if judged at the close; in a sliding
    #: window of values or rules, no later than the oldest time `seen` holds
    first_ns: int
    last_ns: int
    #: the latest matches (the last `_RECENT` of them), for the alert: those since what it
    #: counted began
    recent: list[_Event] = msgspec.field(default_factory=list)
    #: event_count: the matches of the window
    count: int = 0
    #: event_count judged at once: the times of the matches of the sliding window
    times: deque[int] | None = None
    #: value_count, temporal: each measured item (a value, a base rule) with the time of
    #: its latest match, oldest first: the measure is the number of items
    seen: OrderedDict[str, int] | None = None
    #: temporal_ordered: latest start time of a chain through position k
    starts: list[int | None] = msgspec.field(default_factory=list)


def _text(value: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


class _Plan:
    """What is fixed about one correlation, read on every match."""

    __slots__ = ("at_once", "judge", "kind", "n_rules", "timespan_ns")

    def __init__(self, corr: Correlation) -> None:
        self.kind = corr.kind
        self.timespan_ns = corr.timespan_ns
        self.at_once = corr.op in _AT_ONCE
        op, count = _OPS[corr.op], corr.count
        self.judge: Callable[[int], bool] = lambda n: op(n, count)
        self.n_rules = len(corr.rules)

    def group(self, t: int) -> _Group:
        """A new group, its first match at `t`."""
        if self.kind == "temporal_ordered":
            return _Group(t, t, starts=[None] * self.n_rules)
        if self.kind == "event_count":
            return _Group(t, t, times=deque() if self.at_once else None)
        return _Group(t, t, seen=OrderedDict())


class Correlator:
    """Feeds base-rule matches through every correlation that uses them, and the alerts of
    referenced correlations through the correlations that refer to them.

    A referenced correlation must come before those that refer to it in `correlations`
    (its windows close first at `flush`), and its name must be that of no other.
    """

    def __init__(
        self,
        correlations: Sequence[Correlation],
        alert_ids: Callable[[str, Any], tuple[str | None, str | None]],
        *,
        lateness_ns: int = 5_000_000_000,
        max_groups: int = 100_000,
        max_held: int = 10_000,
    ) -> None:
        self.correlations = list(correlations)
        self._plans = [_Plan(corr) for corr in self.correlations]
        self._alert_ids = alert_ids  # (record source, view) -> (audit id, stage)
        #: per base rule name: each correlation using it, with the extractors of its group
        #: key and of its counted value for that rule
        self._feeds: dict[str, list[tuple[int, tuple[Extractor, ...], Extractor | None]]] = {}
        for i, corr in enumerate(self.correlations):
            for rule in dict.fromkeys(corr.base_rules):
                fields = tuple(f.extract for f in corr.group_fields.get(rule, ()))
                vf = corr.value_fields.get(rule)
                feed = (i, fields, vf.extract if vf is not None else None)
                self._feeds.setdefault(rule, []).append(feed)
        #: per correlation: each correlation its alerts are matches of, with the positions in
        #: its group key of that correlation's group key and of its counted value
        self._chains: list[list[tuple[int, tuple[int, ...], int | None]]] = [
            [] for _ in self.correlations
        ]
        for j, corr in enumerate(self.correlations):
            for name, grouped in corr.chained_group.items():
                i = self._referenced(j, name)
                by = self.correlations[i].group_by
                counted = corr.chained_value.get(name)
                at = by.index(counted) if counted is not None else None
                self._chains[i].append((j, tuple(by.index(f) for f in grouped), at))
        #: whether each correlation raises its alerts: a referenced one only with `generate`
        self._raises = [self._raises_alerts(corr) for corr in self.correlations]
        #: referenced correlations judged when a window closes: closed in event-time order
        self._closing = [
            i for i, plan in enumerate(self._plans) if self._chains[i] and not plan.at_once
        ]
        self._groups: list[dict[tuple[str | None, ...], _Group]] = [{} for _ in correlations]
        self._pending: list[tuple[int, int, int, _Event]] = []
        self._arrival = itertools.count()
        self._lateness = lateness_ns
        self._max_groups = max_groups
        self._max_held = max_held
        self.watermark = -(1 << 62)
        self._next_scan = self.watermark
        #: the event time from which `advance` may have work: callers skip it before then
        self.gate = self.watermark
        #: matches that arrived after the watermark had passed them
        self.late = 0
        #: groups dropped because a correlation had `max_groups` of them
        self.overflow = 0
        #: match times or distinct values dropped because a group held `max_held` of them
        self.crowded = 0

    def _referenced(self, j: int, name: str) -> int:
        """The position of the correlation `name` that correlation `j` refers to."""
        found = [i for i, corr in enumerate(self.correlations) if corr.name == name]
        if len(found) != 1 or found[0] >= j:
            raise ValueError(
                f"correlation '{self.correlations[j].name}' refers to correlation '{name}': "
                "it must be one correlation of that name, given before it"
            )
        return found[0]

    def _raises_alerts(self, corr: Correlation) -> bool:
        """Sigma's `generate`: the rules a correlation refers to raise alerts of their own
        only if it says so (one that does suffices)."""
        referring = [c for c in self.correlations if corr.name in c.chained_group]
        return not referring or any(c.generate for c in referring)

    def observe(self, rules: Sequence[str], record: Record) -> list[Alert]:
        """The base rules `rules` matched `record`; returns the alerts now due."""
        t = record.time_ns
        if t < self.watermark:
            self.late += len(rules)
            return self.advance(t)
        audit_id = self._alert_ids(record.source, record.view)[0]
        origin = Origin(record.instance, record.seq, record.line, record.index)
        pending, arrival = self._pending, self._arrival
        #: event_count counts an event once: the (correlation, group) pairs it is in so far
        counted_in: set[tuple[int, tuple[str | None, ...]]] | None = None
        if len(rules) > 1:
            counted_in = set()
        for rule in rules:
            for i, fields, value_of in self._feeds.get(rule, ()):
                group = tuple([_text(f(record)) for f in fields])
                if None in group:
                    continue  # a group-by field it lacks: in no group (Sigma leaves it out)
                if counted_in is not None and self._plans[i].kind == "event_count":
                    if (i, group) in counted_in:
                        continue
                    counted_in.add((i, group))
                value = _text(value_of(record)) if value_of is not None else None
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
        """The input is over: process everything and close every window (a referenced
        correlation's first: their alerts are matches of those after it)."""
        alerts = self._drain(None)
        for i, groups in enumerate(self._groups):
            for key, group in groups.items():
                self._close(i, key, group, alerts)
            groups.clear()
            self._process(None, alerts)
        return alerts

    # --- processing ------------------------------------------------------------------------

    def _drain(self, mark: int | None) -> list[Alert]:
        """Process the matches up to the watermark `mark` (all of them with None); at most
        once a second of event time, close the windows that ended before it."""
        alerts: list[Alert] = []
        self._process(mark, alerts)
        if mark is not None and mark >= self._next_scan:
            self._next_scan = mark + 1_000_000_000
            while self._close_referenced(mark, alerts):  # matches before `mark`: process them
                self._process(mark, alerts)
            for i, groups in enumerate(self._groups):
                if groups:
                    self._expire(i, mark, alerts)
        return alerts

    def _process(self, mark: int | None, alerts: list[Alert]) -> None:
        """Process the pending matches up to `mark` (all of them with None) in event-time
        order."""
        pending, closing = self._pending, self._closing
        while pending and (mark is None or pending[0][0] <= mark):
            if closing and self._close_referenced(pending[0][0], alerts):
                continue  # windows that ended before the next match: their matches come first
            _t, _n, i, event = heapq.heappop(pending)
            groups = self._groups[i]
            if groups:
                self._expire(i, event.time_ns, alerts)
            self._add(i, event, alerts)

    def _close_referenced(self, now_ns: int, alerts: list[Alert]) -> bool:
        """Close the windows that ended before `now_ns` of the referenced correlations judged
        at the close; whether that made matches of the correlations referring to them."""
        before = len(self._pending)
        for i in self._closing:
            if self._groups[i]:
                self._expire(i, now_ns, alerts)
        return len(self._pending) > before

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
        if plan.at_once:
            return
        n = self._measure(plan, group)
        if plan.judge(n):
            self._matched(i, key, group, n, group.first_ns + plan.timespan_ns, alerts)

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
            group = plan.group(t)
        groups[key] = group
        group.last_ns = t
        recent = group.recent
        recent.append(event)
        if len(recent) > 2 * _RECENT:  # trimmed now and then, to the latest `_RECENT`
            del recent[:-_RECENT]
        cutoff = t - plan.timespan_ns  # a sliding window holds what is at least this late
        kind = plan.kind
        if kind == "event_count":
            group.count += 1  # (a fixed window needs no more)
            if at_once:
                self._slide(group, t, cutoff)
        elif kind == "temporal_ordered":
            self._chain(i, event, group, cutoff)
        else:
            self._see(plan, group, event, cutoff)
        if not at_once:
            return  # judged when the window closes
        n = self._measure(plan, group)
        if plan.judge(n):
            del groups[key]
            self._matched(i, key, group, n, t, alerts)

    def _slide(self, group: _Group, t: int, cutoff: int) -> None:
        """event_count in a sliding window: a match at `t`; those before `cutoff` leave."""
        times = group.times
        assert times is not None  # made with the group
        times.append(t)
        while times[0] < cutoff:
            times.popleft()
        # no cap: the group fires (and starts over) at its threshold, so it holds no more
        # times than the rule's own threshold
        group.count = len(times)

    def _see(self, plan: _Plan, group: _Group, event: _Event, cutoff: int) -> None:
        """value_count, temporal: the event's value or rule seen at its time; a sliding
        window forgets those last seen before `cutoff`."""
        seen = group.seen
        assert seen is not None  # made with the group
        item = event.value if plan.kind == "value_count" else event.rule
        if item is not None:  # a missing value is no value
            seen[item] = event.time_ns
            seen.move_to_end(item)
            if len(seen) > self._max_held:
                seen.popitem(last=False)
                self.crowded += 1
        if plan.at_once and group.first_ns < cutoff:  # (the oldest time only grows)
            while seen and next(iter(seen.values())) < cutoff:
                seen.popitem(last=False)
            group.first_ns = next(iter(seen.values()), event.time_ns)

    @staticmethod
    def _measure(plan: _Plan, group: _Group) -> int:
        if plan.kind == "event_count":
            return group.count
        if plan.kind == "temporal_ordered":
            # how far the chain reaches: chains grow from the first position and the oldest
            # starts expire first, so the positions that hold a start are the first ones
            return len(group.starts) - group.starts.count(None)
        return len(group.seen or ())  # distinct values (value_count), rules (temporal)

    @staticmethod
    def _first(plan: _Plan, group: _Group, n: int) -> int:
        """When what the condition measured (`n`) began: the window's opening if judged at
        its close; in a sliding window the oldest match counted, the oldest latest match of
        a value or rule counted, or the start of the chain."""
        if not plan.at_once:
            return group.first_ns
        if group.times:  # event_count
            return group.times[0]
        if plan.kind == "temporal_ordered":
            start = group.starts[n - 1] if n else None
            return start if start is not None else group.last_ns
        return next(iter((group.seen or {}).values()), group.last_ns)

    def _chain(self, i: int, event: _Event, group: _Group, cutoff: int) -> None:
        """temporal_ordered: extend the chains the event continues (latest start wins)."""
        corr = self.correlations[i]
        t, starts = event.time_ns, group.starts
        for k in range(len(starts)):
            if starts[k] is not None and starts[k] < cutoff:  # type: ignore[operator]
                starts[k] = None
        positions = [k for k, name in enumerate(corr.rules) if name == event.rule]
        for k in reversed(positions):
            if k == 0:
                starts[0] = t
            elif starts[k - 1] is not None:
                starts[k] = max(starts[k] or starts[k - 1], starts[k - 1])  # type: ignore[type-var]

    def _matched(
        self,
        i: int,
        key: tuple[str | None, ...],
        group: _Group,
        n: int,
        at_ns: int,
        alerts: list[Alert],
    ) -> None:
        """The condition of correlation `i` held for the group `key` at `at_ns`: its alert,
        and a match of each correlation that refers to it."""
        if self._raises[i]:
            first_ns = self._first(self._plans[i], group, n)
            behind = [e for e in group.recent[-_RECENT:] if e.time_ns >= first_ns]
            alerts.append(correlation_alert(self.correlations[i], key, behind, n, first_ns))
        last = group.recent[-1]
        name = self.correlations[i].name
        for j, positions, counted in self._chains[i]:
            value = key[counted] if counted is not None else None
            group_of_j = tuple([key[k] for k in positions])
            event = _Event(at_ns, name, group_of_j, value, last.audit_id, last.origin)
            heapq.heappush(self._pending, (at_ns, next(self._arrival), j, event))
