"""What a format module provides: how the bytes of one input unit become record views."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = [
    "MAX_TIME_NS",
    "MIN_TIME_NS",
    "Format",
    "MalformedInput",
    "checked_time_ns",
    "no_derived",
]


class MalformedInput(ValueError):
    """An input unit is not an event of its format; the message says why.

    `truncated` is set when the unit is the start of a JSON value cut short (a line of a
    pretty-printed document, or a partial write).
    """

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


#: The earliest and latest event times a record may have: those of years 1 to 9999 (UTC),
#: which `datetime` holds, so every record's time can be printed (`records.format_time_ns`).
MIN_TIME_NS = -62_135_596_800 * 1_000_000_000
MAX_TIME_NS = 253_402_300_800 * 1_000_000_000 - 1


def checked_time_ns(ns: int, what: str) -> int:
    """`ns` when it is a time a record may have; else MalformedInput saying that `what`
    (the field and its value as read) is out of range."""
    if MIN_TIME_NS <= ns <= MAX_TIME_NS:
        return ns
    raise MalformedInput(f"{what} is out of range: years 1 to 9999 (UTC) only")


class Format(Protocol):
    """One input format (`normalize/<format>.py` exposes an instance as `FORMAT`)."""

    #: The `Record.source` of the records this format makes.
    source: str

    def decode(self, data: bytes) -> Any:
        """The view of one event, or a list of `(item bytes, view or MalformedInput)`.

        Raises `MalformedInput` when the unit as a whole is unusable.
        """

    def time_ns(self, view: Any) -> int:
        """The event's own time, nanoseconds since the epoch; raises MalformedInput."""

    def alert_ids(self, view: Any) -> tuple[str | None, str | None]:
        """The identifiers an alert carries: (event id, stage)."""

    def alert_labels(self, view: Any) -> dict[str, str]:
        """What the event is about, as alert labels: `namespace`, `user`, `resource`
        (those it has)."""

    def document(self, raw: bytes, view: Any) -> Any:
        """The event as plain JSON values (dicts, lists, strings, numbers), under the field
        names rules use for this kind of record (for web logs, Sigma's webserver names:
        `cs-method`, `sc-status`, ...): what Sigma fields and Falco `jevt` paths read."""

    def derived(self, raw: bytes, view: Any) -> list[tuple[str, bytes]]:
        """Records of other formats this event also is, as (source, raw bytes): a cloud
        provider's audit entry is also a Kubernetes audit Event, so every audit rule runs
        on it. Most formats derive nothing."""


def no_derived(_raw: bytes, _view: Any) -> list[tuple[str, bytes]]:
    """`Format.derived` of a format whose records are no other format's."""
    return []
