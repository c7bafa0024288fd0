"""The anchor: an external directory that receives sealed segments and signed checkpoints.

An anchor is somewhere the ledger's host cannot rewrite: a mounted write-once bucket,
another cluster's volume. Every file is written once, whole (temporary name, fsync,
link), and never changed; a file that is already there with the same bytes is fine,
with other bytes an error. Layout in `logwarden.ledger.layout`. Standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

from logwarden.ledger.layout import (
    ANCHOR_SUFFIX,
    CHECKPOINTS,
    SEGMENT_SUFFIX,
    SEGMENTS,
    LedgerError,
    anchor_checkpoint_name,
    index_name,
    list_indexed,
    parse_anchor_name,
    write_atomic,
)

__all__ = ["Anchor"]


class Anchor:
    """One anchor directory, for writing (the ledger writer) and reading (the verifier)."""

    def __init__(self, root: Path, *, create: bool = False) -> None:
        self.root = Path(root)
        self.segments = self.root / SEGMENTS
        self.checkpoints = self.root / CHECKPOINTS
        if create:
            try:
                self.segments.mkdir(parents=True, exist_ok=True)
                self.checkpoints.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(f"{self.root}: cannot create the anchor: {exc}") from exc
        elif not self.root.is_dir():
            raise LedgerError(f"{self.root}: no such anchor directory")

    def put_checkpoint(self, note: bytes, size: int, time_ns: int) -> None:
        """Store one signed checkpoint."""
        self._put(self.checkpoints / anchor_checkpoint_name(size, time_ns), note)

    def put_segment(self, first: int, source: Path) -> None:
        """Store a copy of the sealed segment file `source` that starts at entry `first`."""
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise LedgerError(f"{source}: cannot read for the anchor: {exc}") from exc
        self._put(self.segments / index_name(first, SEGMENT_SUFFIX), data)

    def has_segment(self, first: int, size: int) -> bool:
        path = self.segments / index_name(first, SEGMENT_SUFFIX)
        try:
            return os.stat(path).st_size == size
        except OSError:
            return False

    def _put(self, path: Path, data: bytes) -> None:
        try:
            write_atomic(path, data, exclusive=True)
        except FileExistsError:
            try:
                same = path.read_bytes() == data
            except OSError:
                same = False
            if not same:
                raise LedgerError(f"{path}: already in the anchor with other contents") from None
        except OSError as exc:
            raise LedgerError(f"{path}: cannot write to the anchor: {exc}") from exc

    def checkpoint_files(self) -> list[tuple[int, int, Path]]:
        """Anchored checkpoints as (size, time, path), oldest first, and ignoring others."""
        found: list[tuple[int, int, Path]] = []
        if self.checkpoints.is_dir():
            for name in os.listdir(self.checkpoints):
                parsed = parse_anchor_name(name) if name.endswith(ANCHOR_SUFFIX) else None
                if parsed is not None:
                    found.append((parsed[0], parsed[1], self.checkpoints / name))
        found.sort()
        return found

    def segment_files(self) -> list[tuple[int, Path]]:
        return list_indexed(self.segments, SEGMENT_SUFFIX)[0]
