"""What a notifier is: `render(alert) -> payload` (pure) and `send(payload)` (I/O)."""

from __future__ import annotations

from typing import Protocol

from logwarden.errors import LogwardenError
from logwarden.records import Alert

__all__ = ["Notifier", "SendError"]


class SendError(LogwardenError):
    """A payload was not delivered; `retry` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Notifier(Protocol):
    """One alert destination."""

    #: the kind, as in the config's `type:` (`stdout`, `file`, `webhook`)
    kind: str

    def render(self, alert: Alert) -> bytes:
        """The payload for `alert` (no I/O)."""

    def send(self, payload: bytes) -> None:
        """Deliver `payload`; raise SendError when it did not arrive."""

    def close(self) -> None:
        """Release what `send` holds (files, connections)."""
