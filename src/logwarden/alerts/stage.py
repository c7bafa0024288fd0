"""The alert stage of `logwarden run`: detection's alerts → manager → outbox → receivers.

`AlertStage` is what the pipeline hands every alert to (`detect.worker.Sinks`): a bounded
queue (full: the caller waits) and one thread that runs the `AlertManager`. Between
alerts the thread wakes when the manager has something due, applies the `ack` and
`resolve` commands the API and the `alerts` command left in the state file, reads the
silences again and saves the manager's state (all three every `poll_secs`), and hands due
notifications to the `Dispatcher` (durable in the outbox before anything else happens:
a notification made again after a crash has its id, and the outbox keeps one). When
the stage closes, what changed is notified at once (`AlertManager.drain`).

It is built in the service and started where it runs (the detect worker process, after
the fork): the state file, the outbox and the delivery threads are opened by `start`.
A receiver that keeps failing raises an alert of its own here (`RECEIVER_FAILING`), which
is routed like any other and resolved when the receiver recovers.

Detection says how far it got (`through`: every alert of the records up to a ledger
entry is in the queue); once the manager has taken those alerts and saved, that entry is
written to the state file (`detected_through`), and a service that stops before (a
crash) detects on the records after it again when it starts (`pipeline`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from logwarden.alerts.delivery import Dispatcher, ReceiverStats
from logwarden.alerts.manager import AlertManager
from logwarden.alerts.state import AlertStore
from logwarden.records import Alert, Origin, fingerprint, format_time_ns

__all__ = ["RECEIVER_FAILING", "AlertStage"]

log = logging.getLogger("logwarden.alerts")
RECEIVER_FAILING = "Alert Receiver Failing"
_STOP = object()
_BATCH = 1024


class _Through(int):
    """A mark in the queue: every alert of the records up to this ledger entry is before it."""


#: what `start` makes in the process the stage runs in: (manager, dispatcher), given the
#: store and the function receivers report their health to
Builder = Callable[[AlertStore, Callable[[str, bool, str], None]], tuple[AlertManager, Dispatcher]]


class AlertStage:
    """Alerts in, notifications out, in a thread of its own (see the module doc)."""

    def __init__(
        self,
        state_file: str | Path,
        build: Builder,
        *,
        queue_alerts: int = 10_000,
        poll_secs: float = 1.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.state_file = Path(state_file)
        self._build = build
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_alerts)
        self._poll_ns = int(poll_secs * 1e9)
        self._clock = clock
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self.manager: AlertManager | None = None
        self.dispatcher: Dispatcher | None = None
        self._store: AlertStore | None = None
        self.error: BaseException | None = None
        #: alerts about receivers, raised in delivery threads (never blocked on the queue)
        self._own: deque[Alert] = deque()

    def start(self) -> None:
        self._store = AlertStore(self.state_file)
        self.manager, self.dispatcher = self._build(self._store, self._health)
        self.manager.load(self._clock())
        self.dispatcher.start()
        self._thread.start()

    def __call__(self, alert: Alert) -> None:
        self._queue.put(alert)

    def through(self, index: int) -> None:
        """Every alert of the records up to ledger entry `index` has been handed in."""
        self._queue.put(_Through(index))

    def detected_through(self) -> int | None:
        """What the state file says detection got through (for the process that starts
        the stage, before it does; None when it says nothing)."""
        store = AlertStore(self.state_file)
        try:
            return store.detected_through() if self.state_file.exists() else None
        finally:
            store.close()

    def close(self) -> None:
        """Take in every queued alert, send what is due, save, and stop the receivers
        (what they could not deliver stays in the outbox for the next start)."""
        if not self._thread.is_alive() and self._store is None:
            return
        self._queue.put(_STOP)
        self._thread.join()
        if self.dispatcher is not None:
            self.dispatcher.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    def stats(self) -> dict[str, ReceiverStats]:
        """Delivery figures by receiver (empty before `start`)."""
        return self.dispatcher.stats() if self.dispatcher is not None else {}

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        assert self.manager is not None and self._store is not None
        polled = 0
        stopping = False
        through = saved = self._store.detected_through()
        while not stopping:
            now = self._clock()
            wait = (self.manager.next_due_ns() - now) / 1e9
            items = self._take(min(max(wait, 0.0), self._poll_ns / 1e9))
            now = self._clock()
            stopping = any(item is _STOP for item in items)  # even if what follows fails
            try:
                for item in items:
                    if isinstance(item, Alert):
                        self.manager.receive(item, now)
                    elif isinstance(item, _Through):  # in order (a new ledger starts at 0)
                        through = int(item)
                while self._own:
                    self.manager.receive(self._own.popleft(), now)
                polling = now - polled >= self._poll_ns or stopping
                if polling:
                    polled = now
                    self._poll(now)
                self._deliver(now, stopping=stopping)
                if polling:  # the outbox already holds what was sent
                    self.manager.save()
                    if through is not None and through != saved:  # after the alerts it covers
                        self._store.set_detected_through(through)
                        saved = through
            except Exception as exc:  # a bug here must not stop alerts for good: log, go on
                log.exception("the alert manager failed: %s", exc)
                self.error = exc

    def _take(self, wait_secs: float) -> list[object]:
        try:
            items = [
                self._queue.get(timeout=wait_secs) if wait_secs > 0 else self._queue.get_nowait()
            ]
        except queue.Empty:
            return []
        while len(items) < _BATCH and items[-1] is not _STOP:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _poll(self, now: int) -> None:
        assert self.manager is not None and self._store is not None
        for command in self._store.pending_commands():
            result = self.manager.command(command, now)
            log.info("command %d (%s by %s): %s", command.id, command.kind, command.by, result)
            self._store.applied(command.id, result)
        self.manager.refresh_silences(now)

    def _deliver(self, now: int, *, stopping: bool = False) -> None:
        assert self.manager is not None and self.dispatcher is not None
        notifications = self.manager.tick(now)
        if stopping:
            notifications += self.manager.drain(now)
        if notifications:
            self.dispatcher.submit(notifications, now)

    def _health(self, receiver: str, ok: bool, reason: str) -> None:
        """A receiver began failing (`ok` False) or recovered: an alert of its own."""
        now = self._clock()
        self._own.append(
            Alert(
                rule=RECEIVER_FAILING,
                priority="Error",
                severity="high",
                time=format_time_ns(now),
                source="logwarden",
                output=reason,
                audit_id=None,
                stage=None,
                tags=("K05", "alerting"),
                output_fields={"receiver": receiver},
                rule_format="logwarden",
                origin=Origin(instance=f"receiver:{receiver}", seq=0, line=0),
                fingerprint=fingerprint(RECEIVER_FAILING, [receiver]),
                labels={"receiver": receiver},
                resolves=ok,
            )
        )
