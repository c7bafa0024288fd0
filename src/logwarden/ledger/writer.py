"""The ledger writer: appends records, keeps the Merkle tree, signs checkpoints, seals segments.

`LedgerWriter.append_records(batch)` writes the batch's frames to the active segment with
one write(2) and, under the default fsync policy ``always``, one fdatasync(2) before it
returns the first index: an index returned is an entry that survives kill -9 and power
loss. Under ``checkpoint`` an index returned survives kill -9 (it is in the kernel) and
power loss from the next checkpoint on, since every checkpoint fsyncs the data it covers
before signing it. The tree is never signed ahead of the data.

Checkpoints are issued by one background thread, in order: the tree head is taken when
the checkpoint is due, and syncing, signing and storing it overlap with the next appends.
`checkpoint()` waits for it; sealing and closing wait for every pending one.

Checkpoints are issued every `checkpoint_interval_secs` while records arrive (checked
after each batch and by `tick()`), after `heartbeat_secs` without records (so a frozen
log shows), when a segment seals and on close. A segment seals when it reaches
`segment_bytes` or `segment_secs`; a sealed segment is copied to the anchor, and every
checkpoint is written there as issued. Opening an existing ledger repairs a torn tail
(cut off, kept under torn/, reported in `repairs`) and refuses a ledger whose entries do
not match its newest checkpoint.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import struct
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from logwarden.ledger import layout
from logwarden.ledger._recover import Recovered, recover
from logwarden.ledger.anchor import Anchor
from logwarden.ledger.checkpoint import RECOVERED_PREFIX, TIME_PREFIX, Checkpoint, open_checkpoint
from logwarden.ledger.layout import LedgerError, LedgerInfo, index_name
from logwarden.ledger.merkle import Frontier
from logwarden.ledger.note import NoteError, Signer
from logwarden.ledger.segments import Header, encode_frame, envelope_prefix, read_frames

__all__ = ["FSYNC_POLICIES", "LedgerWriter", "RecordLike", "WriterOptions"]

#: ``always``: fdatasync before an append returns; ``checkpoint``: fsync at each checkpoint.
FSYNC_POLICIES = ("always", "checkpoint")
_HEAD = struct.Struct(">I8s")
_TIMES = struct.Struct(">QQ")


class RecordLike(Protocol):
    """What the writer reads of a record (`logwarden.records.Record` has these)."""

    @property
    def source(self) -> str: ...
    @property
    def instance(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def received_ns(self) -> int: ...
    @property
    def raw(self) -> bytes: ...


@dataclass(frozen=True)
class WriterOptions:
    """How often the writer syncs, signs and seals."""

    fsync: str = "always"
    checkpoint_interval_secs: float = 1.0
    heartbeat_secs: float = 30.0
    segment_bytes: int = 64 << 20
    segment_secs: float = 3600.0

    def __post_init__(self) -> None:
        if self.fsync not in FSYNC_POLICIES:
            raise LedgerError(f"fsync: expected one of {', '.join(FSYNC_POLICIES)}")
        if self.checkpoint_interval_secs <= 0 or self.heartbeat_secs <= 0:
            raise LedgerError("checkpoint_interval_secs and heartbeat_secs must be positive")
        if self.segment_bytes < 4096 or self.segment_secs <= 0:
            raise LedgerError("segment_bytes must be at least 4096, segment_secs positive")


class LedgerWriter:
    """The one writer of a ledger directory (it holds the directory's lock)."""

    def __init__(
        self,
        path: str | Path,
        signer: Signer,
        *,
        origin: str | None = None,
        anchor: str | Path | None = None,
        options: WriterOptions | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = Path(path)
        self.options = options or WriterOptions()
        self._signer = signer
        self._clock = clock
        self.repairs: list[str] = []
        self.problems: list[str] = []
        self.anchor = Anchor(Path(anchor), create=True) if anchor is not None else None
        self._prefixes: dict[tuple[str, str], bytes] = {}
        self._failed: str | None = None
        self._pending: Future[bytes] | None = None
        self._issuer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-checkpoint")
        self._lock_fd = self._lock()
        try:
            self._open(origin)
        except BaseException as exc:
            self._issuer.shutdown(wait=True)
            os.close(self._lock_fd)
            if isinstance(exc, OSError):
                raise LedgerError(f"{self.path}: cannot open the ledger: {exc}") from exc
            raise

    # -- opening -------------------------------------------------------------------------

    def _lock(self) -> int:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / layout.LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot open the ledger: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LedgerError(f"{self.path}: another writer has the ledger open") from None
        return fd

    def _open(self, origin: str | None) -> None:
        key = self._signer.verifier().encode()
        if not (self.path / layout.LEDGER_FILE).exists():
            if self._existing_files() and not self._unfinished_creation():
                raise LedgerError(
                    f"{self.path}: holds segments or checkpoints but no {layout.LEDGER_FILE}; "
                    "refusing to create a new ledger over them (run 'logwarden verify')"
                )
            self._create(origin if origin is not None else self._signer.name, key)
            return
        info = LedgerInfo.read(self.path)
        if info.key != key:
            raise LedgerError(f"{self.path}: the ledger is signed by {info.key}, not by this key")
        if origin is not None and origin != info.origin:
            raise LedgerError(f"{self.path}: the ledger's origin is {info.origin!r}")
        self.origin = info.origin
        if not self._existing_files():  # ledger.txt is written last when a ledger is made
            raise LedgerError(
                f"{self.path}: has {layout.LEDGER_FILE} but no segments or checkpoints: its "
                "entries are gone; refusing to start it again empty under the same name "
                "(run 'logwarden verify')"
            )
        state = recover(self.path, self._signer.verifier(), info.origin)
        self.repairs.extend(state.repairs)
        self._resume(state)
        if self.anchor is not None:
            self._anchor_sealed(state)
        if state.size != state.checkpoint_size:
            self._sign_recovered(max(state.checkpoint_size, state.first, 0), state.size - 1)

    def _sign_recovered(self, first: int, last: int) -> None:
        """Sign the entries found on disk that no checkpoint covered, saying so in the
        checkpoint (`recovered first last`): after a crash these are the last records
        stored, but anyone who can write the files could have put them there, and
        `verify` names them."""
        if last >= first:
            self.repairs.append(
                f"entries {first}..{last} were stored but not covered by a signed checkpoint "
                "(the writer stopped without signing them, or they were added to the files): "
                "signed now, marked as recovered in the checkpoint"
            )
        self._result(self._submit(recovered=(first, last) if last >= first else None))

    def _existing_files(self) -> bool:
        """Whether segments/ or checkpoints/ hold anything but unfinished (.tmp) writes."""
        for name in (layout.SEGMENTS, layout.CHECKPOINTS):
            found, strays = layout.list_indexed(self.path / name, "")
            if found or strays:
                return True
        return False

    def _unfinished_creation(self) -> bool:
        """Whether the files are what making a ledger leaves when it is interrupted before
        `ledger.txt` (written last): an empty first segment and at most its first, empty,
        checkpoint. They are removed, and the ledger is made again."""
        segments, seg_strays = layout.list_indexed(
            self.path / layout.SEGMENTS, layout.SEGMENT_SUFFIX
        )
        streams, chk_strays = layout.list_indexed(
            self.path / layout.CHECKPOINTS, layout.STREAM_SUFFIX
        )
        if seg_strays or chk_strays or [f for f, _ in segments + streams] not in ([0], [0, 0]):
            return False
        empty = Header.encode(0, [])
        if segments[0][1].read_bytes() != empty:
            return False
        verifier = self._signer.verifier()
        for _, path in streams:
            frames = list(read_frames(path.read_bytes(), 0, []))
            if len(frames) > 1:
                return False
            for _, payload in frames:
                try:
                    signed = open_checkpoint(bytes(payload), [verifier], str(path))
                except NoteError:
                    return False
                if signed.checkpoint.size != 0:
                    return False
        for _, path in segments + streams:
            path.unlink()
        return True

    def _create(self, origin: str, key: str) -> None:
        """Make a new ledger: the first segment and checkpoint, then `ledger.txt`, last, so
        that a ledger.txt without them means they were removed."""
        if not origin or origin != origin.strip() or any(ord(c) < 0x20 for c in origin):
            raise LedgerError(
                f"invalid origin {origin!r}: must be non-empty, without control characters "
                "or leading and trailing spaces"
            )
        self.origin = origin
        try:
            (self.path / layout.SEGMENTS).mkdir(exist_ok=True)
            (self.path / layout.CHECKPOINTS).mkdir(exist_ok=True)
            layout.fsync_dir(self.path)
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot create the ledger: {exc}") from exc
        self._frontier = Frontier()
        self._last_time = 0
        self._start_segment()
        self.checkpoint()
        try:
            layout.write_atomic(self.path / layout.LEDGER_FILE, LedgerInfo(origin, key).encode())
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot create the ledger: {exc}") from exc

    def _resume(self, state: Recovered) -> None:
        self._frontier = state.frontier
        self._last_time = state.checkpoint_time
        self._checkpoint_size = state.checkpoint_size
        self._open_segment(state.first, state.segment_bytes)

    def _anchor_sealed(self, state: Recovered) -> None:
        assert self.anchor is not None
        for first, path in state.sealed:
            if not self.anchor.has_segment(first, path.stat().st_size):
                self._to_anchor(functools.partial(self.anchor.put_segment, first, path))

    # -- segments ------------------------------------------------------------------------

    def _start_segment(self) -> None:
        first = self._frontier.size
        header = Header.encode(first, self._frontier.hashes)
        layout.write_atomic(self.path / layout.SEGMENTS / index_name(first, ".seg"), header)
        self._open_segment(first, len(header))

    def _open_segment(self, first: int, size: int) -> None:
        self._first = first
        self._segment = self.path / layout.SEGMENTS / index_name(first, ".seg")
        self._stream = self.path / layout.CHECKPOINTS / index_name(first, ".chk")
        self._seg_fd = os.open(self._segment, os.O_WRONLY | os.O_APPEND)
        new_stream = not self._stream.exists()
        self._chk_fd = os.open(self._stream, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if new_stream:
            layout.fsync_dir(self._stream.parent)
        self._seg_bytes = size
        self._seg_started = time.monotonic()
        self._last_checkpoint = time.monotonic()

    def _seal(self) -> None:
        """Close the active segment with a checkpoint covering it, anchor it, start the next."""
        self.checkpoint()
        first, sealed = self._first, self._segment
        os.close(self._seg_fd)
        os.close(self._chk_fd)
        try:
            self._start_segment()
        except OSError as exc:
            self._failed = f"{self.path}: cannot start a new segment: {exc}"
            raise LedgerError(self._failed) from exc
        if self.anchor is not None:
            self._to_anchor(functools.partial(self.anchor.put_segment, first, sealed))

    # -- appending -----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The number of entries written (the index the next record gets)."""
        return self._frontier.size

    @property
    def last_checkpoint_ns(self) -> int:
        """When the newest checkpoint was signed (its `time`), 0 if there is none yet."""
        return self._last_time

    def append(self, source: str, instance: str, seq: int, received_ns: int, raw: bytes) -> int:
        """Append one record; returns its index once durable (see the module doc)."""
        return self.append_records([_Rec(source, instance, seq, received_ns, raw)])

    def append_records(self, records: Iterable[RecordLike]) -> int:
        """Append records in order; returns the index of the first once the batch is durable."""
        if self._failed is not None:
            raise LedgerError(f"{self.path}: the writer stopped after an error: {self._failed}")
        parts: list[bytes] = []
        prefixes = self._prefixes
        sha = hashlib.sha256
        pack_head, pack_times = _HEAD.pack, _TIMES.pack
        first = n = self._frontier.size
        stack = list(self._frontier.hashes)  # committed only once the batch is written
        source = instance = None
        prefix = b""
        for r in records:
            if r.instance is not instance or r.source is not source:
                source, instance = r.source, r.instance
                prefix = prefixes.get((source, instance)) or self._prefix(source, instance)
            payload = b"".join((b"\x00\x01", pack_times(r.received_ns, r.seq), prefix, r.raw))
            h = sha(payload).digest()
            parts.append(pack_head(len(payload), h))
            parts.append(payload)
            stack.append(h)
            m = n
            while m & 1:  # RFC 6962 tree, as Frontier.append, inlined
                right = stack.pop()
                stack[-1] = sha(b"\x01" + stack[-1] + right).digest()
                m >>= 1
            n += 1
        if n == first:
            return first
        self._write(b"".join(parts))
        self._frontier = Frontier(n, stack)
        try:
            self._after_write()
        except (LedgerError, OSError) as exc:
            # the batch is written (and, under ``always``, synced): it stays acknowledged,
            # so a caller does not send it again; the writer takes no more records
            self._failed = self._failed or str(exc)
        return first

    def _prefix(self, source: str, instance: str) -> bytes:
        try:
            prefix = envelope_prefix(source, instance)
        except ValueError as exc:
            raise LedgerError(f"cannot append a record of {instance!r}: {exc}") from None
        if len(self._prefixes) > 4096:
            self._prefixes.clear()
        self._prefixes[(source, instance)] = prefix
        return prefix

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._seg_fd, view) :]
            if self.options.fsync == "always":
                os.fdatasync(self._seg_fd)
        except OSError as exc:
            self._failed = f"{self._segment}: write failed: {exc.strerror}"
            raise LedgerError(self._failed) from exc
        self._seg_bytes += len(data)

    def _after_write(self) -> None:
        if self._seg_bytes >= self.options.segment_bytes:
            self._seal()
        elif time.monotonic() - self._last_checkpoint >= self.options.checkpoint_interval_secs:
            self._checkpoint_soon()

    def tick(self) -> None:
        """Issue what time calls for: a due checkpoint, a heartbeat, an old segment's seal."""
        if self._failed is not None:
            return
        now = time.monotonic()
        pending = self._frontier.size != self._checkpoint_size
        since = now - self._last_checkpoint
        if pending and now - self._seg_started >= self.options.segment_secs:
            self._seal()
        elif (pending and since >= self.options.checkpoint_interval_secs) or (
            since >= self.options.heartbeat_secs
        ):
            self._checkpoint_soon()

    # -- checkpoints ---------------------------------------------------------------------

    def checkpoint(self) -> bytes:
        """Sync the data, then sign and store a checkpoint of the whole tree; returns the note."""
        return self._result(self._submit())

    def _checkpoint_soon(self) -> None:
        """Start a checkpoint on the issuer thread unless one is still running."""
        if self._pending is not None:
            if not self._pending.done():
                return
            self._result(self._pending)
        self._submit()

    def _submit(self, recovered: tuple[int, int] | None = None) -> Future[bytes]:
        size, root = self._frontier.size, self._frontier.root()
        self._checkpoint_size = size
        self._last_checkpoint = time.monotonic()
        extra = (f"{RECOVERED_PREFIX}{recovered[0]} {recovered[1]}",) if recovered else ()
        self._pending = self._issuer.submit(
            self._issue, self._seg_fd, self._chk_fd, size, root, extra
        )
        return self._pending

    def _result(self, future: Future[bytes]) -> bytes:
        try:
            return future.result()
        except LedgerError as exc:
            self._failed = str(exc)
            raise

    def _issue(
        self, seg_fd: int, chk_fd: int, size: int, root: bytes, extra: tuple[str, ...]
    ) -> bytes:
        """Runs on the issuer thread, one at a time, in order: sync, sign, store, anchor."""
        try:
            if self.options.fsync != "always":
                os.fdatasync(seg_fd)
            when = max(self._clock(), self._last_time + 1)
            ckpt = Checkpoint(self.origin, size, root, (f"{TIME_PREFIX}{when}", *extra))
            note = ckpt.sign(self._signer)
            frame = encode_frame(note)
            if os.write(chk_fd, frame) != len(frame):
                raise OSError(0, "short write")
            os.fsync(chk_fd)
        except OSError as exc:
            raise LedgerError(f"{self._stream}: checkpoint failed: {exc.strerror}") from exc
        self._last_time = when
        if self.anchor is not None:
            self._to_anchor(functools.partial(self.anchor.put_checkpoint, note, size, when))
        return note

    def _to_anchor(self, put: Callable[[], None]) -> None:
        try:
            put()
        except LedgerError as exc:
            self.problems.append(str(exc))

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Checkpoint what is not yet covered, then release the files and the lock.

        Raises LedgerError if the writer stopped after an error: the entries appended since
        the last checkpoint are then not signed until the ledger is reopened.
        """
        if self._lock_fd < 0:
            return
        try:
            if self._pending is not None and self._failed is None:
                self._result(self._pending)
            if self._failed is None and self._frontier.size != self._checkpoint_size:
                self.checkpoint()
        finally:
            self._issuer.shutdown(wait=True)
            for fd in (self._seg_fd, self._chk_fd, self._lock_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._lock_fd = -1
        if self._failed is not None:
            raise LedgerError(f"{self.path}: the writer stopped after an error: {self._failed}")

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # keep the exception in flight; close() would only repeat it
            with contextlib.suppress(LedgerError):
                self.close()


@dataclass(frozen=True)
class _Rec:
    source: str
    instance: str
    seq: int
    received_ns: int
    raw: bytes
