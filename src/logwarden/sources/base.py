"""What a source is, for the pipeline: something that emits Records until stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from logwarden.errors import LogwardenError
from logwarden.records import Record

__all__ = ["Saturated", "Source"]


class Saturated(LogwardenError):
    """What records are handed to cannot take them now: `full` (try again soon), or it is
    stopping or has failed (`full` False)."""

    def __init__(self, message: str, *, full: bool) -> None:
        super().__init__(message)
        self.full = full


class Source(Protocol):
    """One input of logwarden (a file set, a webhook, a journal, ...).

    `run` calls `emit` once per record, in order, and returns when the input is exhausted
    or `stop` is set. A source that can be restarted remembers its position (offset,
    resourceVersion, cursor) so a restart neither loses nor repeats records. Input it cannot
    use goes to `logwarden.rejects.Rejects`, never silently away.
    """

    def run(self, emit: Callable[[Record], object], stop: threading.Event | None = None) -> None:
        """Emit records until the input is exhausted or `stop` is set."""
