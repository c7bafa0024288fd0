"""The thread that sends one receiver's payloads from the outbox (`delivery.Delivery`).

How it behaves is described in `alerts.delivery`'s module doc, which is the public face.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

import msgspec

from logwarden.alerts._pacing import TokenBucket, backoff_secs
from logwarden.alerts.notifiers.base import Notifier, SendError
from logwarden.alerts.outbox import Item, Outbox

__all__ = ["Delivery", "HealthCallback", "ReceiverStats"]

log = logging.getLogger("logwarden.alerts")
#: most payloads one send carries, for notifiers whose payloads join (`joins`)
_BATCH = 512
#: how long `close` waits beyond `drain_secs` for a send in progress (its own timeout)
_GRACE_SECS = 30.0

#: ``on_health(receiver, healthy, reason)``
HealthCallback = Callable[[str, bool, str], None]


class ReceiverStats(msgspec.Struct, frozen=True):
    """One receiver's delivery figures (the counters since this process started)."""

    sent: int
    #: failed sends that will be tried again (payloads, not sends)
    retried: int
    #: payloads given up on: refused by the receiver, or not rendered
    dead: int
    pending: int
    oldest_pending_age_secs: float
    #: the last send failed and the receiver has not taken one since
    failing: bool
    last_error: str | None
    #: dead and unrendered payloads in the outbox now (they stay until requeued)
    dead_kept: int


def _ns(secs: float) -> int:
    return int(secs * 1e9)


class Delivery:
    """The thread that sends one receiver's payloads from the outbox (see `alerts.delivery`).

    `clock` is seconds since the epoch; `sleep(secs)`, if given, replaces the waits for a
    backoff or a rate-limit token (a test's fake that advances its fake `clock`).
    """

    def __init__(
        self,
        receiver_id: str,
        notifier: Notifier,
        outbox: Outbox,
        *,
        rate_limit_per_sec: float = 0.0,
        burst: int = 10,
        min_backoff_secs: float = 1.0,
        max_backoff_secs: float = 300.0,
        failing_after_secs: float = 900.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        on_health: HealthCallback | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < min_backoff_secs <= max_backoff_secs or failing_after_secs <= 0:
            raise ValueError(
                f"receiver {receiver_id!r}: need 0 < min_backoff_secs <= max_backoff_secs"
                f" and failing_after_secs > 0, not {min_backoff_secs}, {max_backoff_secs},"
                f" {failing_after_secs}"
            )
        self.receiver_id = receiver_id
        self.notifier = notifier
        self.outbox = outbox
        self._bucket = TokenBucket(rate_limit_per_sec, burst, clock)
        paced = f"ratelimit<{notifier.kind}>" if rate_limit_per_sec else notifier.kind
        #: what wraps what, as the style guide names a wrapped sink
        self.name = f"outbox<retry<{paced}>>"
        self._backoff = (min_backoff_secs, max_backoff_secs)
        self._failing_after = failing_after_secs
        self._clock, self._sleep, self._rand = clock, sleep, rand
        self._on_health = on_health
        self._limit = _BATCH if notifier.joins else 1
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"delivery-{receiver_id}", daemon=True
        )
        self._stopping = False
        self._deadline = 0.0
        self.sent = self.retried = self.dead = 0
        self.last_error: str | None = None
        #: when the current run of failed sends began (None: the last send worked)
        self._failing_since: float | None = None
        self._reported = self._unhealthy = False
        #: after a joined send was refused: send one at a time through this id
        self._isolate_through = 0
        #: nothing of this receiver waits in the outbox (set by this thread when it finds
        #: none, cleared by whoever puts some there): a local notifier may be written to
        #: directly, in order
        self.idle = False

    def __repr__(self) -> str:
        return f"<Delivery {self.receiver_id!r} {self.name}>"

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New payloads are in the outbox."""
        self.idle = False
        self._wake.set()

    def send_now(self, payloads: list[tuple[str, bytes]]) -> bool:
        """Write `(key, payload)`s of a local notifier at once, from the caller's thread
        (only while `idle`); False if it failed (the caller puts them in the outbox)."""
        try:
            self.notifier.send(b"".join(p for _, p in payloads), payloads[0][0])
        except Exception as exc:
            log.warning(
                "receiver %r: writing %d notification(s) failed (%s); they wait in the outbox",
                self.receiver_id,
                len(payloads),
                exc,
            )
            return False
        self.sent += len(payloads)
        return True

    def stop(self, drain_secs: float = 5.0) -> None:
        """Send what is due now for at most `drain_secs`, then stop (does not wait)."""
        if not self._stopping:
            self._deadline = time.monotonic() + drain_secs
            self._stopping = True
            self._wake.set()

    def close(self, drain_secs: float = 5.0) -> None:
        """`stop`, wait for the thread, release the notifier. What was not sent stays in
        the outbox for the next start."""
        self.stop(drain_secs)
        if self._thread.is_alive():
            self._thread.join(max(0.0, self._deadline - time.monotonic()) + _GRACE_SECS)
            if self._thread.is_alive():
                log.error("receiver %r is still sending after close; leaving it", self.receiver_id)
        self.notifier.close()
        if left := self.outbox.count(self.receiver_id):
            log.info(
                "receiver %r has %d notification(s) waiting for the next start",
                self.receiver_id,
                left,
            )

    def stats(self) -> ReceiverStats:
        head = self.outbox.head(self.receiver_id)
        age = 0.0 if head is None else max(0.0, self._clock() - head.created_ns / 1e9)
        return ReceiverStats(
            sent=self.sent,
            retried=self.retried,
            dead=self.dead,
            pending=self.outbox.count(self.receiver_id),
            oldest_pending_age_secs=age,
            failing=self._failing_since is not None,
            last_error=self.last_error,
            dead_kept=sum(self.outbox.count(self.receiver_id, s) for s in ("dead", "unrendered")),
        )

    def _run(self) -> None:
        resumed = False
        while True:
            try:
                if not resumed:
                    self._resume()
                    resumed = True
                if not self._step():
                    return
            except Exception:  # the outbox failing (disk full): log, keep the thread
                log.exception("delivery to receiver %r failed; trying again", self.receiver_id)
                if self._stopping:
                    return
                self._pause(self._backoff[0])

    def _resume(self) -> None:
        head = self.outbox.head(self.receiver_id)
        if head is not None and head.attempts:  # it was failing when logwarden stopped
            self._failing_since, self.last_error = head.created_ns / 1e9, head.last_error

    def _step(self) -> bool:
        """Send one batch, or wait for one; False when stopped."""
        now = self._clock()
        batch = self.outbox.due(self.receiver_id, _ns(now), self._limit)
        if self._isolate_through and batch:
            batch = batch[:1]
            if batch[0].id >= self._isolate_through:
                self._isolate_through = 0
        if not batch:
            if self._stopping:
                return False
            self._check_failing(now)
            head = self.outbox.head(self.receiver_id)
            if head is None:
                self.idle = True
                self._pause(None)
                return True
            wait = head.next_ns / 1e9 - now
            if self._failing_since is not None and not self._reported:  # report it on time
                wait = min(wait, self._failing_since + self._failing_after - now)
            self._pause(wait)
            return True
        wait = self._bucket.take()
        if wait > 0:
            if self._stopping and time.monotonic() + wait > self._deadline:
                return False
            self._pause(wait)
            return True
        self._send(batch)
        return not self._stopping or time.monotonic() < self._deadline

    def _pause(self, secs: float | None) -> None:
        if secs is not None and secs <= 0:
            return
        if secs is not None and self._sleep is not None:
            self._sleep(secs)
        else:
            self._wake.wait(secs)
            self._wake.clear()

    def _send(self, batch: list[Item]) -> None:
        payload = b"".join(item.body for item in batch)
        try:
            self.notifier.send(payload, batch[0].key)
        except SendError as exc:
            if exc.retry:
                self._retry(batch, str(exc), exc.retry_after_secs)
            else:
                self._refused(batch, str(exc))
            return
        except Exception as exc:
            log.exception(
                "notifier %r of receiver %r raised instead of SendError (a bug); retrying",
                self.notifier.kind,
                self.receiver_id,
            )
            self._retry(batch, f"{type(exc).__name__}: {exc}", None)
            return
        now = self._clock()
        self.outbox.done([item.id for item in batch], _ns(now))
        self.sent += len(batch)
        if self._failing_since is not None:
            log.info(
                "receiver %r takes notifications again after %.0f s",
                self.receiver_id,
                now - self._failing_since,
            )
        if self._unhealthy:
            self._health(True, f"receiver {self.receiver_id!r} takes notifications again")
        self._failing_since, self._reported = None, False

    def _retry(self, batch: list[Item], error: str, retry_after: float | None) -> None:
        now = self._clock()
        delay = backoff_secs(batch[0].attempts + 1, *self._backoff, retry_after, self._rand)
        self.outbox.retry([item.id for item in batch], _ns(now + delay), error)
        self.retried += len(batch)
        self.last_error = error
        if self._failing_since is None:
            self._failing_since = now
        log.warning(
            "receiver %r did not take %d notification(s), the first %r: %s; trying again in %.1f s",
            self.receiver_id,
            len(batch),
            batch[0].key,
            error,
            delay,
        )
        self._check_failing(now)

    def _refused(self, batch: list[Item], error: str) -> None:
        if len(batch) > 1:  # which of the joined payloads? send them one at a time
            self._isolate_through = batch[-1].id
            return
        self.outbox.dead([batch[0].id], error)
        self.dead += 1
        self.last_error = error
        log.error(
            "receiver %r refused notification %r, kept in the outbox as dead: %s",
            self.receiver_id,
            batch[0].key,
            error,
        )
        self._health(
            False, f"receiver {self.receiver_id!r} refused notification {batch[0].key!r}: {error}"
        )

    def _check_failing(self, now: float) -> None:
        if self._failing_since is None or self._reported:
            return
        secs = now - self._failing_since
        if secs >= self._failing_after:
            self._reported = True
            self._health(
                False,
                f"receiver {self.receiver_id!r} has failed for {secs:.0f} s: {self.last_error}",
            )

    def _health(self, healthy: bool, reason: str) -> None:
        self._unhealthy = not healthy
        if self._on_health is None:
            return
        try:
            self._on_health(self.receiver_id, healthy, reason)
        except Exception:
            log.exception("on_health for receiver %r raised", self.receiver_id)
