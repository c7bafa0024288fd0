"""Log files read once: files, directories in time order, gzip, and stdin.

This is the source behind `logwarden detect` and `ledger import`. It frames input into
units (lines, or one JSON document per file when the file holds a pretty-printed EventList
or array; formats that are not a record per line are framed by `_framing`), hands each
unit to the format module, and emits one Record per event.
Units the format rejects are reported through `Rejects` as ``file:line: reason``.

Directories are walked recursively, hidden files skipped, and files listed oldest first: a
rotated kube-apiserver log carries its rotation time in its name
(``audit-2024-05-17T08-00-00.000.log``, optionally ``.gz``), any other file counts by its
modification time, so the active ``audit.log`` comes last.

Several inputs are merged in event-time order (`_merge`): each regular file is opened when
the merge reaches its first event, so the audit logs of several kube-apiservers (an HA
control plane) are read interleaved, as correlation needs them, and rotated logs one
after another. Stdin, pipes, and files whose first line is not one event are opened at
once, in the order given.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import stat
import sys
import threading
import time
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from logwarden.normalize.base import Format, MalformedInput
from logwarden.normalize.k8s_audit import SOURCE as K8S_AUDIT
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources._framing import FRAMERS, Framer
from logwarden.sources._logfiles import Gunzip, event_items, gunzipped, rotation_time
from logwarden.sources._merge import merge

__all__ = ["STDIN", "FileSource", "Input", "ordered_files"]

#: The path that means standard input.
STDIN = "-"

_BATCH_BYTES = 1 << 20
#: records of a framed format read between pauses (see `_merge`)
_FRAMED_BATCH = 4096
#: how far `_first_time` looks for the first event: lines, and bytes of one line
_PEEK_LINES = 16
_PEEK_BYTES = 1 << 16


@dataclass(frozen=True)
class Input:
    """One file to read (or stdin), with its size for progress."""

    path: str
    size: int

    @property
    def name(self) -> str:
        return "<stdin>" if self.path == STDIN else self.path


def ordered_files(directory: str) -> list[str]:
    """Regular, non-hidden files under `directory`, oldest first (see module doc)."""
    found: list[tuple[float, str]] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                continue
            when = rotation_time(name)
            if when is None:
                when = os.stat(path).st_mtime
            found.append((when, path))
    found.sort()
    return [path for _, path in found]


class FileSource:
    """Reads the given paths once and emits their events as Records (a `sources.base.Source`).

    It reads each input once from the start and keeps no position: it serves offline
    reading (`detect`, `ledger import`); tailing a live log is another source's job.
    """

    def __init__(self, paths: Sequence[str], fmt: Format, rejects: Rejects) -> None:
        self.fmt = fmt
        self.rejects = rejects
        self.inputs: list[Input] = []
        #: files that could not be opened or read, with the reason
        self.unreadable: list[tuple[str, str]] = []
        self.events = 0
        self.bytes_read = 0
        for path in paths:
            self._add(path)

    @property
    def total_bytes(self) -> int:
        return sum(i.size for i in self.inputs)

    def _add(self, path: str) -> None:
        if path == STDIN:
            self.inputs.append(Input(STDIN, 0))
        elif os.path.isdir(path):
            for file in ordered_files(path):
                self.inputs.append(Input(file, _size(file)))
        elif os.path.exists(path):
            self.inputs.append(Input(path, _size(path)))
        else:
            self._unreadable(path, "no such file or directory")

    def _cut_off(self, stream: IO[bytes], name: str, after: str) -> None:
        """Report a gzip stream that ended before its end (what was read is kept)."""
        raw = getattr(stream, "raw", None)
        if isinstance(raw, Gunzip) and raw.truncated:
            self._unreadable(
                name, f"read failed after {after}: compressed data ends early (cut off)"
            )

    def _unreadable(self, path: str, reason: str) -> None:
        self.unreadable.append((path, reason))
        self.rejects.report(path, f"cannot read: {reason}")

    def run(
        self,
        emit: Callable[[Record], object],
        stop: threading.Event | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> None:
        """Emit every event of every input (several merged in event-time order, see the
        module doc); `progress(bytes)` is called now and then.

        Only reading is guarded: an input that cannot be opened or read further is reported
        and skipped, while an exception raised by `emit` propagates unchanged.
        """
        reading: dict[int, Callable[[], int]] = {}  # per input open: its position
        tick: Callable[[], None] | None = None
        if progress is not None:
            report = progress

            def tick() -> None:
                report(self.bytes_read + sum(position() for position in reading.values()))

        def read(order: int, inp: Input, emit: Callable[[Record], object]) -> Iterator[None]:
            """Read one input into `emit`, pausing after each batch."""
            if stop is not None and stop.is_set():
                return
            with contextlib.ExitStack() as stack:
                try:
                    stream, position = _open(inp.path, stack)
                except OSError as exc:
                    self._unreadable(inp.name, exc.strerror or str(exc))
                    return
                reading[order] = position
                yield from self._read(stream, inp.name, emit, stop, tick)
            del reading[order]
            self.bytes_read += inp.size
            if tick is not None:
                tick()

        def opener(order: int, inp: Input) -> Callable[[], Generator[Record, None, None]]:
            def records() -> Generator[Record, None, None]:
                held: list[Record] = []
                for _batch in read(order, inp, held.append):
                    yield from held
                    held.clear()
                yield from held

            return records

        if len(self.inputs) == 1:
            for _batch in read(0, self.inputs[0], emit):
                pass
            return
        if stop is not None and stop.is_set():
            return
        inputs = [(self._first_time(inp), opener(i, inp)) for i, inp in enumerate(self.inputs)]
        merge(inputs, emit)

    def _line_decoder(self) -> Callable[[bytes], Any]:
        """The format's decode of one line as read (JSON takes a line with its newline;
        text formats do not)."""
        if self.fmt.source == K8S_AUDIT:
            return self.fmt.decode
        return functools.partial(_stripped, self.fmt.decode)

    def _first_time(self, inp: Input) -> int | None:
        """The time of the first event of a regular file whose first line is one event
        (None otherwise: stdin and pipes cannot be read twice)."""
        if inp.path == STDIN or self.fmt.source in FRAMERS:
            return None
        try:
            if not stat.S_ISREG(os.stat(inp.path).st_mode):
                return None
            with contextlib.ExitStack() as stack:
                stream, _position = _open(inp.path, stack)
                for _ in range(_PEEK_LINES):
                    line = stream.readline(_PEEK_BYTES)
                    if not line.endswith(b"\n"):
                        return None  # the end, or longer than a peek: the reading will tell
                    if line.strip():
                        view = self._line_decoder()(line)
                        return None if view.__class__ is list else self.fmt.time_ns(view)
        except (OSError, EOFError, zlib.error, MalformedInput):
            return None  # the reading will report it
        return None

    def _batches(
        self, stream: IO[bytes], name: str, emit: Callable[[Record], object]
    ) -> Iterator[list[bytes]]:
        """The input's lines in batches, then a report if a gzip stream was cut off."""
        read = yield from self._lines(stream, name, emit)
        self._cut_off(stream, name, f"line {read}")

    def _lines(
        self, stream: IO[bytes], name: str, emit: Callable[[Record], object]
    ) -> Generator[list[bytes], None, int]:
        """The input's lines in batches (returning how many); a pretty-printed document is
        emitted whole instead.

        A file whose first line is the start of a JSON value but not a whole one may be a
        pretty-printed EventList, array or Event: it is decoded as one document, and read
        line by line (reporting each bad line) only if that fails. Read errors end the
        input with a report naming the last line read.
        """
        lines_read = 0
        whole: bytes | None = None
        try:
            head: list[bytes] = []
            for line in stream:
                head.append(line)
                if line.strip():
                    break
            if head:
                try:
                    self.fmt.decode(head[-1])
                except MalformedInput as exc:
                    if exc.truncated:
                        whole = b"".join(head) + stream.read()
        except (OSError, EOFError, zlib.error) as exc:
            self._unreadable(name, f"read failed: {_reason(exc)}")
            return 0
        if whole is not None:
            if self._document(whole, name, emit) >= 0:
                return whole.count(b"\n") + 1
            stream = io.BytesIO(whole)
            head = []
        try:
            if head:
                lines_read += len(head)
                yield head
            while True:
                batch = stream.readlines(_BATCH_BYTES)
                if not batch:
                    return lines_read
                lines_read += len(batch)
                yield batch
        except (OSError, EOFError, zlib.error) as exc:
            self._unreadable(name, f"read failed after line {lines_read}: {_reason(exc)}")
        return lines_read

    def _read(
        self,
        stream: IO[bytes],
        name: str,
        emit: Callable[[Record], object],
        stop: threading.Event | None,
        tick: Callable[[], object] | None,
    ) -> Iterator[None]:
        framer = FRAMERS.get(self.fmt.source)
        if framer is not None:
            yield from self._framed(framer, stream, name, emit)
            return
        fmt = self.fmt
        decode = self._line_decoder()

        time_ns = fmt.time_ns
        source = fmt.source
        now = time.time_ns
        report = self.rejects.report
        seq = 0
        lineno = 0
        for batch in self._batches(stream, name, emit):
            if tick is not None:
                tick()
            if stop is not None and stop.is_set():
                break
            received = now()  # one reading per batch: the lines of a batch arrive together
            for line in batch:
                lineno += 1
                try:
                    view = decode(line)
                    if view.__class__ is not list:
                        when = time_ns(view)
                        seq += 1
                        emit(Record(source, name, seq, lineno, received, when, line.rstrip(), view))
                        continue
                except MalformedInput as exc:
                    raw = line.rstrip()
                    if raw:
                        report(f"{name}:{lineno}", str(exc), raw)
                    continue
                seq = self._items(view, name, lineno, seq, emit)
            yield
        self.events += seq

    def _framed(
        self, framer: Framer, stream: IO[bytes], name: str, emit: Callable[[Record], object]
    ) -> Iterator[None]:
        """A file of a format that is not a record per line (`_framing`). Read errors end
        the file with a report naming how far it got."""
        fmt, report = self.fmt, self.rejects.report
        received = time.time_ns()
        seq = 0
        try:
            for line, unit in framer(stream, name):
                where = f"{name}:{line}" if line else name
                if isinstance(unit, MalformedInput):
                    report(where, str(unit), b"")
                    continue
                try:
                    view = fmt.decode(unit)
                    when = fmt.time_ns(view)
                except MalformedInput as exc:
                    report(where, str(exc), unit)
                    continue
                seq += 1
                emit(Record(fmt.source, name, seq, line, received, when, unit, view))
                if seq % _FRAMED_BATCH == 0:
                    yield
        except (OSError, EOFError, zlib.error) as exc:
            self._unreadable(name, f"read failed after {seq} records: {_reason(exc)}")
        else:
            self._cut_off(stream, name, f"{seq} records")
        self.events += seq

    def _items(
        self,
        items: list[tuple[bytes, object]],
        name: str,
        lineno: int,
        seq: int,
        emit: Callable[[Record], object],
    ) -> int:
        received = time.time_ns()
        source = self.fmt.source
        for raw, view, when in event_items(
            self.fmt, items, f"{name}:{lineno}", self.rejects.report
        ):
            seq += 1
            emit(Record(source, name, seq, lineno, received, when, raw, view))
        return seq

    def _document(self, data: bytes, name: str, emit: Callable[[Record], object]) -> int:
        """Read `data` as one JSON document; return records emitted, or -1 if it is not one."""
        try:
            view = self.fmt.decode(data)
        except MalformedInput:
            return -1
        if view.__class__ is list:
            seq = self._items(view, name, 1, 0, emit)
        else:
            seq = self._items([(data.strip(), view)], name, 1, 0, emit)
        self.events += seq
        return seq


def _stripped(decode: Callable[[bytes], Any], line: bytes) -> Any:
    return decode(line.rstrip(b"\r\n"))


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _open(path: str, stack: contextlib.ExitStack) -> tuple[IO[bytes], Callable[[], int]]:
    """Open a path or stdin, gunzipping when it starts with the gzip magic bytes.

    Returns the stream of lines and a function giving the position in the underlying
    (compressed) file, for progress.
    """
    raw: io.BufferedReader
    if path == STDIN:
        raw = sys.stdin.buffer  # type: ignore[assignment]
        position: Callable[[], int] = lambda: 0  # noqa: E731
    else:
        raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - closed by the stack
        position = raw.tell
    return gunzipped(raw, 1 << 20), position
