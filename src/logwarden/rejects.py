"""The one place every rejected input is reported: counted, kept and told, never dropped.

Sources call `Rejects.report(where, reason, raw)` for each input unit they cannot use.
Each report is counted, the first `echo_limit` are written to the log stream as
``where: reason``, and, when a rejects file is configured, every one is kept there as a
JSON line with the raw bytes so nothing is lost.
"""

from __future__ import annotations

import base64
import threading
from typing import IO

import msgspec

__all__ = ["Rejected", "Rejects"]


class Rejected(msgspec.Struct):
    """One rejected input unit, as written to the rejects file."""

    where: str
    reason: str
    raw: str | None = None
    raw_b64: str | None = None


class Rejects:
    """Counts, echoes and keeps rejected input."""

    def __init__(
        self,
        *,
        log: IO[str] | None = None,
        keep: IO[bytes] | None = None,
        echo_limit: int = 20,
        flush: bool = False,
    ) -> None:
        """`flush`: write each kept unit through at once (a long-running service)."""
        self.count = 0
        self._flush = flush
        self._lock = threading.Lock()
        self.first: list[Rejected] = []
        self._log = log
        self._keep = keep
        self._echo_limit = echo_limit
        self._encoder = msgspec.json.Encoder()

    def report(self, where: str, reason: str, raw: bytes | None = None) -> None:
        """Record that the input unit at `where` was not usable, and why (thread-safe)."""
        with self._lock:
            self._report(where, reason, raw)

    def _report(self, where: str, reason: str, raw: bytes | None) -> None:
        self.count += 1
        item = Rejected(where=where, reason=reason)
        if raw is not None:
            try:
                item.raw = raw.decode()
            except UnicodeDecodeError:
                item.raw_b64 = base64.b64encode(raw).decode()
        if len(self.first) < self._echo_limit:
            self.first.append(item)
        if self._log is not None:
            if self.count <= self._echo_limit:
                self._log.write(f"{where}: {reason}\n")
            elif self.count == self._echo_limit + 1:
                self._log.write("further rejected input is counted but not echoed\n")
        if self._keep is not None:
            self._keep.write(self._encoder.encode(item) + b"\n")
            if self._flush:
                self._keep.flush()
