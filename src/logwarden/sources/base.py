"""What a source is: something that emits Records until stopped.

Two shapes. An *offline* source (`files.FileSource`, what `detect` reads) calls `emit`
once per record and returns at the end of its input. A *live* source (`k8s_audit_file`,
and later the other sources of `run`) hands batches to `emit`, which returns only once the
batch is durable in the ledger, and resumes after a restart from `resume_seq`, the last
`seq` of its records the ledger holds: it neither repeats nor skips. A source that is
itself a server (`k8s_audit_webhook`) hands its batches to the pipeline the same way, and
answers its sender only once they are durable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from logwarden.errors import LogwardenError
from logwarden.records import Record

__all__ = [
    "LiveSource",
    "Saturated",
    "Source",
    "require_at_least_one",
    "require_positive",
    "require_start_at",
]


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


class LiveSource(Protocol):
    """A source of the monitoring service (see the module doc).

    Its counters, read for /metrics: `events` (records emitted and durable), `rejected`
    (malformed input reported), `last_event_ns` (receive time of the newest record).
    """

    events: int
    rejected: int
    last_event_ns: int

    def run(
        self, emit: Callable[[list[Record]], None], stop: threading.Event, resume_seq: int
    ) -> None:
        """Emit batches (each durable when `emit` returns) until `stop` is set."""


def require_positive(name: str, value: float) -> None:
    """A source's setting that must be above zero (a ValueError naming it otherwise)."""
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value}")


def require_at_least_one(name: str, value: float) -> None:
    """A source's setting that must be 1 or more (a ValueError naming it otherwise)."""
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")


def require_start_at(value: str) -> None:
    """Where a source starts when it has no state: `beginning` or `end`."""
    if value not in ("beginning", "end"):
        raise ValueError(f"start_at must be 'beginning' or 'end', not {value!r}")
