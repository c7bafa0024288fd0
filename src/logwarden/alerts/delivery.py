"""Delivery: what every notifier gets once, so no notifier carries a copy of it.

`Delivery` wraps one notifier with a bounded queue and a thread: `put` hands it an alert
(blocking while the queue is full: backpressure, not loss), the thread renders and sends
it, retrying a failed send with exponential backoff (`retries` times, from
`backoff_secs`, doubling, at most 30 s) when the notifier says a retry may help; an alert
still not delivered is counted in `logwarden_notify_failures_total` and logged with its
fingerprint. A notifier whose payloads can be joined (`joins = True`: JSON lines to a file
or stdout) gets what is queued in one send, so it writes and syncs once for many alerts.
Alerts below the notifier's `min_severity` are not queued. `close` sends what
is queued and stops. `Fanout` hands each alert to every delivery.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from logwarden.alerts.notifiers.base import Notifier, SendError
from logwarden.metrics import Metrics
from logwarden.records import SEVERITIES, Alert

__all__ = ["Delivery", "Fanout"]

log = logging.getLogger("logwarden.alerts")
_STOP = object()
#: most alerts one send carries, for notifiers whose payloads join (`joins`)
_BATCH = 512


class Delivery:
    """One notifier behind a queue, with retries (see module doc)."""

    def __init__(
        self,
        sink_id: str,
        notifier: Notifier,
        metrics: Metrics,
        *,
        min_severity: str = "info",
        queue_alerts: int = 10_000,
        retries: int = 5,
        backoff_secs: float = 0.5,
    ) -> None:
        self.sink_id = sink_id
        self._notifier = notifier
        self._metrics = metrics
        self._rank = SEVERITIES.index(min_severity)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_alerts)
        self._retries = retries
        self._backoff = backoff_secs
        self._thread = threading.Thread(target=self._run, name=f"sink-{sink_id}", daemon=True)
        #: alerts delivered, and alerts given up on
        self.delivered = 0
        self.failed = 0

    def start(self) -> None:
        self._thread.start()

    def put(self, alert: Alert) -> None:
        if SEVERITIES.index(alert.severity) <= self._rank:
            self._queue.put(alert)

    def close(self) -> None:
        """Deliver everything queued, then stop and release the notifier."""
        self._queue.put(_STOP)
        self._thread.join()
        self._notifier.close()

    def _run(self) -> None:
        joins = getattr(self._notifier, "joins", False)
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, Alert)
            if not joins:
                self._deliver([item])
                continue
            batch = [item]  # what else is waiting goes in the same send (one write, one sync)
            while len(batch) < _BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._deliver(batch)
                    return
                assert isinstance(more, Alert)
                batch.append(more)
            self._deliver(batch)

    def _deliver(self, alerts: list[Alert]) -> None:
        render = self._notifier.render
        payload = b"".join(render(a) for a in alerts)
        alert = alerts[0]
        delay = self._backoff
        for attempt in range(self._retries + 1):
            try:
                self._notifier.send(payload)
                self.delivered += len(alerts)
                return
            except SendError as exc:
                if not exc.retry or attempt == self._retries:
                    self.failed += len(alerts)
                    self._metrics.notify_failures.labels(self.sink_id).inc(len(alerts))
                    log.error(
                        "sink %r could not deliver %d alert(s), the first %r (rule %r): %s",
                        self.sink_id,
                        len(alerts),
                        alert.fingerprint,
                        alert.rule,
                        exc,
                    )
                    return
                log.warning("sink %r: %s; retrying in %.1f s", self.sink_id, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)


class Fanout:
    """Every alert to every delivery."""

    def __init__(self, deliveries: list[Delivery]) -> None:
        self.deliveries = deliveries

    def start(self) -> None:
        for d in self.deliveries:
            d.start()

    def __call__(self, alert: Alert) -> None:
        for d in self.deliveries:
            d.put(alert)

    def close(self) -> None:
        for d in self.deliveries:
            d.close()

    def failures(self) -> dict[str, int]:
        """Alerts given up on so far, by sink id."""
        return {d.sink_id: d.failed for d in self.deliveries}
