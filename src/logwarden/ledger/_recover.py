"""Reopening a ledger for writing: find where it ends, repair a torn tail, trust nothing else.

Only the active (last) segment and its checkpoint stream can have a torn tail: a
segment is synced before the checkpoint that covers it, and before the next segment is
created. A torn tail is cut off, kept under torn/ and reported. Damage anywhere that a
signed checkpoint covers is not a torn tail: the writer refuses to open, because
appending after it would sign a tree that contradicts an earlier checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from logwarden.ledger import layout
from logwarden.ledger.checkpoint import SignedCheckpoint, open_checkpoint
from logwarden.ledger.layout import LedgerError, index_name, list_indexed
from logwarden.ledger.merkle import Frontier
from logwarden.ledger.note import NoteError, Verifier
from logwarden.ledger.segments import FRAME_HEAD, BadFrame, Header, read_frames

__all__ = ["Recovered", "recover"]


@dataclass
class Recovered:
    """Where a reopened ledger stands."""

    frontier: Frontier
    first: int
    segment_bytes: int
    checkpoint_size: int
    checkpoint_time: int
    sealed: list[tuple[int, Path]]
    repairs: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.frontier.size


def recover(ledger: Path, verifier: Verifier, origin: str) -> Recovered:
    """Read the end of `ledger`, repairing torn tails; raise LedgerError if it is damaged."""
    segments, _ = list_indexed(ledger / layout.SEGMENTS, layout.SEGMENT_SUFFIX)
    if not segments:
        raise LedgerError(f"{ledger / layout.SEGMENTS}: no segment files")
    first, path = segments[-1]
    repairs = _leftovers(ledger)
    newest = _newest_checkpoint(ledger, [f for f, _ in segments], verifier, repairs)
    if newest is not None and newest.checkpoint.origin != origin:
        raise LedgerError(f"{newest.where}: checkpoint of origin {newest.checkpoint.origin!r}")
    data = _read(path)
    try:
        header = Header.decode(data)
    except ValueError as exc:
        raise LedgerError(f"{path}: {exc}") from None
    if header.first != first:
        raise LedgerError(f"{path}: header says the segment starts at entry {header.first}")
    frontier, end, root, bad = _scan(data, header, newest.checkpoint.size if newest else -1)
    state = Recovered(
        frontier,
        first,
        end,
        newest.checkpoint.size if newest else -1,
        (newest.checkpoint.time_ns or 0) if newest else 0,
        segments[:-1],
        repairs,
    )
    if newest is not None:
        _check_newest(newest, state, root, path)
    if bad is not None:
        repairs.append(_cut(ledger, path, data, bad, f"after entry {frontier.size - 1}"))
    return state


def _scan(
    data: bytes, header: Header, at: int
) -> tuple[Frontier, int, bytes | None, BadFrame | None]:
    frontier = Frontier(header.first, header.frontier)
    root = frontier.root() if at == header.first else None
    bad: list[BadFrame] = []
    end = header.length
    for offset, payload in read_frames(data, header.length, bad):
        frontier.append(hashlib.sha256(payload).digest())
        end = offset + FRAME_HEAD + len(payload)
        if frontier.size == at:
            root = frontier.root()
    return frontier, end, root, (bad[0] if bad else None)


def _check_newest(
    newest: SignedCheckpoint, state: Recovered, root: bytes | None, path: Path
) -> None:
    size = newest.checkpoint.size
    if size > state.size:
        raise LedgerError(
            f"{path}: the ledger holds {state.size} entries but its newest checkpoint "
            f"({newest.where}) covers {size}: signed entries are missing or damaged "
            "(run 'logwarden verify'); refusing to append"
        )
    if size < state.first:
        raise LedgerError(f"{newest.where}: newest checkpoint predates segment {path.name}")
    if root != newest.checkpoint.root:
        raise LedgerError(
            f"{path}: the entries do not match the newest checkpoint ({newest.where}); "
            "run 'logwarden verify'; refusing to append"
        )


def _newest_checkpoint(
    ledger: Path, firsts: list[int], verifier: Verifier, repairs: list[str]
) -> SignedCheckpoint | None:
    """The last checkpoint, from the active stream (repaired) or the one before it."""
    directory = ledger / layout.CHECKPOINTS
    for i, first in enumerate(reversed(firsts)):
        path = directory / index_name(first, layout.STREAM_SUFFIX)
        if not path.exists():
            continue
        data = _read(path)
        bad: list[BadFrame] = []
        frames = list(read_frames(data, 0, bad))
        if bad:
            if i:
                raise LedgerError(f"{path}:{bad[0].offset}: damaged checkpoint ({bad[0].reason})")
            repairs.append(_cut(ledger, path, data, bad[0], "in the checkpoint stream"))
        if frames:
            offset, payload = frames[-1]
            where = f"{path}@{offset}"
            try:
                return open_checkpoint(bytes(payload), [verifier], where)
            except NoteError as exc:
                raise LedgerError(f"{where}: {exc}") from None
    return None


def _leftovers(ledger: Path) -> list[str]:
    """Remove the temporary files of writes a crash interrupted (never renamed into place)."""
    found = []
    for directory in (ledger / layout.SEGMENTS, ledger / layout.CHECKPOINTS):
        for tmp in sorted(directory.glob("*.tmp")):
            tmp.unlink()
            found.append(f"{tmp}: unfinished write removed")
    return found


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read: {exc.strerror}") from exc


def _cut(ledger: Path, path: Path, data: bytes, bad: BadFrame, after: str) -> str:
    """Move the bytes from `bad.offset` on into torn/, truncate `path`; the report line."""
    torn_dir = ledger / layout.TORN
    keep = torn_dir / f"{path.name}.{bad.offset}.torn"
    n = 1
    while keep.exists():  # the same tail torn again: keep the earlier bytes too
        keep, n = torn_dir / f"{path.name}.{bad.offset}.{n}.torn", n + 1
    try:
        if not torn_dir.is_dir():
            torn_dir.mkdir()
            layout.fsync_dir(ledger)
        layout.write_atomic(keep, data[bad.offset :])
        os.truncate(path, bad.offset)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise LedgerError(f"{path}: cannot repair the torn tail: {exc.strerror}") from exc
    return (
        f"{path}: torn tail of {len(data) - bad.offset} bytes at byte {bad.offset} {after} "
        f"({bad.reason}): cut off, kept in {keep}"
    )
