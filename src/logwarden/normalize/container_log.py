"""Container and application logs as the kubelet keeps them: CRI and Docker json-file lines.

Files and names
    The kubelet keeps each container's log in
    ``/var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<restart count>.log`` and links
    ``/var/log/containers/<pod>_<namespace>_<container>-<container id>.log`` to it.
    `parse_path` reads a `PodRef` from either name (see its docstring for the exact shapes).

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

Multi-line stack traces (`MultilineJoiner`): Java, Python and Go traces printed one line
per log line are joined into one entry; the exact rules are in the class docstring.

Records
    `envelope(entry, podref, path)` makes the raw bytes of one record, a compact JSON
    object: ``time`` (the first chunk's time, as written), ``stream``, ``log`` (the message
    as text), ``namespace``, ``pod``, ``pod_uid``, ``container``, ``restart``, ``file``,
    ``truncated``, and only when they apply ``invalid_utf8`` (the message was not UTF-8:
    bad bytes became U+FFFD), ``partial`` (the file ended before the message did) and
    ``container_id`` (known from a /var/log/containers name).

`document()` fields: the envelope's fields (``invalid_utf8``, ``partial`` always present as
booleans, ``container_id`` as null when unknown), and:

- ``json``: when ``log`` is a JSON object (structured logging), its members (strings that
  hold JSON stay strings: only one level is parsed); else null.
- ``level``: the app's log level, lower case: from the JSON keys ``level``, ``severity``,
  ``lvl``, ``levelname`` or ``log.level`` (numeric bunyan/pino levels become names), or
  from the klog header letter of a text line (``I`` info, ``W`` warning, ``E`` error,
  ``F`` fatal); else null.
- ``msg``: the JSON ``msg`` or ``message`` string, or a klog line's text after its header;
  else null.
- ``ts``: the app's own time as written: the JSON ``ts``, ``time``, ``timestamp`` or
  ``@timestamp`` value; else null.

Text lines that are neither JSON nor klog (access logs, plain text) stay text in ``log``;
parsing them is another module's job.

What cannot be recovered: bytes beyond the cap; where Docker split a character at 16 KiB
(Docker's encoder already wrote each half as U+FFFD); a partial message whose rest was
never written; a Java trace's header when it does not name an exception (see
`MultilineJoiner`); the pod UID and restart count from a /var/log/containers name alone
(resolve the link and parse that path).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import msgspec

from logwarden.normalize import web_access
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.k8s_audit import parse_rfc3339_ns

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_WINDOW_NS",
    "FORMAT",
    "SOURCE",
    "ContainerLog",
    "Entry",
    "LineError",
    "MultilineJoiner",
    "PodRef",
    "Reassembler",
    "alert_ids",
    "alert_labels",
    "decode",
    "document",
    "envelope",
    "envelopes",
    "log_time_ns",
    "parse_path",
    "parse_time_ns",
]

#: The `Record.source` of container log entries.
SOURCE = "container_log"

#: The default cap on one message (reassembled, or joined by the multi-line joiner).
DEFAULT_MAX_BYTES = 1 << 20

#: The default time window within which lines of one stack trace are joined.
DEFAULT_WINDOW_NS = 1_000_000_000

Kind = Literal["cri", "docker"]


# --- paths -------------------------------------------------------------------------------


class PodRef(msgspec.Struct, frozen=True, gc=False):
    """Which container a log file belongs to. `pod_uid` and `restart` are None for a
    /var/log/containers name, `container_id` is None for a /var/log/pods name; `rotated`
    is the kubelet's rotation stamp (``20250203-155314``) of a rotated file."""

    namespace: str
    pod: str
    container: str
    pod_uid: str | None = None
    restart: int | None = None
    container_id: str | None = None
    rotated: str | None = None


_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"  # DNS-1123 label
_SUBDOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"  # DNS-1123 subdomain
_UID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}"
_PODS_PATH = re.compile(
    rf"(?:\A|/)pods/({_LABEL})_({_SUBDOMAIN})_({_UID})/({_LABEL})/"
    r"(0|[1-9][0-9]{0,8})\.log(?:\.([0-9]{8}-[0-9]{6}))?\Z"
)
_CONTAINERS_PATH = re.compile(
    rf"(?:\A|/)containers/({_SUBDOMAIN})_({_LABEL})_({_LABEL})-([0-9a-f]{{64}})\.log\Z"
)


def parse_path(path: str | os.PathLike[str]) -> PodRef | None:
    """The container a kubelet log file belongs to, from its name; None for other paths.

    Two shapes, under any prefix (a host path mounted at /host/var/log works):

    - ``.../pods/<namespace>_<pod>_<pod uid>/<container>/<restart>.log``, and the rotated
      ``<restart>.log.<YYYYMMDD-HHMMSS>`` (compressed ``.gz`` rotations give None: they are
      not lines to read);
    - ``.../containers/<pod>_<namespace>_<container>-<64 hex container id>.log``.

    Namespaces and container names are DNS-1123 labels (at most 63 characters), pod names
    DNS-1123 subdomains (at most 253); none holds ``_``, so the name splits unambiguously.
    The pod UID is a UUID, or 32 hex digits for a static pod (its manifest hash).
    """
    text = os.fspath(path)
    m = _PODS_PATH.search(text)
    if m is not None:
        ns, pod, uid, container, restart, rotated = m.groups()
        if len(ns) > 63 or len(pod) > 253 or len(container) > 63:
            return None
        return PodRef(ns, pod, container, uid, int(restart), None, rotated)
    m = _CONTAINERS_PATH.search(text)
    if m is not None:
        pod, ns, container, cid = m.groups()
        if len(ns) > 63 or len(pod) > 253 or len(container) > 63:
            return None
        return PodRef(ns, pod, container, container_id=cid)
    return None


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


# --- multi-line stack traces -------------------------------------------------------------

_GOROUTINE = re.compile(rb"goroutine [0-9]+ \[[^\]]*\]:\Z")
_JAVA_START = re.compile(rb"[A-Za-z0-9_$.](?:Exception|Error|Throwable)(?::|\Z)")
_GO_START = (b"panic: ", b"fatal error: ")
_JAVA_MORE = re.compile(
    rb"[ \t]+(?:at |\.\.\. [0-9]+ (?:more|common frames omitted)\Z"
    rb"|--- End of inner exception stack trace ---)"
    rb"|[ \t]*(?:Caused by|Suppressed): "
)
_PY_CHAIN = (
    b"During handling of the above exception, another exception occurred:",
    b"The above exception was the direct cause of the following exception:",
)
_PY_TRACEBACK = b"Traceback (most recent call last):"
_GO_MORE = re.compile(
    rb"[ \t]|goroutine [0-9]+ \[[^\]]*\]:\Z|\[signal |created by |exit status [0-9]+\Z"
    rb"|[^ \t(]+\(.*\)\Z"
)
_JAVA, _PY, _PY_END, _PY_CHAINED, _GO = range(5)
_START_SCAN = 4096


def _start_state(message: bytes) -> int | None:
    """The state of a trace that starts with `message`, or None (the rules in the
    docstring of `MultilineJoiner`); substring tests first, they are much faster."""
    if message.startswith(_GO_START):
        return _GO
    if message.startswith(b"goroutine ") and _GOROUTINE.match(message):
        return _GO
    if message == _PY_TRACEBACK:
        return _PY
    head = message if len(message) <= _START_SCAN else message[:_START_SCAN]
    named = b"Exception" in head or b"Error" in head or b"Throwable" in head
    if named and _JAVA_START.search(head):
        return _JAVA
    return None


class _Block:
    __slots__ = ("entries", "last_ns", "size", "state", "tentative")

    def __init__(self, entry: Entry, state: int) -> None:
        self.entries = [entry]
        self.tentative: list[Entry] = []
        self.state = state
        self.size = len(entry.message)
        self.last_ns = entry.time_ns

    def add(self, entry: Entry, state: int) -> None:
        for e in self.tentative:
            self.entries.append(e)
        self.tentative.clear()
        self.entries.append(entry)
        self.state = state
        self.last_ns = entry.time_ns

    def out(self) -> list[Entry]:
        entries = self.entries
        first = entries[0]
        if len(entries) == 1:
            joined = first
        else:
            last = entries[-1]
            joined = Entry(
                first.time,
                first.time_ns,
                first.stream,
                b"\n".join(e.message for e in entries),
                first.first_line,
                last.last_line,
                any(e.truncated for e in entries),
                any(e.partial for e in entries),
            )
        return [joined, *self.tentative]


class MultilineJoiner:
    """Joins the lines of a stack trace, printed one entry per line, into one entry.

    Pure and stateful like `Reassembler`: `push(entry)` returns the entries now complete
    (none, while a trace may go on); `expire(now_ns)` returns the traces whose last line
    is older than the window (call it when a stream is idle); `flush()` returns all held.

    Rules, per stream (stdout and stderr never join), each line compared as bytes:

    - A trace STARTS at an entry that is ``Traceback (most recent call last):`` (Python),
      starts with ``panic: `` or ``fatal error: `` or is ``goroutine N [state]:`` (Go), or
      else has, in its first 4096 bytes, ``Exception``, ``Error`` or ``Throwable`` right
      after a letter, digit, ``_``, ``$`` or ``.`` and followed by ``:`` or the end (Java:
      ``java.lang.Error``, ``x.FooException: msg``, ``Exception in thread "main" ...``;
      not a bare ``Error: ...``). Other entries pass through at once.
    - A next entry of the same stream CONTINUES the trace when it is within `window_ns`
      of the previous line and the joined message stays within `max_bytes`, and:

      - Java: it is an indented ``at ...``, ``... N more`` / ``... N common frames
        omitted``, ``--- End of inner exception stack trace ---``, or (indented or not)
        ``Caused by: `` / ``Suppressed: ``;
      - Python, inside the traceback: it is indented (``  File ...``, code lines); the
        first non-indented, non-empty line is the exception line (``ValueError: x``)
        and is joined; after it, a chained traceback (``During handling of the above
        exception ...`` or ``The above exception was the direct cause ...``, then
        ``Traceback ...``) goes on joining;
      - Go: it is indented, ``goroutine N [state]:``, ``[signal ...``, ``created by ...``,
        ``exit status N`` or a frame ``pkg.Func(args)``.

      Empty lines inside a Python chain or a Go panic are joined only when the trace goes
      on after them; otherwise they come out as their own entries after the trace.
    - Any other entry ends the trace (which comes out joined with ``\\n``, with the time of
      its first line, spanning its lines) and is then looked at as a possible start.

    A Java trace whose header does not name an exception type (a logger's message line
    before the exception line) starts at the exception line; the header stays apart.
    With `enabled=False` every entry passes through unchanged.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        window_ns: int = DEFAULT_WINDOW_NS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.enabled = enabled
        self.window_ns = window_ns
        self.max_bytes = max_bytes
        self._held: dict[str, _Block] = {}

    def push(self, entry: Entry) -> list[Entry]:
        """The entries complete once `entry` is seen (in order of their first line's
        arrival per stream)."""
        if not self.enabled:
            return [entry]
        block = self._held.get(entry.stream)
        if block is None:
            return self._start(entry)
        if (
            entry.time_ns - block.last_ns <= self.window_ns
            and block.size + len(entry.message) + 1 <= self.max_bytes
        ):
            state = self._continues(block.state, entry.message)
            if state is not None:
                block.size += len(entry.message) + 1
                if state < 0:
                    block.tentative.append(entry)
                else:
                    block.add(entry, state)
                return []
        del self._held[entry.stream]
        out = block.out()
        out.extend(self._start(entry))
        return out

    def expire(self, now_ns: int) -> list[Entry]:
        """The traces whose last line is more than the window before `now_ns` (the same
        clock as the entries' times)."""
        out: list[Entry] = []
        for stream, block in list(self._held.items()):
            if now_ns - block.last_ns > self.window_ns:
                del self._held[stream]
                out.extend(block.out())
        return out

    def flush(self) -> list[Entry]:
        """Every trace held, complete or not; forgets them."""
        out: list[Entry] = []
        for block in self._held.values():
            out.extend(block.out())
        self._held.clear()
        return out

    def pending_since(self) -> int | None:
        """The first line of the oldest entry held, or None."""
        return min((b.entries[0].first_line for b in self._held.values()), default=None)

    def _start(self, entry: Entry) -> list[Entry]:
        state = _start_state(entry.message)
        if state is None:
            return [entry]
        self._held[entry.stream] = _Block(entry, state)
        return []

    @staticmethod
    def _continues(state: int, line: bytes) -> int | None:
        """The state after `line` when it goes on the trace (negative: only if more
        follows), else None."""
        if state == _JAVA:
            return _JAVA if _JAVA_MORE.match(line) else None
        if state == _GO:
            if not line:
                return -1
            return _GO if _GO_MORE.match(line) else None
        if state == _PY:
            if line[:1] in (b" ", b"\t"):
                return _PY
            return _PY_END if line else None
        # after a Python exception line, or inside a chain
        if not line:
            return -1
        if line in _PY_CHAIN:
            return _PY_CHAINED
        if state == _PY_CHAINED and line == _PY_TRACEBACK:
            return _PY
        return None


# --- the record ------------------------------------------------------------------------


class ContainerLog(msgspec.Struct, gc=False):
    """The raw envelope of one container log record, and its decoded view."""

    time: str
    stream: str
    log: str
    namespace: str | None = None
    pod: str | None = None
    pod_uid: str | None = None
    container: str | None = None
    restart: int | None = None
    file: str | None = None
    truncated: bool = False
    invalid_utf8: bool | msgspec.UnsetType = msgspec.UNSET
    partial: bool | msgspec.UnsetType = msgspec.UNSET
    container_id: str | msgspec.UnsetType = msgspec.UNSET


_encode = msgspec.json.Encoder().encode


class _NoPod:
    """What an envelope says about the pod of a file `parse_path` does not know."""

    namespace = pod = pod_uid = container = container_id = None
    restart: int | None = None


_NO_POD = _NoPod()
_decoder = msgspec.json.Decoder(ContainerLog)


def envelope(entry: Entry, podref: PodRef | None, path: str) -> bytes:
    """The raw bytes of the record of `entry`, read from the file `path` of `podref`."""
    message = entry.message
    try:
        log = message.decode()
        bad: bool | msgspec.UnsetType = msgspec.UNSET
    except UnicodeDecodeError:
        log = message.decode("utf-8", "replace")
        bad = True
    ref: PodRef | _NoPod = podref if podref is not None else _NO_POD
    view = ContainerLog(
        entry.time,
        entry.stream,
        log,
        ref.namespace,
        ref.pod,
        ref.pod_uid,
        ref.container,
        ref.restart,
        path,
        entry.truncated,
        bad,
        True if entry.partial else msgspec.UNSET,
        msgspec.UNSET if ref.container_id is None else ref.container_id,
    )
    return _encode(view)


def envelopes(
    lines: Iterable[bytes],
    path: str,
    *,
    kind: Kind | None = None,
    joiner: MultilineJoiner | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[tuple[int, bytes] | LineError]:
    """The records of a whole log file: `(first line, envelope bytes)` per entry, in the
    order they complete, and a `LineError` per malformed line (what `logwarden detect`
    over a container log file needs). The pod comes from `parse_path(path)`."""
    podref = parse_path(path)
    reassembler = Reassembler(kind, max_bytes=max_bytes)
    push = joiner.push if joiner is not None else None
    for line in lines:
        item = reassembler.feed(line)
        if item is None:
            continue
        if isinstance(item, LineError):
            yield item
            continue
        for entry in push(item) if push is not None else (item,):
            yield entry.first_line, envelope(entry, podref, path)
    rest = reassembler.flush()
    if joiner is not None:
        rest = [e for r in rest for e in joiner.push(r)] + joiner.flush()
    for entry in rest:
        yield entry.first_line, envelope(entry, podref, path)


def decode(data: bytes) -> ContainerLog:
    """The view of one record's envelope; raises MalformedInput."""
    try:
        view = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise MalformedInput(f"not a container log record: {exc}") from None
    except UnicodeDecodeError as exc:
        raise MalformedInput(
            f"invalid UTF-8 at byte {exc.start}: JSON text must be UTF-8"
        ) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        truncated = "truncated" in str(exc)
        raise MalformedInput(f"invalid JSON: {exc}", truncated=truncated) from None
    if view.stream != "stdout" and view.stream != "stderr":
        raise MalformedInput(
            f"container log record: stream is {view.stream!r}, expected stdout or stderr"
        )
    return view


def log_time_ns(view: ContainerLog) -> int:
    """The time of the entry's first chunk, as the runtime wrote it."""
    return parse_time_ns(view.time)


def alert_ids(_view: ContainerLog) -> tuple[str | None, str | None]:
    """Container log lines carry no event id or stage."""
    return None, None


def alert_labels(view: ContainerLog) -> dict[str, str]:
    """`namespace`, `resource` (``pods``), `pod` and `container`, those known."""
    labels: dict[str, str] = {}
    if view.namespace:
        labels["namespace"] = view.namespace
    if view.pod:
        labels["resource"] = "pods"
        labels["pod"] = view.pod
    if view.container:
        labels["container"] = view.container
    return labels


_LEVEL_KEYS = ("level", "severity", "lvl", "levelname", "log.level")
_MSG_KEYS = ("msg", "message")
_TS_KEYS = ("ts", "time", "timestamp", "@timestamp")
_NUMERIC_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal"}
_KLOG = re.compile(r"([IWEF])[0-9]{4} [0-9:]{8}\.[0-9]{6} +[0-9]+ [^ \]]+:[0-9]+\] ")
_KLOG_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "fatal"}


def _app_json(log: str) -> dict[str, Any] | None:
    text = log.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _level(doc: dict[str, Any]) -> str | None:
    for key in _LEVEL_KEYS:
        value = doc.get(key)
        if isinstance(value, str):
            return value.lower()
        if isinstance(value, int) and not isinstance(value, bool):
            return _NUMERIC_LEVELS.get(value, str(value))
    nested = doc.get("log")
    if isinstance(nested, dict) and isinstance(nested.get("level"), str):
        return str(nested["level"]).lower()
    return None


def document(_raw: bytes, view: ContainerLog) -> Any:
    """The record as plain JSON values (field names in the module docstring)."""
    log = view.log
    doc: dict[str, Any] = {
        "time": view.time,
        "stream": view.stream,
        "log": log,
        "namespace": view.namespace,
        "pod": view.pod,
        "pod_uid": view.pod_uid,
        "container": view.container,
        "restart": view.restart,
        "file": view.file,
        "truncated": view.truncated,
        "invalid_utf8": view.invalid_utf8 is True,
        "partial": view.partial is True,
        "container_id": None if view.container_id is msgspec.UNSET else view.container_id,
        "json": None,
        "level": None,
        "msg": None,
        "ts": None,
    }
    app = _app_json(log)
    if app is not None:
        doc["json"] = app
        doc["level"] = _level(app)
        doc["msg"] = next((app[k] for k in _MSG_KEYS if isinstance(app.get(k), str)), None)
        doc["ts"] = next((app[k] for k in _TS_KEYS if k in app), None)
        return doc
    m = _KLOG.match(log)
    if m is not None:
        doc["level"] = _KLOG_LEVELS[m.group(1)]
        doc["msg"] = log[m.end() :]
    return doc


def _derived(_raw: bytes, view: ContainerLog) -> list[tuple[str, bytes]]:
    """An access log line a web server in the container wrote (ingress-nginx's format,
    nginx `combined`, Envoy's default) is also a record of that format, so the web rules
    see the requests of an app whose logs go to stdout."""
    line = view.log
    if "HTTP/" not in line or '" ' not in line or (not line[:1].isalnum() and line[:1] != "["):
        return []
    data = line.rstrip("\r\n").encode()
    for fmt in _ACCESS_FORMATS:
        try:
            fmt.time_ns(fmt.decode(data))
        except MalformedInput:
            continue
        return [(fmt.source, data)]
    return []


#: tried in this order: the most specific format first
_ACCESS_FORMATS = (web_access.INGRESS_NGINX, web_access.NGINX, web_access.ENVOY)


class _ContainerLogFormat:
    source = SOURCE
    # the module functions themselves, so a call through FORMAT adds no frame
    decode = staticmethod(decode)
    time_ns = staticmethod(log_time_ns)
    alert_ids = staticmethod(alert_ids)
    alert_labels = staticmethod(alert_labels)
    document = staticmethod(document)
    derived = staticmethod(_derived)


#: The container log format as a `normalize.base.Format`.
FORMAT = _ContainerLogFormat()
