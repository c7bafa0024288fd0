"""A log file of any line format: tailed through rotation, resumed exactly after a restart.

Each line of the file (used only once its newline has arrived) is split into input units
by `units`, each decoded by the source's `Format` into records; lines `skip` says are not
records are passed over, and every line, unit or item that is not an event of the format
is reported to `Rejects` as ``path:line: reason`` and counted (see `_lines`). The file is
polled every `poll_interval_secs`.

Position. After `emit` returns (the batch is durable in the ledger), the source saves
where it stands in ``<state_dir>/<kind>.<source_id>.json`` (`kind` is ``log_file``; the
audit tail keeps its own ``k8s_audit_file``): the seq of the batch's last record, the file
it came from by identity (device, inode, and the SHA-256 of its first up to 1 KiB, which
survives renaming and compression), the byte offset and line number just after the last
line of the batch (skipped and rejected lines after its last record included), and the
SHA-256 of the up to 1 KiB before that offset (the file must still hold them to be taken
for the saved one). Batches never span two files.

Resume. `run(..., resume_seq)` gets the last seq of this source the ledger holds. The
saved file is looked up among the live file and its backups (see `_rotation`), read from
the saved offset (a ``.gz`` is decompressed up to it), then every newer backup, then the
live file. If the state lags the ledger (a crash after the ledger stored a batch but before
the state was saved), the first ``resume_seq - state.seq`` records are skipped. A state
ahead of the ledger, or a missing state with a non-empty ledger, is an `InputError`: the
source never guesses. With no state and an empty ledger the source starts at the beginning
of the live file (``start_at="end"``: at its end, saved at once so that a restart before
the first record goes on from there; older backups are not read).

Rotation. While running, when the live path's inode changes, the old file is finished
through its still-open descriptor, then the next file in rotation order is read from its
start (several rotations between two polls are followed one by one); a new live file that
holds the old one's content and more (replaced by a longer copy) is read on from where
the old one was left. A live file that shrinks, or whose first bytes or last bytes read
change (even when it grew back past the point read between two polls), was truncated in
place (copytruncate): nothing more is read from it until its copy is finished from the
offset read, if it can be found, then it is read from its start; since lines written
between the copy and the truncation are lost, this is reported. (A truncated file written
again with the very same bytes where they are checked cannot be told from growth.) The
file last switched away from is watched until the next switch: if it is written to still
(its writer did not reopen the log after the rotation), that is reported, as those lines
are not read.
A saved file that is gone after a restart is reported too, and reading continues with the
oldest file newer than it (records the ledger holds beyond the saved position are then
taken as read from the gone file, and numbering continues after them). Reports of
possible loss are counted in `gaps`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from logwarden.errors import InputError
from logwarden.normalize.base import Format
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._lines import LineDecoder, Skip, Units, comment_line, skip_for
from logwarden.sources._position import Position, load_position, save_position, state_path
from logwarden.sources._rotation import (
    LIVE_KEY,
    MISSES,
    Candidate,
    Mark,
    after_ns,
    candidates,
    copy_of,
    gone_reason,
    locate,
    newer_files,
    open_candidate,
)
from logwarden.sources._tail import Grace, ShortFile, TailFile, skip_to_end
from logwarden.sources.base import require_at_least_one, require_positive, require_start_at

__all__ = ["LogFileSource", "Skip", "Units", "comment_line", "skip_for"]

#: bytes of lines looked at per batch at most, so that `stop` is seen in a long run of
#: skipped or rejected lines
_BATCH_BYTES = 8 << 20
#: how many times the saved file is looked for (see `_rotation.MISSES`)
_RETRIES = 20


class LogFileSource:
    """Tails one log file of one line format (see the module doc).

    Counters for metrics: `events` (records emitted and durable), `rejected` (malformed
    lines, units and items), `skipped` (lines `skip` passed over), `bytes_read`,
    `rotations_seen` (switches to a newer file), `last_event_ns` (receive time of the
    newest record), `gaps` (reported possible loss).
    """

    #: the first part of the state file's name
    kind = "log_file"

    def __init__(
        self,
        source_id: str,
        path: str,
        state_dir: Path,
        rejects: Rejects,
        *,
        fmt: Format,
        units: Units | None = None,
        poll_interval_secs: float = 0.25,
        batch_events: int = 1024,
        start_at: str = "beginning",
        skip: Skip | None = None,
    ) -> None:
        require_positive("poll_interval_secs", poll_interval_secs)
        require_at_least_one("batch_events", batch_events)
        require_start_at(start_at)
        self.source_id = source_id
        self.path = path
        self.fmt = fmt
        self.state_file = state_path(state_dir, self.kind, source_id)
        self.rejects = rejects
        self.poll_interval_secs = poll_interval_secs
        self.batch_events = batch_events
        self.start_at = start_at
        self.events = 0
        self.bytes_read = 0
        self.rotations_seen = 0
        self.last_event_ns = 0
        self.gaps = 0
        self._file: TailFile | None = None
        #: the file last switched away from, watched for lines written to it since
        self._left: TailFile | None = None
        #: with no file open: open the oldest file whose rotation key is at least this
        self._want_after = LIVE_KEY
        self._at_end = False
        self._lines = LineDecoder(source_id, fmt, rejects, units=units, skip=skip)
        self._misses = 0
        self._grace = Grace(poll_interval_secs)

    @property
    def rejected(self) -> int:
        """Malformed lines, units and items (counted where lines are decoded)."""
        return self._lines.rejected

    @rejected.setter
    def rejected(self, value: int) -> None:
        self._lines.rejected = value

    @property
    def skipped(self) -> int:
        return self._lines.skipped

    def run(
        self, emit: Callable[[list[Record]], None], stop: threading.Event, resume_seq: int
    ) -> None:
        """Emit batches of records until `stop` is set; `resume_seq` is the last seq of this
        source durable in the ledger (0 if none). Raises InputError when the saved position
        and the ledger disagree, or a file cannot be read."""
        try:
            self._resume(resume_seq)
            while not stop.is_set():
                if not self._step(emit):
                    stop.wait(self.poll_interval_secs)
        except OSError as exc:
            raise InputError(f"cannot read {exc.filename or self.path}: {exc.strerror}") from exc
        finally:
            for file in (self._file, self._left):
                if file is not None:
                    file.close()
            self._file = self._left = None

    # --- start ------------------------------------------------------------------------------

    def _resume(self, resume_seq: int) -> None:
        pos = load_position(self.state_file)
        if pos is None:
            if resume_seq:
                raise InputError(
                    f"the ledger holds {resume_seq} records of source '{self.source_id}' but "
                    f"its position state file {self.state_file} is missing: cannot tell where "
                    "to continue without repeating or skipping lines; restore the state file"
                )
            self._at_end = self.start_at == "end"
            return
        if pos.seq > resume_seq:
            raise InputError(
                f"the position state file {self.state_file} says records up to {pos.seq} of "
                f"source '{self.source_id}' are stored, but the ledger holds only "
                f"{resume_seq}: records believed durable are missing from the ledger "
                "(restored from an older copy?); refusing to skip or repeat them"
            )
        self._lines.seq, self._lines.durable = pos.seq, resume_seq
        for attempt in range(_RETRIES):
            if self._reopen(pos, sure=attempt >= MISSES):
                return
        raise InputError(f"{pos.path}: the file of the saved position keeps disappearing")

    def _reopen(self, pos: Position, *, sure: bool) -> bool:
        """Open the file of `pos` at its offset; False to look again (it vanished while
        looking, or is missing and not `sure` yet)."""
        cands = candidates(self.path)
        mark = Mark(pos.offset, pos.last_len, pos.last_sha256)
        idx = locate(cands, pos.device, pos.inode, pos.head_len, pos.head_sha256, mark)
        if idx is None and not sure:
            return False
        if idx is None:
            self._gap(
                f"{pos.path}:{pos.line}",
                "the file of the saved position is gone (rotated away and deleted, or "
                "truncated, while logwarden was stopped?): lines after this one may be lost; "
                "continuing with the oldest newer file" + self._unsaved(),
            )
            self._want_after = pos.after_ns
            return True
        cand = cands[idx]
        try:
            self._file = open_candidate(
                cand, self._list, offset=pos.offset, line=pos.line, mark=mark
            )
        except FileNotFoundError:
            return False  # compressed, renamed or removed meanwhile: look again
        except ShortFile:
            self._gap(
                f"{cand.path}:{pos.line}",
                f"does not hold the {pos.offset} bytes read before (truncated?): "
                "continuing with the next file, or this one from its start if it is live"
                + self._unsaved(),
            )
            self._want_after = after_ns(cand)
        return True

    def _list(self) -> list[Candidate]:
        """The files of the log, oldest first (see `_rotation.candidates`)."""
        return candidates(self.path)

    def _unsaved(self) -> str:
        """When the rest of the saved file cannot be read: take the records stored after the
        saved position as read from it, and say so. (They may as well have come from the
        next file, which is then emitted whole: a repeat is reported, never a silent loss.)"""
        lines = self._lines
        lag = lines.durable - lines.seq
        lines.seq = lines.durable
        if not lag:
            return ""
        return (
            f"; the {lag} records the ledger holds after the saved position are taken as "
            "read from it (if they came from the next file, they are emitted again)"
        )

    def _open_next(self) -> bool:
        """With no file open: open the oldest file at least `_want_after`, if any."""
        for cand in candidates(self.path):
            if cand.key_ns >= self._want_after:
                try:
                    self._file = open_candidate(cand, self._list)
                except FileNotFoundError:
                    return False  # renamed or removed since listed: look again
                if self._at_end:
                    self._at_end = False
                    self.bytes_read += skip_to_end(self._file)
                    self._save(self._file)
                return True
        return False

    # --- reading ----------------------------------------------------------------------------

    def _step(self, emit: Callable[[list[Record]], None]) -> bool:
        """Do one piece of work; False when there is nothing to do until the next poll."""
        file = self._file
        if file is None:
            return self._open_next()
        records, at_eof = self._batch(file)
        if records:
            emit(records)
            self._saved(records, file)
            return True
        return not at_eof or self._switch(file)

    def _batch(self, file: TailFile) -> tuple[list[Record], bool]:
        """The next records of `file`, and whether its end (for now) was reached."""
        out: list[Record] = []
        received = time.time_ns()
        looked = 0
        while len(out) < self.batch_events and looked < _BATCH_BYTES:
            line = file.take_line()
            if line is None:
                n = file.fill()
                if not n:
                    return out, True
                self.bytes_read += n
                received = time.time_ns()  # one reading per chunk: its lines arrived together
                continue
            looked += len(line) + 1
            self._lines.line(line, file, received, out)
        return out, False

    def _saved(self, records: list[Record], file: TailFile) -> None:
        """Count a batch `emit` made durable and save the position after it."""
        self.events += len(records)
        self.last_event_ns = records[-1].received_ns
        self._lines.durable = records[-1].seq
        self._save(file)

    def _save(self, file: TailFile) -> None:
        """Save the position: after the last durable record, where `file` stands."""
        mark = Mark.of(file)
        position = Position(
            seq=self._lines.durable,
            **file.identity(),
            offset=file.offset,
            line=file.line,
            last_len=mark.length,
            last_sha256=mark.sha256,
        )
        save_position(self.state_file, position)

    # --- rotation ---------------------------------------------------------------------------

    def _switch(self, file: TailFile) -> bool:
        """At the end of `file`: follow a rotation or truncation; False if there is none."""
        if not file.compressed and file.is_at(self.path):
            if not file.truncated():
                self._late()
                return False
            self._truncated(file)
            return True
        n = file.fill()  # what was written before the rename
        if n:
            self.bytes_read += n
            return True
        if not self._grace.over(file):
            return False  # its writer may still append to it until it reopens the log
        return self._advance(file)

    def _advance(self, file: TailFile) -> bool:
        """Switch from the finished `file` to the next newer one, if there is one yet."""
        newer, self._misses, continues = newer_files(candidates(self.path), file, self._misses)
        if not newer:
            return False
        try:
            # replaced by a longer copy (`continues`): read on in it where `file` stands
            offset, line = (file.offset, file.line) if continues else (0, 0)
            nxt = open_candidate(newer[0], self._list, offset=offset, line=line)
        except (FileNotFoundError, ShortFile):
            return False  # compressed or renamed meanwhile: look again at the next poll
        if self._misses >= MISSES:
            self._gap(f"{file.path}:{file.line}", gone_reason(nxt.path))
        self._misses = 0
        if continues:
            file.close()  # its partial last line goes on in `nxt`
        else:
            self._lines.incomplete(file)
            self._leave(file)
        self._grace.clear()
        self._file = nxt
        self.rotations_seen += 1
        return True

    def _leave(self, file: TailFile) -> None:
        """Watch the finished `file` (instead of the one left before) for late lines."""
        if self._left is not None:
            self._left.close()
        self._left = file

    def _late(self) -> None:
        """Report once that the file left was written to after it was finished."""
        left = self._left
        if left is None:
            return
        late = left.unread()
        if late:
            self._gap(
                f"{left.path}:{left.line}",
                f"the file this name held until it was rotated away was written to after it "
                f"was finished ({late} bytes; does its writer reopen the log after rotation?): "
                "lines after this one are not read",
            )
            left.close()
            self._left = None

    def _truncated(self, file: TailFile) -> None:
        """The live `file` was truncated in place: finish its copy if found, then reread it."""
        where = f"{file.path}:{file.line}"
        copy = copy_of(self.path, file)
        if copy is None:
            self._gap(
                where,
                "truncated in place (copytruncate?) and no copy found that holds what was "
                "read: reading it again from its start; lines after this one may be lost",
            )
            file.rewind()
            return
        self._gap(
            where,
            f"truncated in place (copytruncate): continuing in its copy {copy.path}, then "
            "from the start of this file; lines written between the copy and the truncation "
            "are lost",
        )
        file.close()
        self._file = copy
        self.rotations_seen += 1

    # --- reports ----------------------------------------------------------------------------

    def _gap(self, where: str, reason: str) -> None:
        self.gaps += 1
        self.rejects.report(where, reason)
