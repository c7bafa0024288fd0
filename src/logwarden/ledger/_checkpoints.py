"""The verifier's view of signed checkpoints: load, check signatures, order and split views.

Checkpoints come from the ledger's checkpoint streams (in the order they were written)
and from the anchor. Each must be a well-formed note, signed by a trusted key, of the
ledger's origin. In a stream, sizes never shrink and times always grow (a checkpoint
that goes back is a rollback), and a checkpoint lies within the segment whose stream
holds it. Two valid checkpoints of one size with different roots are a split view.

No stream may be missing: the writer creates a segment's stream when it opens the
segment, before any entry, and seals a segment with a checkpoint covering it in that
stream; and every checkpoint it writes to the anchor it has written to a stream first.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Collection
from pathlib import Path

from logwarden.ledger import layout
from logwarden.ledger.anchor import Anchor
from logwarden.ledger.checkpoint import SignedCheckpoint, open_checkpoint
from logwarden.ledger.layout import index_name, list_indexed
from logwarden.ledger.note import NoteError, Verifier
from logwarden.ledger.report import COMPLETENESS, INTEGRITY, Report
from logwarden.ledger.segments import BadFrame, read_frames

__all__ = [
    "anchor_rollbacks",
    "load_anchored",
    "load_local",
    "missing_streams",
    "split_views",
    "unstreamed",
]


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
    ledger: Path,
    firsts: list[int],
    keys: list[Verifier],
    origin: str,
    report: Report,
    streams_out: dict[int, list[SignedCheckpoint]] | None = None,
) -> list[SignedCheckpoint]:
    """The valid checkpoints of the ledger's streams, in written order; problems reported.

    `streams_out`, if given, receives every stream file's valid checkpoints by its first.
    """
    streams, strays = list_indexed(ledger / layout.CHECKPOINTS, layout.STREAM_SUFFIX)
    for stray in strays:
        report.add(INTEGRITY, str(stray), "unexpected file among the checkpoint streams")
    bounds: dict[int, int | None] = dict(
        zip(firsts, [*firsts[1:], None][: len(firsts)], strict=True)
    )
    found: list[SignedCheckpoint] = []
    for first, path in streams:
        if first not in bounds:
            report.add(COMPLETENESS, str(path), f"checkpoints of a missing segment {first}")
        held = _stream(path, first, bounds.get(first), keys, origin, report)
        if streams_out is not None:
            streams_out[first] = held
        found.extend(held)
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


def anchor_rollbacks(anchored: list[SignedCheckpoint], report: Report) -> set[bytes]:
    """Report a rollback the anchor shows: a checkpoint issued after a larger one (the
    ledger rolled back and its writer restarted over it). Returns the notes of those
    issued after a larger one: they do not vouch for what was there before."""
    later: list[tuple[SignedCheckpoint, SignedCheckpoint]] = []
    top: SignedCheckpoint | None = None
    for signed in sorted(anchored, key=lambda s: s.checkpoint.time_ns or 0):
        if top is not None and signed.checkpoint.size < top.checkpoint.size:
            later.append((signed, top))
        elif top is None or signed.checkpoint.size > top.checkpoint.size:
            top = signed
    if later:
        first, larger = later[0]
        more = f" ({len(later) - 1} more after it)" if len(later) > 1 else ""
        report.add(
            COMPLETENESS,
            first.where,
            f"rolled back: the anchor holds this checkpoint of size {first.checkpoint.size}, "
            f"issued after one of size {larger.checkpoint.size} ({larger.where}){more}: the "
            "ledger was rolled back and written on from there",
        )
    return {s.note for s, _ in later}


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


def _stream_path(ledger: Path, first: int) -> Path:
    return ledger / layout.CHECKPOINTS / index_name(first, layout.STREAM_SUFFIX)


def _sizes(found: list[SignedCheckpoint]) -> str:
    a, b = found[0].checkpoint.size, found[-1].checkpoint.size
    return f"size {a}" if a == b else f"sizes {a}..{b}"


def unstreamed(
    ledger: Path,
    anchored: list[SignedCheckpoint],
    local: list[SignedCheckpoint],
    bounds: list[int],
    streams: dict[int, list[SignedCheckpoint]],
    report: Report,
) -> set[int]:
    """Report the anchor's checkpoints that no stream of the ledger holds (completeness).

    `bounds` are the first entries of the segments known (the ledger's and the anchor's).
    A missing checkpoint belongs to the stream of the segment its size falls in; at a
    boundary, to the segment before when that stream lacks the one checkpoint of that size
    it must hold (the one that sealed it), else to the segment that starts there. A stream
    that is gone was deleted, else checkpoints were cut from it. Returns the firsts of the
    streams reported.
    """
    have = {(s.checkpoint.size, s.checkpoint.time_ns) for s in local}
    edges = set(bounds)
    sealed = {  # (stream, size) of the checkpoints that may have sealed their segment
        (f, s.checkpoint.size)
        for f, held in streams.items()
        for s in held
        if s.checkpoint.size in edges and s.checkpoint.size > f
    }
    groups: dict[int | None, list[SignedCheckpoint]] = {}
    for signed in anchored:  # by size, then time
        size = signed.checkpoint.size
        if (size, signed.checkpoint.time_ns) in have:
            continue
        at = bisect.bisect_right(bounds, size) - 1
        home = bounds[at] if at >= 0 else None
        if home == size and at > 0 and (bounds[at - 1], size) not in sealed:
            home = bounds[at - 1]
            sealed.add((home, size))
        groups.setdefault(home, []).append(signed)
    for home, found in groups.items():
        held = f"the anchor holds {len(found)} checkpoint{'s' if len(found) > 1 else ''} "
        held += f"({_sizes(found)})"
        if home is None:
            report.add(COMPLETENESS, str(ledger), f"{held} that no checkpoint stream holds")
        elif home not in streams:
            where = str(_stream_path(ledger, home))
            report.add(COMPLETENESS, where, f"checkpoint stream deleted: {held} written to it")
        else:
            where = str(_stream_path(ledger, home))
            message = f"checkpoints cut from this stream: {held} written to it and gone from it"
            report.add(COMPLETENESS, where, message)
    return {home for home in groups if home is not None}


def missing_streams(
    ledger: Path,
    extents: list[tuple[int, int | None]],
    streams: dict[int, list[SignedCheckpoint]],
    report: Report,
    known: Collection[int] = (),
) -> None:
    """Report the streams, and sealing checkpoints, that the segments show must exist.

    `extents` are the segments in order as (first, index after the last entry read, or
    None). A segment followed by another was sealed: its stream holds the checkpoint that
    sealed it, of the size where the next segment starts (or, if entries were removed
    from its end or a segment after it deleted, at least where its own entries end). A
    segment with entries has a stream. Streams in `known` were reported already.
    """
    nexts = [*(f for f, _ in extents[1:]), None][: len(extents)]
    for (first, end), nxt in zip(extents, nexts, strict=True):
        if first in known:
            continue
        has_entries = end is not None and end > first
        if first not in streams:
            if nxt is not None or has_entries:
                state = "was sealed" if nxt is not None else "holds entries"
                report.add(
                    COMPLETENESS,
                    str(_stream_path(ledger, first)),
                    f"checkpoint stream deleted: segment {first} {state}, and the writer "
                    "creates a segment's stream before the segment's first entry",
                )
            continue
        if nxt is None or end is None:
            continue
        need = min(end, nxt)
        if max((s.checkpoint.size for s in streams[first]), default=-1) < need:
            report.add(
                COMPLETENESS,
                str(_stream_path(ledger, first)),
                f"checkpoint cut from this stream: segment {first} was sealed (segment {nxt} "
                "follows it), but the checkpoint that sealed it, of size "
                f"{need} or more, is not in this stream (removed, or no longer valid)",
            )
