"""The lines of a log file into records, for `log_file.LogFileSource`.

Each line of the file (used only once its newline has arrived) is split into input units
by `units` (default: the line itself, without trailing whitespace, is one unit), and each
unit is decoded by the source's `Format`; a unit the format decodes into a list (an
EventList, a JSON array) yields one record per item (see `normalize.base.Format.decode`).
Empty lines, and lines `skip` says are not records by design (the ``//`` comment header of
Hubble sample files, see `skip_for`), are passed over without a report. Every other line,
unit or item that is not an event of the format is reported to `Rejects` as
``path:line: reason`` and counted.

Records are numbered (`seq`) from 1 in the order read, every run alike; those up to
`durable` (the ledger holds them) are numbered but not handed out again, and what was
wrong before them is not reported again (the run that emitted them did).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logwarden.normalize import hubble
from logwarden.normalize.base import Format, MalformedInput
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._logfiles import event_items
from logwarden.sources._tail import TailFile

__all__ = ["LineDecoder", "Skip", "Units", "comment_line", "skip_for"]

#: Splits one line into the input units it holds (bytes each), or says why one is unusable
#: (a `MalformedInput` in its place; raised, it stands for the whole line).
Units = Callable[[bytes], list[bytes | MalformedInput]]
#: Whether a line is not a record by design (passed over without a report).
Skip = Callable[[bytes], bool]


def comment_line(line: bytes) -> bool:
    """Whether `line` is a ``//`` comment (the SPDX header of hubble-otel's flow files)."""
    return line.lstrip().startswith(b"//")


_SKIPS: dict[str, Skip] = {hubble.SOURCE: comment_line}


def skip_for(fmt: Format) -> Skip | None:
    """The lines files of `fmt` hold that are not records by design, if any."""
    return _SKIPS.get(fmt.source)


class LineDecoder:
    """Decodes the lines of one source's files into numbered records (see the module doc).

    Counters: `rejected` (malformed lines, units and items), `skipped` (lines `skip`
    passed over).
    """

    def __init__(
        self,
        source_id: str,
        fmt: Format,
        rejects: Rejects,
        *,
        units: Units | None = None,
        skip: Skip | None = None,
    ) -> None:
        self.source_id = source_id
        self.fmt = fmt
        self.rejects = rejects
        self.units = units
        self.skip = skip
        #: the seq of the last record decoded, and of the last one the ledger holds
        self.seq = 0
        self.durable = 0
        self.rejected = 0
        self.skipped = 0

    def line(self, line: bytes, file: TailFile, received: int, out: list[Record]) -> None:
        """Append the records of one line of `file` to `out` (those not yet durable)."""
        raw = line.rstrip()
        if not raw:
            return
        if self.skip is not None and self.skip(raw):
            if self.seq >= self.durable:
                self.skipped += 1
            return
        if self.units is None:
            self._unit(raw, file, received, out)
            return
        try:
            units = self.units(raw)
        except MalformedInput as exc:  # the line as a whole
            units = [exc]
        for unit in units:
            if isinstance(unit, MalformedInput):
                self.report(f"{file.path}:{file.line}", str(unit), raw)
            else:
                self._unit(unit, file, received, out)

    def _unit(self, raw: bytes, file: TailFile, received: int, out: list[Record]) -> None:
        """Append the records of one input unit to `out` (those not yet durable)."""
        fmt = self.fmt
        items: list[tuple[bytes, Any, int]]
        try:
            view = fmt.decode(raw)
            if isinstance(view, list):
                items = event_items(fmt, view, f"{file.path}:{file.line}", self.report)
            else:
                items = [(raw, view, fmt.time_ns(view))]
        except MalformedInput as exc:
            self.report(f"{file.path}:{file.line}", str(exc), raw)
            return
        for item, view, when in items:
            self.seq += 1
            if self.seq > self.durable:
                record = Record(
                    fmt.source, self.source_id, self.seq, file.line, received, when, item, view
                )
                out.append(record)

    def incomplete(self, file: TailFile) -> None:
        """Report the partial last line of `file`, finished without its newline (unless it
        is blank or skipped)."""
        partial = file.partial()
        if partial.strip() and not (self.skip is not None and self.skip(partial.rstrip())):
            self.report(
                f"{file.path}:{file.line + 1}",
                "incomplete last line: the file was rotated before its newline was written",
                partial,
            )

    def report(self, where: str, reason: str, raw: bytes) -> None:
        """Report an unusable line or item, unless it lies before the last durable record
        (reported by the run that emitted that record)."""
        if self.seq < self.durable:
            return
        self.rejected += 1
        self.rejects.report(where, reason, raw)
