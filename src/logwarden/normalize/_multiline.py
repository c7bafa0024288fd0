"""Multi-line stack traces: Java, Python and Go traces printed one line per log line,
joined into one entry by `MultilineJoiner` (the exact rules are in the class docstring).

What cannot be recovered: a Java trace's header when it does not name an exception (see
`MultilineJoiner`). Public through `normalize.container_log`.
"""

from __future__ import annotations

import re

from logwarden.normalize._cri import DEFAULT_MAX_BYTES, Entry

__all__ = ["DEFAULT_WINDOW_NS", "MultilineJoiner"]

#: The default time window within which lines of one stack trace are joined.
DEFAULT_WINDOW_NS = 1_000_000_000


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
