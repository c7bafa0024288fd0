"""What a notifier is: `render(notification) -> payload` (pure) and `send(payload, key)` (I/O).

Everything else (the outbox, retries with backoff, rate limits, metrics) is
`alerts.delivery`'s, once for all notifiers. A notifier says how delivery may treat it
with two class attributes:

- `joins`: payloads are lines that may be concatenated into one send (a file, stdout);
- `per_alert`: the service takes one alert per message (PagerDuty's Events API), so
  delivery hands it notifications of one alert each;
- `local`: the destination is on this machine and durable itself (a synced file), so
  delivery writes to it directly when nothing waits for it in the outbox, and uses the
  outbox only for what fails. Stdout is not: a reader that stops reading would block.

`send` raises `SendError` when the payload did not arrive; `retry` says whether trying
again may help, and `retry_after_secs` how long the receiver asked to be left alone
(HTTP 429 `Retry-After`). `key` is the notification's id: the idempotency key, for
receivers that can use one (a header, a message id, a dedup key).
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from logwarden.alerts.model import Notification
from logwarden.errors import LogwardenError

__all__ = ["Notifier", "SendError"]


class SendError(LogwardenError):
    """A payload was not delivered; `retry` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool, retry_after_secs: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after_secs = retry_after_secs


class Notifier(Protocol):
    """One alert destination."""

    #: the kind, as in the config's `type:` (`stdout`, `slack`, `pagerduty`, ...)
    kind: ClassVar[str]
    joins: ClassVar[bool]
    per_alert: ClassVar[bool]
    local: ClassVar[bool]

    def render(self, notification: Notification) -> bytes:
        """The payload for `notification` (no I/O)."""

    def send(self, payload: bytes, key: str) -> None:
        """Deliver `payload` (the rendering of the notification whose id is `key`); raise
        SendError when it did not arrive."""

    def close(self) -> None:
        """Release what `send` holds (files, connections)."""
