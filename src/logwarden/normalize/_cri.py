"""CRI and Docker json-file log lines, and their reassembly into complete messages.

Line formats (`Reassembler`)
    CRI (containerd, CRI-O): ``<RFC 3339 time> <stdout|stderr> <tags> <chunk>``; the first
    ``:``-separated tag is ``P`` (partial: the message goes on in the next line of the same
    stream) or ``F`` (full: the message ends here); other first tags count as ``F``, as the
    kubelet reads them (forward compatible). An empty chunk may lack the space after the tag.
    Docker json-file: ``{"log": "...\\n", "stream": "stdout", "time": "..."}``; a `log`
    without the final newline is partial (Docker splits messages at 16 KiB).

    Quirks handled: chunks are joined as BYTES, so a chunk that ends inside a UTF-8
    character (vector's invalid-UTF-8 case) joins into the right character; partial
    chunks of stdout and stderr interleave and are kept apart per stream (as the kubelet
    reads them: the design doc's own example, which ends a stdout message with a stderr
    ``F`` line, gives two messages, stdout's pending to the end); a message is capped
    (1 MiB by default: the rest is dropped, the entry is marked truncated, cut at a
    character boundary); a file that ends on a partial chunk gives it on `flush()` marked
    partial; the kubelet's RFC3339Nano drops trailing zeros of the fraction (down to none),
    containerd may write a local UTC offset: both are read; `time` of Docker lines may go
    backwards across streams (kept as written); a malformed line gives a `LineError` with
    the line number and the reason, never an exception.

What cannot be recovered: bytes beyond the cap; where Docker split a character at 16 KiB
(Docker's encoder already wrote each half as U+FFFD); a partial message whose rest was
never written. Public through `normalize.container_log`.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from logwarden.normalize.base import MalformedInput
from logwarden.normalize.k8s_audit import parse_rfc3339_ns

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Entry",
    "Kind",
    "LineError",
    "Reassembler",
    "parse_time_ns",
]

#: The default cap on one message (reassembled, or joined by the multi-line joiner).
DEFAULT_MAX_BYTES = 1 << 20

Kind = Literal["cri", "docker"]


# --- time --------------------------------------------------------------------------------

_seconds: dict[str, int] = {}
_SCALE: list[int] = [10 ** (9 - n) for n in range(10)]


def parse_time_ns(text: str) -> int:
    """Nanoseconds since the epoch of a CRI or Docker time (RFC3339Nano: the fraction has
    0 to 9 digits, the zone is ``Z`` or an offset); raises MalformedInput.

    The common form (UTC with a fraction) takes a fast path with whole seconds cached.
    """
    if len(text) > 21 and text[19] == "." and text[-1] == "Z":
        secs = _seconds.get(text[:19])
        frac = text[20:-1]
        if secs is not None and len(frac) <= 9 and frac.isascii() and frac.isdigit():
            return secs * 1_000_000_000 + int(frac) * _SCALE[len(frac)]
        ns = parse_rfc3339_ns(text)
        if len(_seconds) > 65536:
            _seconds.clear()
        _seconds[text[:19]] = ns // 1_000_000_000
        return ns
    return parse_rfc3339_ns(text)


# --- reassembly --------------------------------------------------------------------------


class Entry(msgspec.Struct, gc=False):
    """One complete message of one stream: the time of its first chunk (as written and in
    ns), the message bytes, the lines it spans (1-based, inclusive), whether bytes beyond
    the cap were dropped and whether it is `partial` (the input ended before its end)."""

    time: str
    time_ns: int
    stream: str
    message: bytes
    first_line: int
    last_line: int
    truncated: bool = False
    partial: bool = False


class LineError(msgspec.Struct, gc=False):
    """A line that is not a log line of its format: its number, why, and its bytes."""

    line: int
    reason: str
    data: bytes


class _DockerLine(msgspec.Struct, gc=False):
    log: str
    stream: str
    time: str


_docker_decoder = msgspec.json.Decoder(_DockerLine)


def _cut(data: bytes, size: int) -> bytes:
    """The first `size` bytes of `data`, less the start of a UTF-8 character cut there."""
    if len(data) <= size:
        return data
    if size > 0 and 0x80 <= data[size] < 0xC0:
        for i in range(size - 1, max(size - 4, -1), -1):
            if data[i] >= 0xC0:
                return data[:i]
    return data[:size]


class _Pending:
    """The chunks of one stream's message so far."""

    __slots__ = ("chunks", "first_line", "last_line", "size", "time", "time_ns", "truncated")

    def __init__(self, time: str, time_ns: int, line: int) -> None:
        self.time = time
        self.time_ns = time_ns
        self.first_line = line
        self.last_line = line
        self.chunks: list[bytes] = []
        self.size = 0
        self.truncated = False

    def add(self, chunk: bytes, line: int, cap: int) -> None:
        self.last_line = line
        if self.truncated:
            return
        if self.size + len(chunk) > cap:
            chunk = _cut(chunk, cap - self.size)
            self.truncated = True
        self.chunks.append(chunk)
        self.size += len(chunk)

    def entry(self, stream: str, partial: bool) -> Entry:
        message = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        return Entry(
            self.time,
            self.time_ns,
            stream,
            message,
            self.first_line,
            self.last_line,
            self.truncated,
            partial,
        )


class Reassembler:
    """Turns the lines of one log file into complete entries. Pure: no I/O, no clock.

    Feed each complete line's bytes (without its newline; a last line still being written
    is not a line yet) in order: `feed` returns an `Entry` when the line completes a
    message, a `LineError` when the line is malformed (the pending messages are kept),
    else None. `flush()` returns the messages still pending (marked
    `partial`), for a file that ends on a partial chunk; after a rotation, feed the new
    file's lines to the same reassembler instead: the message may go on there.

    `kind` is ``cri`` or ``docker``, or None to decide from the first non-empty line (a
    line starting with ``{`` is Docker json-file). `line` is the number of the last line
    fed (start elsewhere with `first_line`); `pending_since()` is the first line of the
    oldest pending message, where a reader that restarts must resume.
    """

    def __init__(
        self, kind: Kind | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES, first_line: int = 1
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
        self.kind: Kind | None = kind
        self.max_bytes = max_bytes
        self.line = first_line - 1
        self._pending: dict[str, _Pending] = {}

    def feed(self, line: bytes) -> Entry | LineError | None:
        """Take the next line; see the class docstring."""
        kind = self.kind
        if kind is None:
            if not line.strip():
                self.line += 1
                return LineError(self.line, "empty line", line)
            kind = self.kind = "docker" if line[:1] == b"{" else "cri"
        if kind == "cri":
            return self._feed_cri(line)
        return self._feed_docker(line)

    def flush(self) -> list[Entry]:
        """The messages still pending, oldest first, marked `partial`; forgets them."""
        out = [p.entry(s, True) for s, p in self._pending.items()]
        self._pending.clear()
        out.sort(key=lambda e: e.first_line)
        return out

    def pending_since(self) -> int | None:
        """The first line of the oldest message still pending, or None."""
        return min((p.first_line for p in self._pending.values()), default=None)

    def _feed_cri(self, line: bytes) -> Entry | LineError | None:
        self.line = n = self.line + 1
        parts = line.split(b" ", 3)
        if len(parts) < 3:
            what = "stream" if len(parts) == 1 else "tag"
            return LineError(n, f"CRI log line has no {what} (`<time> <stream> <tag> <log>`)", line)
        ts, raw_stream, tag = parts[0], parts[1], parts[2]
        try:
            time = ts.decode("ascii")
            time_ns = parse_time_ns(time)
        except (UnicodeDecodeError, MalformedInput):
            return LineError(n, f"CRI log line: time {_show(ts)} is not RFC 3339", line)
        if raw_stream == b"stdout":
            stream = "stdout"
        elif raw_stream == b"stderr":
            stream = "stderr"
        else:
            reason = f"CRI log line: stream is {_show(raw_stream)}, expected stdout or stderr"
            return LineError(n, reason, line)
        if tag == b"F":
            partial = False
        elif tag == b"P":
            partial = True
        else:
            first = tag.split(b":", 1)[0]
            if not first:
                return LineError(n, f"CRI log line: empty tag in {_show(tag)}", line)
            partial = first == b"P"
        return self._chunk(stream, time, time_ns, parts[3] if len(parts) == 4 else b"", partial)

    def _feed_docker(self, line: bytes) -> Entry | LineError | None:
        self.line = n = self.line + 1
        try:
            doc = _docker_decoder.decode(line)
        except msgspec.ValidationError as exc:
            return LineError(n, f"Docker json-file line: {exc}", line)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            return LineError(n, f"Docker json-file line: invalid JSON: {exc}", line)
        stream = doc.stream
        if stream != "stdout" and stream != "stderr":
            reason = f"Docker json-file line: stream is {stream!r}, expected stdout or stderr"
            return LineError(n, reason, line)
        try:
            time_ns = parse_time_ns(doc.time)
        except MalformedInput:
            return LineError(n, f"Docker json-file line: time {doc.time!r} is not RFC 3339", line)
        log = doc.log
        if log.endswith("\n"):
            return self._chunk(stream, doc.time, time_ns, log[:-1].encode(), False)
        return self._chunk(stream, doc.time, time_ns, log.encode(), True)

    def _chunk(
        self, stream: str, time: str, time_ns: int, chunk: bytes, partial: bool
    ) -> Entry | None:
        n = self.line
        pending = self._pending.get(stream)
        if pending is None:
            if not partial:
                if len(chunk) > self.max_bytes:
                    return Entry(time, time_ns, stream, _cut(chunk, self.max_bytes), n, n, True)
                return Entry(time, time_ns, stream, chunk, n, n)
            pending = self._pending[stream] = _Pending(time, time_ns, n)
        pending.add(chunk, n, self.max_bytes)
        if partial:
            return None
        del self._pending[stream]
        return pending.entry(stream, False)


def _show(data: bytes) -> str:
    """Bytes of a bad field for a message: short, readable."""
    text = data[:40].decode("utf-8", "replace")
    return repr(text + "...") if len(data) > 40 else repr(text)
