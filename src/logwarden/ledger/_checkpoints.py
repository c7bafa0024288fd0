"""The verifier's view of signed checkpoints: load, check signatures, order and split views.

Checkpoints come from the ledger's checkpoint streams (in the order they were written)
and from the anchor. Each must be a well-formed note, signed by a trusted key, of the
ledger's origin. In a stream, sizes never shrink and times always grow (a checkpoint
that goes back is a rollback), and a checkpoint lies within the segment whose stream
holds it. Two valid checkpoints of one size with different roots are a split view.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from logwarden.ledger import layout
from logwarden.ledger.anchor import Anchor
from logwarden.ledger.checkpoint import SignedCheckpoint, open_checkpoint
from logwarden.ledger.layout import list_indexed
from logwarden.ledger.note import NoteError, Verifier
from logwarden.ledger.report import COMPLETENESS, INTEGRITY, Report
from logwarden.ledger.segments import BadFrame, read_frames

__all__ = ["load_anchored", "load_local", "split_views"]


def _open(
    data: bytes, keys: list[Verifier], where: str, origin: str, report: Report
) -> SignedCheckpoint | None:
    try:
        signed = open_checkpoint(data, keys, where)
    except NoteError as exc:
        report.add(INTEGRITY, where, f"checkpoint rejected: {exc}")
        return None
    if signed.checkpoint.origin != origin:
        report.add(INTEGRITY, where, f"checkpoint of another log ({signed.checkpoint.origin!r})")
        return None
    return signed


def load_local(
    ledger: Path, firsts: list[int], keys: list[Verifier], origin: str, report: Report
) -> list[SignedCheckpoint]:
    """The valid checkpoints of the ledger's streams, in written order; problems reported."""
    streams, strays = list_indexed(ledger / layout.CHECKPOINTS, layout.STREAM_SUFFIX)
    for stray in strays:
        report.add(INTEGRITY, str(stray), "unexpected file among the checkpoint streams")
    bounds = dict(zip(firsts, [*firsts[1:], None], strict=True))
    found: list[SignedCheckpoint] = []
    for first, path in streams:
        if first not in bounds:
            report.add(COMPLETENESS, str(path), f"checkpoints of a missing segment {first}")
        found.extend(_stream(path, first, bounds.get(first), keys, origin, report))
    _check_order(found, report)
    return found


def _stream(
    path: Path, first: int, limit: int | None, keys: list[Verifier], origin: str, report: Report
) -> list[SignedCheckpoint]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        report.add(INTEGRITY, str(path), f"cannot read: {exc.strerror}")
        return []
    bad: list[BadFrame] = []
    out: list[SignedCheckpoint] = []
    for offset, payload in read_frames(data, 0, bad):
        where = f"{path}@{offset}"
        signed = _open(bytes(payload), keys, where, origin, report)
        if signed is None:
            continue
        size = signed.checkpoint.size
        if size < first or (limit is not None and size > limit):
            report.add(INTEGRITY, where, f"checkpoint of size {size} out of place in this stream")
        out.append(signed)
    for b in bad:
        report.add(
            INTEGRITY,
            f"{path}@{b.offset}",
            f"damaged checkpoint frame ({b.reason}); a torn tail is repaired by reopening "
            "the ledger for writing",
        )
    return out


def _check_order(found: list[SignedCheckpoint], report: Report) -> None:
    for prev, cur in itertools.pairwise(found):
        a, b = prev.checkpoint, cur.checkpoint
        if b.size < a.size:
            report.add(
                INTEGRITY,
                cur.where,
                f"rolled back: checkpoint of size {b.size} follows one of size {a.size} "
                f"({prev.where})",
            )
        elif (b.time_ns or 0) <= (a.time_ns or 0):
            report.add(
                INTEGRITY,
                cur.where,
                f"rolled back: checkpoint time {b.time_ns} is not after {a.time_ns} ({prev.where})",
            )


def load_anchored(
    anchor: Anchor, keys: list[Verifier], origin: str, report: Report
) -> list[SignedCheckpoint]:
    """The valid checkpoints of the anchor, by size then time; problems reported."""
    out: list[SignedCheckpoint] = []
    for size, _time, path in anchor.checkpoint_files():
        try:
            data = path.read_bytes()
        except OSError as exc:
            report.add(INTEGRITY, str(path), f"cannot read: {exc.strerror}")
            continue
        signed = _open(data, keys, str(path), origin, report)
        if signed is None:
            continue
        if signed.checkpoint.size != size:
            report.add(INTEGRITY, str(path), f"file name says size {size}")
        out.append(signed)
    return out


def split_views(checkpoints: list[SignedCheckpoint], report: Report) -> None:
    """Report every size at which two valid checkpoints disagree on the root."""
    seen: dict[int, SignedCheckpoint] = {}
    for signed in checkpoints:
        size = signed.checkpoint.size
        other = seen.setdefault(size, signed)
        if other.checkpoint.root != signed.checkpoint.root:
            report.add(
                INTEGRITY,
                signed.where,
                f"split view: two signed checkpoints of size {size} with different roots "
                f"(the other: {other.where})",
            )
