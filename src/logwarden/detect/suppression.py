"""Suppression: repeats of one alert within a window become one alert with a count.

Alerts are the same when they have the same fingerprint (the rule and its group-key
values, see `engine`). The first alert of a fingerprint passes at once, so nothing is
delayed; repeats within the rule's window (event time) are held and counted; when the
window closes, one summary alert carries the count and the span ("and 37 more in 5m"),
instead of 37 more alerts. A repeat after the window starts a new one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import msgspec

from logwarden.detect.rule import Rule
from logwarden.normalize.k8s_audit import parse_rfc3339_ns
from logwarden.records import Alert, format_duration_ns, format_time_ns

__all__ = ["Suppressor"]


@dataclass
class _Window:
    first: Alert
    start_ns: int
    end_ns: int
    end: str  # end_ns as an alert time: alert times compare in time order as text
    last: Alert | None = None
    repeats: int = 0


class Suppressor:
    """Holds repeats per fingerprint; `windows` gives each rule's window in nanoseconds."""

    def __init__(self, windows: Mapping[str, int], default_ns: int = 0) -> None:
        self._windows = dict(windows)
        self._default = default_ns
        self._open: dict[str, _Window] = {}
        # heap of (window end as alert time text, fingerprint): alert times are RFC 3339 UTC
        # with nine digits (records.format_time_ns), so text order is time order
        self._ends: list[tuple[str, str]] = []
        #: alerts folded into summaries
        self.suppressed = 0

    @classmethod
    def for_rules(cls, rules: Iterable[Rule], default_ns: int = 0) -> Suppressor | None:
        """A suppressor for the windows `rules` set, `default_ns` for the others; None when
        no rule has one and there is no default (nothing to fold)."""
        windows = {r.name: r.suppress_ns for r in rules if r.suppress_ns}
        return cls(windows, default_ns=default_ns) if windows or default_ns else None

    def process(self, alert: Alert) -> list[Alert]:
        """Alerts to pass on for this one (the alert itself, or none, plus closed windows)."""
        window = self._windows.get(alert.rule, self._default)
        ends = self._ends
        out = self._close(alert.time) if ends and ends[0][0] < alert.time else []
        if window <= 0:
            out.append(alert)
            return out
        open_ = self._open.get(alert.fingerprint)
        if open_ is not None and alert.time <= open_.end:
            open_.repeats += alert.count
            open_.last = alert
            self.suppressed += alert.count
            return out
        if open_ is not None:  # expired but not yet closed (alerts out of time order)
            out.extend(self._summary(self._open.pop(alert.fingerprint)))
        now = parse_rfc3339_ns(alert.time)
        end = format_time_ns(now + window)
        self._open[alert.fingerprint] = _Window(alert, now, now + window, end)
        heapq.heappush(ends, (end, alert.fingerprint))
        out.append(alert)
        return out

    def expire(self, now_ns: int) -> list[Alert]:
        """Time has passed (a live service with no alerts coming): summaries of the windows
        that ended before `now_ns`."""
        return self._close(format_time_ns(now_ns)) if self._ends else []

    def flush(self) -> list[Alert]:
        """The input is over: close every window."""
        out: list[Alert] = []
        for window in self._open.values():
            out.extend(self._summary(window))
        self._open.clear()
        self._ends.clear()
        return out

    def _close(self, now: str) -> list[Alert]:
        out: list[Alert] = []
        ends = self._ends
        while ends and ends[0][0] < now:
            end, key = heapq.heappop(ends)
            window = self._open.get(key)
            if window is not None and window.end == end:
                del self._open[key]
                out.extend(self._summary(window))
        return out

    def _summary(self, window: _Window) -> list[Alert]:
        if not window.repeats or window.last is None:
            return []
        span = format_duration_ns(window.end_ns - window.start_ns)
        last = window.last
        return [
            msgspec.structs.replace(
                last,
                output=f"{window.first.output} (and {window.repeats} more in {span})",
                count=window.repeats,
                first_time=window.first.time,
            )
        ]
