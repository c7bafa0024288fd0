"""Container and application logs: follows every container's log under /var/log/pods.

The kubelet keeps each container's log in ``<root>/<namespace>_<pod>_<uid>/<container>/
<restart>.log``, rotates it to ``<restart>.log.<YYYYMMDD-HHMMSS>`` and later gzips that
(``....gz``). Each such *log* (a live file and its backups) is followed on its own: new
pods and containers are found at every poll, a log whose files are all gone is finished
(its pending messages come out marked partial) and forgotten. Pods of namespaces not
included, or excluded, are not read.

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
import re
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import msgspec

from logwarden.errors import InputError
from logwarden.normalize.container_log import (
    FORMAT,
    Entry,
    LineError,
    MultilineJoiner,
    PodRef,
    Reassembler,
    envelope,
    parse_path,
)
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._position import load_state, save_state, state_path
from logwarden.sources._rotation import (
    LIVE_KEY,
    MISSES,
    Candidate,
    after_ns,
    locate,
    newer_files,
)
from logwarden.sources._tail import ShortFile, TailFile

__all__ = ["ContainerLogsSource"]

_KIND = "container_logs"
_LIVE = re.compile(r"(0|[1-9][0-9]{0,8})\.log")
_BACKUP = re.compile(r"(0|[1-9][0-9]{0,8})\.log\.([0-9]{8}-[0-9]{6})(\.gz)?")
#: bytes of lines looked at per log and pump at most, so that `stop` is seen in a long run
_PUMP_BYTES = 8 << 20
#: how many times in a row a log's files must be missing before it counts as deleted
_LIST_TRIES = 5

Report = Callable[[str, str, bytes | None], None]


class _LogState(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where to read one log again (see the module doc)."""

    log: str  # <pod dir>/<container>/<restart>.log, relative to the root
    path: str
    device: int
    inode: int
    head_len: int
    head_sha256: str
    after_ns: int
    offset: int
    line: int
    span: int = 0
    refeed: list[int] = msgspec.field(default_factory=list)
    skip: int = 0


class _State(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    version: int = 1
    seq: int
    next: str | None = None
    logs: list[_LogState] = msgspec.field(default_factory=list)


class _Stream(msgspec.Struct):
    stream: str


_stream_decoder = msgspec.json.Decoder(_Stream)


class _At(NamedTuple):
    """Where a line not emitted yet lies: its file, byte offset and line number."""

    file: TailFile
    offset: int
    line: int


class _Log:
    """One container's log: the file being read, the reassembly and joining state, and
    which lines belong to entries not emitted yet. Lines are numbered `g` from 1 in the
    order read since this run opened the log."""

    def __init__(self, key: str, live: str, podref: PodRef, multiline: bool) -> None:
        self.key = key
        self.live = live
        self.podref = podref
        self.file: TailFile | None = None
        self.reassembler = Reassembler()
        self.joiner = MultilineJoiner(enabled=multiline)
        self.g = 0
        self.at: dict[int, _At] = {}
        #: lines of the messages the reassembler holds, per stream
        self.partial: dict[str, list[int]] = {}
        #: entries pushed into the joiner and not out yet: (first line, lines), per stream
        self.held: dict[str, deque[tuple[int, list[int]]]] = {}
        #: complete entries waiting for their batch: (entry, its lines, receive time)
        self.outbox: deque[tuple[Entry, list[int], int]] = deque()
        self.replay_span = 0
        self.replay: set[int] = set()
        #: entries already durable (a crash before the state was saved) still to skip
        self.skip = 0
        self.received = time.time_ns()  # what a reopened file holds was read now
        self.misses = 0
        self.finished = False

    def take(self, data: bytes, file: TailFile, start: int, report: Report) -> None:
        """Handle the line `data` just taken from `file` at byte offset `start`."""
        self.g = g = self.g + 1
        if g <= self.replay_span and g not in self.replay:
            return  # emitted or rejected before the restart
        self.reassembler.line = g - 1
        item = self.reassembler.feed(data)
        if isinstance(item, LineError):
            if not self.skip:
                report(f"{file.path}:{file.line}", item.reason, item.data)
            return
        self.at[g] = _At(file, start, file.line)
        if item is None:
            self.partial.setdefault(_stream_of(data, self.reassembler), []).append(g)
            return
        lines = self.partial.pop(item.stream, [])
        lines.append(g)
        self._join(item, lines)

    def _join(self, entry: Entry, lines: list[int]) -> None:
        self._out(self.joiner.expire(entry.time_ns))
        self.held.setdefault(entry.stream, deque()).append((entry.first_line, lines))
        self._out(self.joiner.push(entry))

    def _out(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            queue = self.held[entry.stream]
            lines: list[int] = []
            while queue and queue[0][0] <= entry.last_line:
                lines.extend(queue.popleft()[1])
            if self.skip:
                self.skip -= 1
                self.forget(lines)
            else:
                self.outbox.append((entry, lines, self.received))

    def idle(self, now_ns: int) -> None:
        """Let out the traces whose window has passed (the log has nothing new)."""
        self._out(self.joiner.expire(now_ns))

    def finish(self) -> None:
        """The log's files are gone: let out everything pending, marked partial."""
        for entry in self.reassembler.flush():
            self._join(entry, self.partial.pop(entry.stream, []))
        self._out(self.joiner.flush())
        self.finished = True

    def forget(self, lines: list[int]) -> None:
        for g in lines:
            self.at.pop(g, None)

    def unsent(self) -> list[int]:
        """The lines of the entries not emitted yet, in order."""
        out = [g for lines in self.partial.values() for g in lines]
        out += [g for queue in self.held.values() for _, lines in queue for g in lines]
        out += [g for _, lines, _ in self.outbox for g in lines]
        out.sort()
        return out

    def state(self) -> _LogState | None:
        """Where to read this log again, None if it was never opened."""
        unsent = self.unsent()
        if unsent:
            first = unsent[0]
            file, offset, line = self.at[first]
            refeed = [g - first for g in unsent]
            return _state(self.key, file, offset, line - 1, self.g - first + 1, refeed, self.skip)
        if self.file is None:
            return None
        return _state(self.key, self.file, self.file.offset, self.file.line, 0, [], self.skip)


def _state(
    key: str, file: TailFile, offset: int, line: int, span: int, refeed: list[int], skip: int
) -> _LogState:
    return _LogState(
        log=key,
        path=file.path,
        device=file.device,
        inode=file.inode,
        head_len=len(file.head),
        head_sha256=file.head_sha256,
        after_ns=file.after_ns,
        offset=offset,
        line=line,
        span=span,
        refeed=refeed,
        skip=skip,
    )


def _stream_of(data: bytes, reassembler: Reassembler) -> str:
    """The stream of a line the reassembler took as a partial chunk (so well formed)."""
    if reassembler.kind == "docker":
        return _stream_decoder.decode(data).stream
    return data.split(b" ", 3)[1].decode("ascii")


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
        if poll_interval_secs <= 0:
            raise ValueError(f"poll_interval_secs must be positive, not {poll_interval_secs}")
        if batch_events < 1:
            raise ValueError(f"batch_events must be at least 1, not {batch_events}")
        if start_at not in ("beginning", "end"):
            raise ValueError(f"start_at must be 'beginning' or 'end', not {start_at!r}")
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
        self._logs: dict[str, _Log] = {}
        self._seq = 0
        self._next: str | None = None
        self._last = ""

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

    def _reopen(self, saved: _LogState) -> None:
        """Open a saved log where it stood and feed again its lines not emitted yet."""
        log = self._new_log(saved.log)
        if log is None:
            return  # excluded now
        where = f"{saved.path}:{saved.line}"
        for attempt in range(MISSES + 1):
            cands = _candidates(log.live)
            idx = locate(cands, saved.device, saved.inode, saved.head_len, saved.head_sha256)
            if idx is None:
                if attempt < MISSES:
                    time.sleep(0.01)  # renamed or compressed while listing: look again
                continue
            cand = cands[idx]
            try:
                log.file = _open_at(cand.path, after_ns(cand), saved.offset, saved.line)
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
        newer = [c for c in _candidates(log.live) if c.key_ns >= saved.after_ns]
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

    def _new_log(self, key: str) -> _Log | None:
        podref = parse_path("pods/" + key)
        if podref is None or not self._wanted(podref.namespace):
            return None
        return _Log(key, os.path.join(self.root, key), podref, self.multiline)

    def _wanted(self, namespace: str) -> bool:
        if self.include_namespaces and namespace not in self.include_namespaces:
            return False
        return namespace not in self.exclude_namespaces

    def _discover(self, *, at_end: bool) -> None:
        """Start following the logs under the root that are not followed yet."""
        for key in _log_keys(self.root):
            if key in self._logs or not self._wanted(key.split("_", 1)[0]):
                continue
            log = self._new_log(key)
            if log is None:
                continue
            cands = _candidates(log.live)
            if not cands:
                continue
            cand = cands[-1] if at_end else cands[0]
            try:
                log.file = TailFile.open(cand.path, after_ns(cand))
            except FileNotFoundError:
                continue  # rotated or removed meanwhile: at the next poll
            if at_end:
                self.bytes_read += _skip_to_end(log.file)
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

    def _ready(self) -> _Log | None:
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

    def _pump(self, log: _Log, *, upto: int = 0) -> bool:
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

    def _emit(self, log: _Log, emit: Callable[[list[Record]], None]) -> None:
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

    def _switch(self, log: _Log, file: TailFile) -> bool:
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
        cands = _candidates(log.live)
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
        self._close(log, file)
        log.file = nxt
        self.rotations_seen += 1
        return True

    def _close(self, log: _Log, file: TailFile) -> None:
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


def _unsent(saved: _LogState) -> str:
    if not saved.refeed and not saved.skip:
        return ""
    return (
        f" (including {len(saved.refeed)} lines of entries not emitted yet"
        + (f" and {saved.skip} records the ledger holds" if saved.skip else "")
        + ")"
    )


def _log_keys(root: str) -> list[str]:
    """``<pod dir>/<container>/<restart>.log`` of every log under `root` (the live file
    may be missing between a rename and its reopening)."""
    keys: set[str] = set()
    for pod in _subdirs(root):
        for container in _subdirs(os.path.join(root, pod)):
            try:
                names = os.listdir(os.path.join(root, pod, container))
            except OSError:
                continue
            for name in names:
                m = _LIVE.fullmatch(name) or _BACKUP.fullmatch(name)
                if m is not None:
                    keys.add(f"{pod}/{container}/{m.group(1)}.log")
    return sorted(keys)


def _subdirs(path: str) -> list[str]:
    try:
        with os.scandir(path) as it:
            return sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def _candidates(live: str) -> list[Candidate]:
    """The backups of the log `live` (kubelet names), oldest first, then `live` if it
    exists. A backup that vanishes while listing makes the listing start again."""
    for attempt in range(_LIST_TRIES):
        found = _listing(live, partial=attempt == _LIST_TRIES - 1)
        if found is not None:
            return found
    return []


def _listing(live: str, *, partial: bool) -> list[Candidate] | None:
    directory, base = os.path.split(live)
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    found: dict[str, tuple[str, str]] = {}
    for name in names:
        m = _BACKUP.fullmatch(name)
        if m is None or f"{m.group(1)}.log" != base:
            continue
        plain = name.removesuffix(".gz")
        if plain not in found or name == plain:  # the plain file wins over a partial .gz
            found[plain] = (m.group(2), os.path.join(directory, name))
    out: list[Candidate] = []
    for stamp, path in sorted(found.values()):
        cand = _candidate(path, _stamp_ns(stamp))
        if cand is None and not partial:
            return None
        if cand is not None:
            out.append(cand)
    cand = _candidate(live, LIVE_KEY)
    if cand is not None:
        out.append(cand)
    return out


def _candidate(path: str, key_ns: int) -> Candidate | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return Candidate(path, st.st_dev, st.st_ino, st.st_size, key_ns)


def _stamp_ns(stamp: str) -> int:
    """The kubelet's rotation stamp (its local time) in ns since the epoch."""
    try:
        when = datetime.strptime(stamp, "%Y%m%d-%H%M%S")
    except ValueError:
        return 0
    return int(when.timestamp()) * 1_000_000_000


def _open_at(path: str, after_ns: int, offset: int, line: int) -> TailFile:
    """`path` opened just after its first `line` lines, which must end at byte `offset`;
    ShortFile if they do not. (Read from the start rather than `TailFile.open(offset=)`,
    which makes a wrong head for a plain file when the offset is below `HEAD_BYTES`.)"""
    file = TailFile.open(path, after_ns)
    try:
        while file.line < line and file.offset < offset:
            if file.take_line() is None and not file.fill():
                break
        if (file.line, file.offset) != (line, offset):
            raise ShortFile(f"{path}: its first {line} lines do not end at byte {offset}")
    except BaseException:
        file.close()
        raise
    return file


def _skip_to_end(file: TailFile) -> int:
    """Move past every complete line `file` holds now; return the bytes read."""
    read = 0
    while n := file.fill():
        read += n
        while file.take_line() is not None:
            pass
    return read
