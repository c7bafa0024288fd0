"""Container and application logs: follows every container's log under /var/log/pods.

The kubelet keeps each container's log in ``<root>/<namespace>_<pod>_<uid>/<container>/
<restart>.log``, rotates it to ``<restart>.log.<YYYYMMDD-HHMMSS>`` and later gzips that
(``....gz``). Each such *log* (a live file and its backups) is followed on its own: new
pods and containers are found at every poll, a log whose files are all gone is finished
(its pending messages come out marked partial) and forgotten. Pods of namespaces not
included, or excluded, are not read. `_kubelet_files` finds the logs and their files;
`_pod_log` holds one log as it is followed, and the record of where to read it again.

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

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from logwarden.errors import InputError
from logwarden.normalize.container_log import FORMAT, envelope, parse_path
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._kubelet_files import candidates, log_keys
from logwarden.sources._pod_log import LogState, PodLog
from logwarden.sources._position import load_state, save_state, state_path
from logwarden.sources._rotation import MISSES, after_ns, gone_reason, locate, newer_files
from logwarden.sources._tail import ShortFile, TailFile, open_at, skip_to_end
from logwarden.sources.base import require_at_least_one, require_positive, require_start_at

__all__ = ["ContainerLogsSource"]

_KIND = "container_logs"
#: bytes of lines looked at per log and pump at most, so that `stop` is seen in a long run
_PUMP_BYTES = 8 << 20


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
        self.include_namespaces = frozenset(include_namespaces or ())
        self.exclude_namespaces = frozenset(exclude_namespaces or ())
        self.multiline = multiline
        self.poll_interval_secs = poll_interval_secs
        self.batch_events = batch_events
        self.start_at = start_at
        self.events = 0
        self.rejected = 0
        self.bytes_read = 0
        self.rotations_seen = 0
        self.last_event_ns = 0
        self.gaps = 0
        self._logs: dict[str, PodLog] = {}
        self._seq = 0
        self._next: str | None = None
        self._last = ""
        #: files that could not be opened (permission denied), reported once each
        self._denied: set[str] = set()

    @property
    def logs(self) -> int:
        return len(self._logs)

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
            for log in self._logs.values():
                if log.file is not None:
                    log.file.close()
            self._logs.clear()

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
            self._discover(at_end=self.start_at == "end")
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
            self._reopen(saved)
        self._discover(at_end=False)

    def _load(self) -> _State | None:
        return load_state(self.state_file, _State)

    def _reopen(self, saved: LogState) -> None:
        """Open a saved log where it stood and feed again its lines not emitted yet."""
        log = self._new_log(saved.log)
        if log is None:
            return  # excluded now
        where = f"{saved.path}:{saved.line}"
        for attempt in range(MISSES + 1):
            cands = candidates(log.live)
            idx = locate(cands, saved.device, saved.inode, saved.head_len, saved.head_sha256)
            if idx is None:
                if attempt < MISSES:
                    time.sleep(0.01)  # renamed or compressed while listing: look again
                continue
            cand = cands[idx]
            try:
                log.file = open_at(cand.path, after_ns(cand), saved.offset, saved.line)
            except FileNotFoundError:
                continue  # compressed meanwhile: look again
            except ShortFile:
                reason = "holds fewer bytes than read before: reading it again from its start"
                self._gap(where, reason + _unsent(saved))
                log.file = TailFile.open(cand.path, after_ns(cand))
                self._logs[log.key] = log
                return
            log.replay_span, log.skip = saved.span, saved.skip
            log.replay = {k + 1 for k in saved.refeed}
            self._logs[log.key] = log
            self._pump(log, upto=saved.span)
            if log.g < saved.span:
                reason = "ends before the lines read before: lines after this one may be lost"
                self._gap(where, reason + _unsent(saved))
            log.replay_span, log.replay = 0, set()
            return
        newer = [c for c in candidates(log.live) if c.key_ns >= saved.after_ns]
        if not newer:
            reason = "the files of this log are gone: lines after this one may be lost"
            self._gap(where, reason + _unsent(saved))
            return
        reason = (
            "the file of the saved position is gone: lines after this one may be lost; "
            "continuing with the oldest newer file"
        )
        self._gap(where, reason + _unsent(saved))
        log.file = TailFile.open(newer[0].path, after_ns(newer[0]))
        self._logs[log.key] = log

    # --- logs -------------------------------------------------------------------------------

    def _new_log(self, key: str) -> PodLog | None:
        podref = parse_path("pods/" + key)
        if podref is None or not self._wanted(podref.namespace):
            return None
        return PodLog(
            key, os.path.join(self.root, key), podref, self.multiline, self.poll_interval_secs
        )

    def _wanted(self, namespace: str) -> bool:
        if self.include_namespaces and namespace not in self.include_namespaces:
            return False
        return namespace not in self.exclude_namespaces

    def _discover(self, *, at_end: bool) -> None:
        """Start following the logs under the root that are not followed yet."""
        for key in log_keys(self.root):
            if key in self._logs or not self._wanted(key.split("_", 1)[0]):
                continue
            log = self._new_log(key)
            if log is None:
                continue
            cands = candidates(log.live)
            if not cands:
                continue
            cand = cands[-1] if at_end else cands[0]
            try:
                log.file = TailFile.open(cand.path, after_ns(cand))
            except FileNotFoundError:
                continue  # rotated or removed meanwhile: at the next poll
            except PermissionError:
                self._unreadable(cand.path)
                continue  # the other logs go on; this one is tried again at the next poll
            self._denied.discard(cand.path)
            if at_end:
                self.bytes_read += skip_to_end(log.file)
            self._logs[key] = log

    # --- reading ----------------------------------------------------------------------------

    def _step(self, emit: Callable[[list[Record]], None]) -> bool:
        """Emit one batch if there is one; False when there is nothing to do until the
        next poll."""
        log = self._ready()
        busy = False
        if log is None:
            busy = self._poll()
            log = self._ready()
            if log is None:
                return busy
        if self._next != log.key:
            self._save(log.key)
        self._emit(log, emit)
        nxt = self._ready()
        if nxt is None:
            self._poll()
            nxt = self._ready()
        self._save(None if nxt is None else nxt.key)
        return True

    def _ready(self) -> PodLog | None:
        """The next log with entries waiting, round robin after the last one emitted."""
        logs = list(self._logs.values())
        keys = [log.key for log in logs]
        start = keys.index(self._last) + 1 if self._last in keys else 0
        for log in logs[start:] + logs[:start]:
            if log.outbox:
                return log
        return None

    def _poll(self) -> bool:
        """Find new logs, read what every log holds; True if anything was read."""
        self._discover(at_end=False)
        busy = False
        for log in list(self._logs.values()):
            if self._pump(log):
                busy = True
            elif not log.finished:
                log.idle(time.time_ns())
            if log.finished and not log.outbox:
                del self._logs[log.key]
        return busy

    def _pump(self, log: PodLog, *, upto: int = 0) -> bool:
        """Read lines of `log` until a batch is waiting or nothing more is there (or line
        `upto` is read); True if anything was read."""
        file = log.file
        busy = False
        looked = 0
        while file is not None:
            if upto:  # feeding again what was read before the restart: all of it
                if log.g >= upto:
                    break
            elif len(log.outbox) >= self.batch_events or looked >= _PUMP_BYTES:
                break
            start = file.offset
            line = file.take_line()
            if line is not None:
                looked += len(line) + 1
                log.take(line, file, start, self._report)
                continue
            n = file.fill()
            if n:
                self.bytes_read += n
                log.received = time.time_ns()
                busy = True
                continue
            if not self._switch(log, file):
                break
            busy = True
            file = log.file
        return busy

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
        logs = [s for log in self._logs.values() if (s := log.state()) is not None]
        state = _State(seq=self._seq, next=nxt, logs=logs)
        save_state(self.state_file, state)
        self._next = nxt

    # --- rotation ---------------------------------------------------------------------------

    def _switch(self, log: PodLog, file: TailFile) -> bool:
        """At the end of `file`: follow a rotation; finish a log whose files are gone;
        False if there is nothing new."""
        if not file.compressed and file.is_at(log.live):
            if not file.truncated():
                return False
            reason = "truncated in place: reading it again from its start; lines after this "
            self._gap(f"{file.path}:{file.line}", reason + "one may be lost")
            file.rewind()
            return True
        n = file.fill()  # what was written before the rename
        if n:
            self.bytes_read += n
            return True
        if not log.grace.over(file):
            return False  # the runtime may still append to it until it reopens the log
        cands = candidates(log.live)
        newer, log.misses = newer_files(cands, file, log.misses)
        if newer is None:
            return False
        if not cands:  # deleted, with every file of the log
            self._close(log, file)
            log.file = None
            log.finish()
            return True
        if not newer:
            return False
        try:
            nxt = TailFile.open(newer[0].path, after_ns(newer[0]))
        except FileNotFoundError:
            return False  # compressed meanwhile: look again at the next poll
        except PermissionError:
            self._unreadable(newer[0].path)
            return False  # tried again at the next poll
        self._denied.discard(newer[0].path)
        if log.misses >= MISSES:
            self._gap(f"{file.path}:{file.line}", gone_reason(nxt.path))
        log.misses = 0
        log.grace.clear()
        self._close(log, file)
        log.file = nxt
        self.rotations_seen += 1
        return True

    def _close(self, log: PodLog, file: TailFile) -> None:
        partial = file.partial()
        if partial.strip():
            self._report(
                f"{file.path}:{file.line + 1}",
                "incomplete last line: the file was rotated or removed before its newline "
                "was written",
                partial,
            )
        file.close()

    # --- reports ----------------------------------------------------------------------------

    def _report(self, where: str, reason: str, raw: bytes | None) -> None:
        self.rejected += 1
        self.rejects.report(where, reason, raw)

    def _gap(self, where: str, reason: str) -> None:
        self.gaps += 1
        self.rejects.report(where, reason)

    def _unreadable(self, path: str) -> None:
        """Report once that `path` cannot be opened (permission denied); it is tried again
        at every poll, and read from where it stands once it can be opened."""
        if path in self._denied:
            return
        self._denied.add(path)
        self._gap(
            path,
            "cannot open it: permission denied; the other logs go on, this one is tried "
            "again at every poll (its lines are lost if it is rotated away meanwhile)",
        )


def _unsent(saved: LogState) -> str:
    if not saved.refeed and not saved.skip:
        return ""
    return (
        f" (including {len(saved.refeed)} lines of entries not emitted yet"
        + (f" and {saved.skip} records the ledger holds" if saved.skip else "")
        + ")"
    )
