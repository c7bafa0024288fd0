"""Silence: a source that was sending and went quiet is K05's "logging disabled", at runtime.

Each watched source has a threshold (`silence_after_secs`). Once a source has delivered a
record, `check` raises one alert when nothing more arrived within the threshold ("audit
events stopped arriving from audit"), and one more when records arrive again ("... resumed
... after 7m of silence"). A source that never sent anything is not silent: it may not be
set up yet (`logwarden scan` finds that). The clock is wall time: silence is about now.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from logwarden.metrics import Metrics
from logwarden.records import Alert, Origin, fingerprint, format_duration_ns, format_time_ns

__all__ = ["RESUMED", "STOPPED", "SilenceWatch", "Watched"]

STOPPED = "Log Source Stopped Sending"
RESUMED = "Log Source Resumed Sending"


@dataclass
class Watched:
    """One source under watch: what it sends (`audit events`), its record source kind and
    how long it may stay quiet."""

    what: str
    record_source: str
    after_secs: float
    last: float = 0.0
    silent_since: float = 0.0


class SilenceWatch:
    """Tracks when each source last sent; `check` gives the alerts due now."""

    def __init__(
        self,
        sources: dict[str, Watched],
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sources = {k: v for k, v in sources.items() if v.after_secs > 0}
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()

    def seen(self, source_id: str) -> None:
        """`source_id` delivered records now."""
        watched = self._sources.get(source_id)
        if watched is not None:
            watched.last = self._clock()

    def check(self) -> list[Alert]:
        """Alerts for sources that went quiet, or came back, since the last check."""
        now = self._clock()
        out: list[Alert] = []
        with self._lock:
            for source_id, w in self._sources.items():
                if not w.last:
                    continue
                if not w.silent_since and now - w.last > w.after_secs:
                    w.silent_since = w.last
                    out.append(self._stopped(source_id, w, now))
                elif w.silent_since and w.last > w.silent_since:
                    out.append(self._resumed(source_id, w))
                    w.silent_since = 0.0
                if self._metrics is not None:
                    self._metrics.silent.labels(source_id).set(1 if w.silent_since else 0)
        return out

    def _stopped(self, source_id: str, w: Watched, now: float) -> Alert:
        quiet = format_duration_ns(int((now - w.last) * 1e9))
        text = (
            f"{w.what} stopped arriving from {source_id}: nothing for {quiet} "
            f"(last at {format_time_ns(int(w.last * 1e9))}, threshold "
            f"{format_duration_ns(int(w.after_secs * 1e9))}); is logging switched off?"
        )
        return _alert(STOPPED, "Error", "high", source_id, w, now, text)

    def _resumed(self, source_id: str, w: Watched) -> Alert:
        quiet = format_duration_ns(int((w.last - w.silent_since) * 1e9))
        text = f"{w.what} resumed arriving from {source_id} after {quiet} of silence"
        return _alert(RESUMED, "Notice", "low", source_id, w, w.last, text, resolves=True)


def _alert(
    rule: str,
    priority: str,
    severity: str,
    source_id: str,
    w: Watched,
    at: float,
    text: str,
    *,
    resolves: bool = False,
) -> Alert:
    return Alert(
        rule=rule,
        priority=priority,
        severity=severity,
        time=format_time_ns(int(at * 1e9)),
        source=w.record_source,
        output=text,
        audit_id=None,
        stage=None,
        tags=("K05", "logging_disabled"),
        output_fields={"source_id": source_id, "threshold_secs": w.after_secs},
        rule_format="logwarden",
        origin=Origin(instance=source_id, seq=0, line=0),
        fingerprint=fingerprint(STOPPED, [source_id]),
        labels={"source_id": source_id},
        resolves=resolves,
    )
