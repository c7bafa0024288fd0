"""Container and application logs: follows every container's log under /var/log/pods.

The kubelet keeps each container's log in ``<root>/<namespace>_<pod>_<uid>/<container>/
<restart>.log``, rotates it to ``<restart>.log.<YYYYMMDD-HHMMSS>`` and later gzips that
(``....gz``). Each such *log* (a live file and its backups) is followed on its own: new
pods and containers are found at every poll, a log whose files are all gone is finished
(its pending messages come out marked partial) and forgotten. Pods of namespaces not
included, or excluded, are not read. `_kubelet_files` finds the logs and their files;
`_pod_files` reads them and follows them through rotation; `_pod_log` holds one log as it
is followed, and the record of where to read it again.

Lines go through one `normalize.container_log.Reassembler` per log (CRI ``P``/``F``
chunks, or Docker json-file; the same reassembler across a rotation, so a message split
over two files is joined) and one `MultilineJoiner` (stack traces); each entry becomes a
record whose raw is `envelope(...)` and whose line is the entry's first line in its file.
Malformed lines go to `Rejects` as ``path:line: reason``.

Batches. A batch holds the entries of one log, in the order they came out. Seq counts all
records of the source instance, from 1.

Position. After `emit` returns (the batch is durable) the source saves, in
``<state_dir>/container_logs.<source_id>.json``, the seq of the last durable record and for
every log where to read again: the first line of the oldest entry not yet emitted (a
message whose chunks are pending, a trace held by the joiner, an entry waiting for its
batch), or the end of what was read if there is none; that line's file (by device, inode
and the SHA-256 of its first up to 1 KiB, as in `_position`), byte offset and line number;
and which of the lines read since belong to entries not yet emitted (`refeed`, relative to
that line; the other lines belong to emitted entries or were rejected). After a restart,
exactly those lines are fed again, so pending partial chunks and held traces are rebuilt
and nothing emitted is emitted again. The state also names the log the next batch comes
from (`next`): saved before that batch's `emit` when it was not known at the previous save.

Resume. If the saved seq lags the ledger's `resume_seq` (a crash after the ledger stored a
batch, before the state was saved), that many first entries of the `next` log are taken as
durable and skipped. A state ahead of the ledger, or a missing state with a non-empty
ledger, is an `InputError`. With no state and an empty ledger the logs present at the start
are read from the end of their live file (``start_at="end"``) or from their oldest backup
(``"beginning"``); logs that appear later are read from their start.

The joiner's time window uses the entries' own times: a held trace is let out when an entry
of the log more than the window later arrives, or when the log is idle and the wall clock
is past the window. Replaying after a restart gives the same entries as long as the
runtime's timestamps follow the wall clock (they do: it stamps lines as it writes them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import msgspec

from logwarden.errors import InputError
from logwarden.normalize.container_log import FORMAT, envelope
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._pod_files import PodFiles
from logwarden.sources._pod_log import LogState, PodLog
from logwarden.sources._position import load_state, save_state, state_path
from logwarden.sources.base import require_at_least_one, require_positive, require_start_at

__all__ = ["ContainerLogsSource"]

_KIND = "container_logs"


class _State(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    version: int = 1
    seq: int
    next: str | None = None
    logs: list[LogState] = msgspec.field(default_factory=list)


class ContainerLogsSource:
    """Follows the container logs under `root` (see the module doc).

    Counters for metrics: `events` (records emitted and durable), `rejected` (malformed
    lines), `bytes_read`, `rotations_seen`, `last_event_ns` (receive time of the newest
    record), `gaps` (reported possible loss), `logs` (container logs followed now).
    """

    def __init__(
        self,
        source_id: str,
        root: str,
        state_dir: Path,
        rejects: Rejects,
        *,
        include_namespaces: list[str] | None = None,
        exclude_namespaces: list[str] | None = None,
        multiline: bool = True,
        poll_interval_secs: float = 0.5,
        batch_events: int = 1024,
        start_at: str = "end",
    ) -> None:
        require_positive("poll_interval_secs", poll_interval_secs)
        require_at_least_one("batch_events", batch_events)
        require_start_at(start_at)
        self.source_id = source_id
        self.root = root
        self.state_file = state_path(state_dir, _KIND, source_id)
        self.rejects = rejects
        self.poll_interval_secs = poll_interval_secs
        self.batch_events = batch_events
        self.start_at = start_at
        self.events = 0
        self.last_event_ns = 0
        self._files = PodFiles(
            root,
            rejects,
            include_namespaces=frozenset(include_namespaces or ()),
            exclude_namespaces=frozenset(exclude_namespaces or ()),
            multiline=multiline,
            poll_interval_secs=poll_interval_secs,
            batch_events=batch_events,
        )
        self._seq = 0
        self._next: str | None = None
        self._last = ""

    @property
    def logs(self) -> int:
        return len(self._files.logs)

    @property
    def rejected(self) -> int:
        """Malformed lines (counted where the files are read)."""
        return self._files.rejected

    @rejected.setter
    def rejected(self, value: int) -> None:
        self._files.rejected = value

    @property
    def bytes_read(self) -> int:
        return self._files.bytes_read

    @property
    def rotations_seen(self) -> int:
        return self._files.rotations_seen

    @property
    def gaps(self) -> int:
        return self._files.gaps

    def run(
        self, emit: Callable[[list[Record]], None], stop: threading.Event, resume_seq: int
    ) -> None:
        """Emit batches of records until `stop` is set; `resume_seq` is the last seq of this
        source durable in the ledger (0 if none). Raises InputError when the saved state and
        the ledger disagree, or a file cannot be read."""
        try:
            self._resume(resume_seq)
            while not stop.is_set():
                if not self._step(emit):
                    stop.wait(self.poll_interval_secs)
        except OSError as exc:
            raise InputError(f"cannot read {exc.filename or self.root}: {exc.strerror}") from exc
        finally:
            self._files.close()

    # --- start ------------------------------------------------------------------------------

    def _resume(self, resume_seq: int) -> None:
        state = self._load()
        if state is None:
            if resume_seq:
                raise InputError(
                    f"the ledger holds {resume_seq} records of source '{self.source_id}' but "
                    f"its state file {self.state_file} is missing: cannot tell where to "
                    "continue without repeating or skipping lines; restore the state file"
                )
            self._files.discover(at_end=self.start_at == "end")
            self._save()
            return
        if state.seq > resume_seq:
            raise InputError(
                f"the state file {self.state_file} says records up to {state.seq} of source "
                f"'{self.source_id}' are stored, but the ledger holds only {resume_seq}: "
                "records believed durable are missing from the ledger (restored from an "
                "older copy?); refusing to skip or repeat them"
            )
        lag = resume_seq - state.seq
        if lag and state.next not in {s.log for s in state.logs}:
            raise InputError(
                f"the ledger holds {lag} records of source '{self.source_id}' after those "
                f"its state file {self.state_file} accounts for, and the state does not say "
                "which container log they came from; restore a matching state file"
            )
        self._seq = resume_seq
        self._next = state.next
        for saved in state.logs:
            if saved.log == state.next:
                saved.skip += lag
            self._files.restore(saved)
        self._files.discover(at_end=False)

    def _load(self) -> _State | None:
        return load_state(self.state_file, _State)

    # --- reading ----------------------------------------------------------------------------

    def _step(self, emit: Callable[[list[Record]], None]) -> bool:
        """Emit one batch if there is one; False when there is nothing to do until the
        next poll."""
        log = self._ready()
        busy = False
        if log is None:
            busy = self._files.poll()
            log = self._ready()
            if log is None:
                return busy
        if self._next != log.key:
            self._save(log.key)
        self._emit(log, emit)
        nxt = self._ready()
        if nxt is None:
            self._files.poll()
            nxt = self._ready()
        self._save(None if nxt is None else nxt.key)
        return True

    def _ready(self) -> PodLog | None:
        """The next log with entries waiting, round robin after the last one emitted."""
        logs = list(self._files.logs.values())
        keys = [log.key for log in logs]
        start = keys.index(self._last) + 1 if self._last in keys else 0
        for log in logs[start:] + logs[:start]:
            if log.outbox:
                return log
        return None

    def _emit(self, log: PodLog, emit: Callable[[list[Record]], None]) -> None:
        count = min(self.batch_events, len(log.outbox))
        records: list[Record] = []
        for i in range(count):
            entry, _, received = log.outbox[i]
            at = log.at[entry.first_line]
            raw = envelope(entry, log.podref, at.file.path)
            view = FORMAT.decode(raw)
            record = Record(
                FORMAT.source,
                self.source_id,
                self._seq + i + 1,
                at.line,
                received,
                FORMAT.time_ns(view),
                raw,
                view,
            )
            records.append(record)
        emit(records)
        for _ in range(count):
            log.forget(log.outbox.popleft()[1])
        self._seq += count
        self._last = log.key
        self.events += count
        self.last_event_ns = records[-1].received_ns

    def _save(self, nxt: str | None = None) -> None:
        """Save where every log stands (after `emit` returned), and the next batch's log."""
        logs = [s for log in self._files.logs.values() if (s := log.state()) is not None]
        state = _State(seq=self._seq, next=nxt, logs=logs)
        save_state(self.state_file, state)
        self._next = nxt
