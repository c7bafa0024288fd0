"""One container log as `container_logs` follows it, and the record of where to read it again.

A `PodLog` holds the file being read, the reassembly (`normalize.container_log.Reassembler`)
and joining (`MultilineJoiner`) of its lines into entries, and which lines belong to
entries not emitted yet (messages whose chunks are pending, traces the joiner holds,
complete entries waiting for their batch in `outbox`). Its `state()` is a `LogState`: the
file (by identity), byte offset and line number of the first line of the oldest entry not
emitted yet, or of the end of what was read; and which of the lines read since to feed
again after a restart (`refeed`). How the source saves and uses it is in the module doc of
`container_logs`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple

import msgspec

from logwarden.normalize.container_log import (
    Entry,
    LineError,
    MultilineJoiner,
    PodRef,
    Reassembler,
)
from logwarden.sources._tail import Grace, TailFile

__all__ = ["LogState", "PodLog", "Report"]

#: How a `PodLog` reports a malformed line: where (``path:line``), why, and its bytes.
Report = Callable[[str, str, bytes | None], None]


class LogState(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
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


class _Stream(msgspec.Struct):
    stream: str


_stream_decoder = msgspec.json.Decoder(_Stream)


class _At(NamedTuple):
    """Where a line not emitted yet lies: its file, byte offset and line number."""

    file: TailFile
    offset: int
    line: int


class PodLog:
    """One container's log: the file being read, the reassembly and joining state, and
    which lines belong to entries not emitted yet. Lines are numbered `g` from 1 in the
    order read since this run opened the log."""

    def __init__(
        self, key: str, live: str, podref: PodRef, multiline: bool, poll_interval_secs: float
    ) -> None:
        self.key = key
        self.live = live
        self.podref = podref
        self.file: TailFile | None = None
        #: how long a file renamed away is still read (the runtime reopens the log later)
        self.grace = Grace(poll_interval_secs)
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

    def state(self) -> LogState | None:
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
) -> LogState:
    return LogState(
        log=key,
        **file.identity(),
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
