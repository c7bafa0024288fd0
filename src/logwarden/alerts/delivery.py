"""Delivery: what every notifier gets once, so no notifier carries a copy of it.

`Dispatcher.submit` renders each notification with its receiver's notifier and puts the
payloads in the outbox (`alerts.outbox`, on disk) in one transaction before it returns;
nothing is acknowledged before it is durable. A local notifier (a synced file) is
durable itself: while nothing of its receiver waits in the outbox, `submit` writes to it
at once, and only what fails goes to the outbox. One `Delivery` thread per receiver then
sends the receiver's payloads oldest first:

- a send that fails with ``retry=True`` (or raises anything but `SendError`: a bug, logged
  with its traceback) is tried again after an exponential backoff with jitter
  (`_pacing.backoff_secs`), at least as long as the receiver's `Retry-After`; the
  receiver's later payloads wait behind it, so order is kept and a receiver that is
  down is not hammered. What is pending when logwarden stops is sent after it starts
  again: a receiver down for an hour gets every notification when it is back.
- a send refused with ``retry=False`` leaves the payload dead: kept in the outbox and
  listed (`Dispatcher.failed`), counted, reported through `on_health`, and sent again
  only when someone calls `Dispatcher.requeue`.
- a receiver failing for `failing_after_secs` is reported once through
  ``on_health(receiver, False, reason)``, and ``on_health(receiver, True, ...)`` follows
  its next success: the manager raises (and resolves) an alert about the receiver itself.
- sends are paced by a token bucket per receiver (`rate_limit_per_sec`, `burst`);
  waiting for a token is not a failure.
- a notifier whose payloads join (`joins`: lines to a file or stdout) gets up to 512
  due payloads concatenated in one send; a `per_alert` notifier gets one notification
  per alert, with id ``{id}/{fingerprint}``.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Sequence

import msgspec

from logwarden.alerts._sender import Delivery, HealthCallback, ReceiverStats
from logwarden.alerts.model import Notification
from logwarden.alerts.outbox import Item, Outbox

__all__ = ["Delivery", "Dispatcher", "HealthCallback", "ReceiverStats"]

log = logging.getLogger("logwarden.alerts")


class Dispatcher:
    """What the alert manager talks to: `submit` notifications, `stats`, `close`.

    Owns the deliveries (their notifiers) and the outbox they share: `close` closes them.
    """

    def __init__(self, deliveries: Sequence[Delivery], outbox: Outbox) -> None:
        self._deliveries: dict[str, Delivery] = {}
        for d in deliveries:
            if d.receiver_id in self._deliveries or d.outbox is not outbox:
                raise ValueError(f"receiver {d.receiver_id!r}: twice, or another outbox")
            self._deliveries[d.receiver_id] = d
        self._outbox = outbox
        self._encode = msgspec.json.Encoder().encode
        self._unrendered: collections.Counter[str] = collections.Counter()
        self._final: dict[str, ReceiverStats] | None = None

    def start(self) -> None:
        for d in self._deliveries.values():
            d.start()

    def submit(self, notifications: Sequence[Notification], now_ns: int) -> None:
        """Render and put `notifications` in the outbox, durable when this returns, and
        wake their deliveries. A receiver that is not configured is a ValueError (and
        nothing is put); a notification the notifier cannot render is kept as unrendered."""
        for n in notifications:
            if n.receiver not in self._deliveries:
                raise ValueError(f"notification {n.id!r} is for an unknown receiver {n.receiver!r}")
        rows: list[tuple[str, str, bytes]] = []
        failed: list[tuple[str, str, bytes, str]] = []
        direct: dict[str, list[tuple[str, bytes]]] = {}
        for n in notifications:
            delivery = self._deliveries[n.receiver]
            notifier = delivery.notifier
            if notifier.local and delivery.idle:
                try:
                    direct.setdefault(n.receiver, []).append((n.id, notifier.render(n)))
                    continue
                except Exception:  # kept as unrendered below
                    pass
            for part in _split(n) if notifier.per_alert else [n]:
                try:
                    rows.append((n.receiver, part.id, notifier.render(part)))
                except Exception as exc:
                    log.exception(
                        "notifier %r of receiver %r could not render notification %r;"
                        " kept in the outbox as unrendered",
                        notifier.kind,
                        n.receiver,
                        part.id,
                    )
                    error = f"render failed: {type(exc).__name__}: {exc}"
                    failed.append((n.receiver, part.id, self._encode(part), error))
                    self._unrendered[n.receiver] += 1
        for receiver, payloads in direct.items():
            if not self._deliveries[receiver].send_now(payloads):
                rows += [(receiver, key, body) for key, body in payloads]
        if rows or failed:
            self._outbox.put(rows, now_ns, unrendered=failed)
        for receiver in {r for r, _, _ in rows} | {r for r, _, _, _ in failed}:
            self._deliveries[receiver].wake()

    def close(self, drain_secs: float = 5.0) -> None:
        """Send what is due now (for at most about `drain_secs`), stop, close the
        notifiers and the outbox. What was not sent is sent after the next start."""
        for d in self._deliveries.values():
            d.stop(drain_secs)
        for d in self._deliveries.values():
            d.close(drain_secs)
        self._final = self.stats()
        self._outbox.close()

    def stats(self) -> dict[str, ReceiverStats]:
        """Each receiver's figures (after `close`, those it closed with)."""
        if self._final is not None:
            return self._final
        stats = {}
        for receiver, d in self._deliveries.items():
            s = d.stats()
            stats[receiver] = msgspec.structs.replace(s, dead=s.dead + self._unrendered[receiver])
        return stats

    def failures(self) -> dict[str, int]:
        """Notifications given up on in this process (refused or not rendered), by receiver."""
        return {r: d.dead + self._unrendered[r] for r, d in self._deliveries.items()}

    def failed(self, receiver: str | None = None) -> list[Item]:
        """The dead and unrendered payloads kept in the outbox, oldest first."""
        return self._outbox.failed(receiver)

    def requeue(self, receiver: str, now_ns: int) -> int:
        """Send the receiver's dead payloads again; returns how many."""
        if receiver not in self._deliveries:
            raise ValueError(f"unknown receiver {receiver!r}")
        count = self._outbox.requeue(receiver, now_ns)
        self._deliveries[receiver].wake()
        return count


def _split(n: Notification) -> list[Notification]:
    """One notification per alert, for a `per_alert` notifier."""
    if not n.alerts:
        return [n]
    return [msgspec.structs.replace(n, id=f"{n.id}/{a.fingerprint}", alerts=[a]) for a in n.alerts]
