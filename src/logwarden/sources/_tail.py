"""One file being tailed: its open descriptor, identity, position and partial last line.

The descriptor stays open across a rename, so a rotated file is finished through it even
after its name is gone. Lines are handed out only when complete (ended by a newline); the
bytes after the last newline wait for the rest of their line. `offset` and `line` count
what was handed out, in the decompressed content for a gzip file. `open_at` opens a file
at a saved line and offset, checking that they agree; `skip_to_end` moves past what a
file holds now. `Grace` says how long a file renamed away is still read before switching.

A plain file is checked before what is read from it is used: it must still start with
its `head` and still hold the last bytes read (up to `MARK_BYTES`) where they were read.
If not, it was truncated (copytruncate) and written again, possibly past the point read
between two polls: `fill` hands nothing out and `truncated` says so. A rewrite that puts
back the very same bytes at both places cannot be told from growth.
"""

from __future__ import annotations

import io
import os
import time
from typing import IO, TypedDict

from logwarden.sources._logfiles import GZIP_MAGIC, Gunzip
from logwarden.sources._position import HEAD_BYTES, head_digest

__all__ = [
    "GRACE_MAX_SECS",
    "MARK_BYTES",
    "Grace",
    "Identity",
    "Moved",
    "ShortFile",
    "TailFile",
    "open_at",
    "skip_to_end",
]

_CHUNK = 1 << 20
#: the longest a renamed file is still read after its rename was seen
GRACE_MAX_SECS = 5.0
#: how many poll intervals a renamed file must be quiet before it counts as finished
_GRACE_POLLS = 5
#: how many of the last bytes read are kept, to check that the file still holds them
MARK_BYTES = 1024


class Identity(TypedDict):
    """What tells a file from the others across renames, as the saved states keep it."""

    path: str
    device: int
    inode: int
    head_len: int
    head_sha256: str
    after_ns: int


class ShortFile(Exception):
    """The file holds fewer bytes than the offset it was to be opened at."""


class Moved(FileNotFoundError):
    """The name now names another file than the one expected (rotated meanwhile)."""


def _last(data: bytes, more: bytes) -> bytes:
    """The last `MARK_BYTES` bytes of `data` followed by `more`."""
    if len(more) >= MARK_BYTES:
        return more[-MARK_BYTES:]
    return (data + more)[-MARK_BYTES:]


class TailFile:
    """A file read line by line from an offset, following its growth."""

    def __init__(self, path: str, raw: IO[bytes], after_ns: int) -> None:
        self.path = path
        #: lower bound of this file's rotation time (see `_position.Position.after_ns`)
        self.after_ns = after_ns
        self._raw = raw
        st = os.fstat(raw.fileno())
        self.device = st.st_dev
        self.inode = st.st_ino
        self.compressed = os.pread(raw.fileno(), 2, 0) == GZIP_MAGIC
        self._stream: IO[bytes] = raw
        if self.compressed:
            self._stream = io.BufferedReader(Gunzip(raw), buffer_size=1 << 16)
        #: bytes and lines handed out
        self.offset = 0
        self.line = 0
        #: the first bytes of the content (up to HEAD_BYTES), which identify the file
        self.head = b""
        self._digest = ""
        self._digest_len = 0
        #: `_buf` holds the content from `offset` less `_pos` up to `_read_pos`; `_before`
        #: the last bytes (up to MARK_BYTES) before that
        self._buf = b""
        self._pos = 0
        self._read_pos = 0
        self._before = b""

    @classmethod
    def open(
        cls,
        path: str,
        after_ns: int,
        *,
        offset: int = 0,
        line: int = 0,
        expect: tuple[int, int] | None = None,
    ) -> TailFile:
        """Open `path` positioned at `offset` (line `line`); ShortFile if it is shorter,
        Moved if it is not the file of device and inode `expect` (when given)."""
        raw = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the TailFile
        try:
            tail = cls(path, raw, after_ns)
            if expect is not None and not tail.is_file(*expect):
                raise Moved(f"{path} is another file now")
            if offset:
                tail._skip(offset)
            tail.line = line
        except BaseException:
            raw.close()
            raise
        return tail

    def _skip(self, offset: int) -> None:
        if not self.compressed:
            fd = self._raw.fileno()
            if os.fstat(fd).st_size < offset:
                raise ShortFile(f"{self.path} is shorter than {offset} bytes")
            self.head = os.pread(fd, HEAD_BYTES, 0)
            size = min(offset, MARK_BYTES)
            self._before = os.pread(fd, size, offset - size)
            self._raw.seek(offset)
        else:
            while self._read_pos < offset:
                chunk = self._stream.read(min(_CHUNK, offset - self._read_pos))
                if not chunk:
                    raise ShortFile(f"{self.path} holds fewer than {offset} bytes")
                self._keep_head(chunk)
                self._before = _last(self._before, chunk)
                self._read_pos += len(chunk)
        self._read_pos = self.offset = offset

    def _keep_head(self, chunk: bytes) -> None:
        """Keep the part of `chunk` (read at `_read_pos`) that extends `head`: after a skip
        in a plain file, `head` already holds what `pread` found there."""
        have, start = len(self.head), self._read_pos
        if have >= HEAD_BYTES or start > have or start + len(chunk) <= have:
            return
        self.head += chunk[have - start : HEAD_BYTES - start]

    def identity(self) -> Identity:
        """The file's identity, for a saved position (`_position.Position`, `LogState`)."""
        return Identity(
            path=self.path,
            device=self.device,
            inode=self.inode,
            head_len=len(self.head),
            head_sha256=self.head_sha256,
            after_ns=self.after_ns,
        )

    @property
    def head_sha256(self) -> str:
        """The digest of `head`."""
        if self._digest_len != len(self.head) or not self._digest:
            self._digest = head_digest(self.head)
            self._digest_len = len(self.head)
        return self._digest

    def last(self) -> bytes:
        """The last bytes handed out (up to MARK_BYTES), those just before `offset`."""
        return _last(self._before, self._buf[max(0, self._pos - MARK_BYTES) : self._pos])

    def fill(self) -> int:
        """Read what the file holds beyond what was read; return how many bytes. Nothing
        is read from a plain file that no longer holds what was read (see `truncated`)."""
        chunk = self._stream.read(_CHUNK)
        if not chunk:
            return 0
        if not self.compressed and self._rewritten():
            self._raw.seek(self._read_pos)  # read again once the truncation is handled
            return 0
        self._keep_head(chunk)
        self._read_pos += len(chunk)
        self._before = self.last()
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return len(chunk)

    def take_line(self) -> bytes | None:
        """The next complete line without its newline, or None if none is buffered."""
        end = self._buf.find(b"\n", self._pos)
        if end < 0:
            return None
        line = self._buf[self._pos : end]
        self.offset += end + 1 - self._pos
        self._pos = end + 1
        self.line += 1
        return line

    def partial(self) -> bytes:
        """The bytes after the last newline (a line still being written)."""
        return self._buf[self._pos :]

    def truncated(self) -> bool:
        """Whether the file was truncated or rewritten in place since it was read (a plain
        file only): it is shorter than what was read, its first bytes changed, or the last
        bytes read changed."""
        if self.compressed:
            return False
        if os.fstat(self._raw.fileno()).st_size < self._read_pos:
            return True
        return self._rewritten()

    def _rewritten(self) -> bool:
        """Whether the plain file no longer holds its head, or the last bytes read."""
        fd = self._raw.fileno()
        if self.head and os.pread(fd, len(self.head), 0) != self.head:
            return True
        end = _last(self._before, self._buf)  # the last bytes read, up to `_read_pos`
        return bool(end) and os.pread(fd, len(end), self._read_pos - len(end)) != end

    def unread(self) -> int:
        """How many bytes a plain file holds beyond what was read (0 for a gzip file)."""
        if self.compressed:
            return 0
        return max(0, os.fstat(self._raw.fileno()).st_size - self._read_pos)

    def rewind(self) -> None:
        """Read the file again from its start."""
        self._raw.seek(0)
        self.offset = self.line = self._read_pos = self._pos = 0
        self._buf = self.head = self._before = b""
        self._digest, self._digest_len = "", 0

    def is_file(self, device: int, inode: int) -> bool:
        """Whether this is the file with this device and inode."""
        return (self.device, self.inode) == (device, inode)

    def is_at(self, path: str) -> bool:
        """Whether this is the file `path` names now (not yet rotated away)."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        return self.is_file(st.st_dev, st.st_ino)

    def close(self) -> None:
        """Close the descriptor."""
        self._raw.close()


def open_at(
    path: str, after_ns: int, offset: int, line: int, *, expect: tuple[int, int] | None = None
) -> TailFile:
    """`path` opened just after its first `line` lines, which must end at byte `offset`;
    ShortFile if they do not, Moved if it is not the file `expect` (see `TailFile.open`).
    (Read from the start, where `TailFile.open(offset=, line=)` takes the line number on
    trust.)"""
    file = TailFile.open(path, after_ns, expect=expect)
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


def skip_to_end(file: TailFile) -> int:
    """Move past every complete line `file` holds now; return the bytes read."""
    read = 0
    while n := file.fill():
        read += n
        while file.take_line() is not None:
            pass
    return read


class Grace:
    """How long to keep reading a file renamed away from the live path before switching.

    A writer that reopens its log only when told (logrotate's ``create`` with a
    ``postrotate`` signal, as nginx until USR1) appends to the renamed file a while after
    the new one appeared. The renamed file counts as finished once it has not grown for
    `_GRACE_POLLS` poll intervals, or `GRACE_MAX_SECS` after the rename was seen.
    """

    def __init__(self, poll_interval_secs: float) -> None:
        self.quiet_secs = min(_GRACE_POLLS * poll_interval_secs, GRACE_MAX_SECS)
        self._file: TailFile | None = None
        self._seen = 0.0
        self._grew = 0.0
        self._size = 0

    def over(self, file: TailFile) -> bool:
        """Whether the renamed `file`, at its end now, is finished (a compressed file, a
        finished backup, always is)."""
        if file.compressed:
            return True
        now = time.monotonic()
        size = file.offset + len(file.partial())
        if file is not self._file:
            self._file, self._seen, self._grew, self._size = file, now, now, size
        elif size != self._size:
            self._grew, self._size = now, size
        return now - self._grew >= self.quiet_secs or now - self._seen >= GRACE_MAX_SECS

    def clear(self) -> None:
        """Forget the file (switched away from it)."""
        self._file = None
