"""The one place every rejected input is reported: counted, kept and told, never dropped.

Sources call `Rejects.report(where, reason, raw)` for each input unit they cannot use.
Each report is counted, the first `echo_limit` are written to the log stream as
``where: reason``, and, when a rejects file is configured, every one is kept there as a
JSON line with the raw bytes so nothing is lost.

What is kept of the bytes has passed `redact.redact_bytes` first, for every source: a
rejected unit is not stored in the ledger, but its Secret values must not be stored in
clear anywhere else either (a unit is rejected for one bad field, the rest of it may be a
Secret). The service passes its `Redactor.redact_bytes`, so the configured extra paths
are masked there too. A rejects file is opened by `open_file`, readable by its owner only.
"""

from __future__ import annotations

import base64
import os
import stat
import threading
from collections.abc import Callable
from typing import IO, BinaryIO

import msgspec

from logwarden.redact import redact_bytes

__all__ = ["Rejected", "Rejects", "open_file"]


def open_file(path: str | os.PathLike[str], *, append: bool = False) -> BinaryIO:
    """Open the rejects file `path` for writing (`append`, or truncated), created with
    mode 0600, and narrowed to 0600 if it is a regular file open to others: rejected
    units hold what a sender sent. OSError as `open` raises it."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode) and mode & 0o077:
            os.fchmod(fd, 0o600)
        return open(fd, "ab" if append else "wb")
    except BaseException:
        os.close(fd)
        raise


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
        redact: Callable[[bytes], bytes] = redact_bytes,
    ) -> None:
        """`flush`: write each kept unit through to the disk at once (a long-running
        service: a source may acknowledge a rejected unit to its sender, as the Pub/Sub
        source does, once it is reported);
        `redact`: what the bytes of a unit pass before they are kept or echoed."""
        self.count = 0
        self._flush = flush
        self._lock = threading.Lock()
        self.first: list[Rejected] = []
        self._log = log
        self._keep = keep
        self._echo_limit = echo_limit
        self._encoder = msgspec.json.Encoder()
        self._redact = redact

    def report(self, where: str, reason: str, raw: bytes | None = None) -> None:
        """Record that the input unit at `where` was not usable, and why (thread-safe)."""
        with self._lock:
            self._report(where, reason, raw)

    def _report(self, where: str, reason: str, raw: bytes | None) -> None:
        self.count += 1
        item = Rejected(where=where, reason=reason)
        if raw is not None:
            raw = self._redact(raw)
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
                os.fsync(self._keep.fileno())
