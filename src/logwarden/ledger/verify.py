"""The offline verifier behind `logwarden verify`: is this ledger intact and complete?

It needs only the standard library and `cryptography` (no msgspec, YAML or rich), so it
runs anywhere the ledger is copied. It checks, in one pass over the entries:

- every checkpoint note: well formed, signed by a trusted key (--key; else the ledger's
  own key, which proves only internal consistency), of the ledger's origin;
- checkpoint order in the streams (size never shrinks, time always grows: no rollback);
- no stream missing: every sealed segment's stream and the checkpoint that sealed it, and
  with the anchor every anchored checkpoint in a stream;
- split views: two signed checkpoints of one size with different roots (ledger + anchor);
- segments: named for their first entry, contiguous, none missing, none reordered;
- every frame and checksum, every entry's envelope;
- every checkpoint root, recomputed from the entries (which also proves each pair of
  successive checkpoints consistent);
- per-source sequence numbers: gaps, repeats, reordering;
- the tail: entries not covered by a signed checkpoint, checkpoints larger than the
  ledger (truncation), the anchor's newest checkpoint (truncation, rollback, deleted
  newest segment) and its copies of sealed segments (edits, deleted segments).
"""

from __future__ import annotations

import time
from pathlib import Path

from logwarden.ledger import layout
from logwarden.ledger._checkpoints import (
    anchor_rollbacks,
    load_anchored,
    load_local,
    missing_streams,
    split_views,
    unstreamed,
)
from logwarden.ledger._scan import PARALLEL_MIN_BYTES, Scanner
from logwarden.ledger.anchor import Anchor
from logwarden.ledger.checkpoint import SignedCheckpoint, newest_of
from logwarden.ledger.layout import LedgerError, LedgerInfo, list_indexed
from logwarden.ledger.note import NoteError, Verifier
from logwarden.ledger.report import COMPLETENESS, INTEGRITY, Report
from logwarden.ledger.segments import FRAME_HEAD, Header, read_frames

__all__ = ["verify_ledger"]


def verify_ledger(
    path: str | Path,
    *,
    keys: list[Verifier] | None = None,
    anchor: str | Path | None = None,
    max_age_secs: float | None = None,
    jobs: int | None = None,
    parallel_min_bytes: int = PARALLEL_MIN_BYTES,
) -> Report:
    """Check the ledger at `path` (see the module doc); every problem is in the report.

    `jobs` processes scan segments in parallel (default: one per core; 1 stays in this
    process), for ledgers of at least `parallel_min_bytes` of segments.
    """
    started = time.perf_counter()
    ledger = Path(path)
    report = Report(str(ledger))
    try:
        info = LedgerInfo.read(ledger)
        trusted = keys or [Verifier.parse(info.key)]
        anchored_dir = Anchor(Path(anchor)) if anchor is not None else None
    except (LedgerError, NoteError) as exc:
        report.add(INTEGRITY, str(ledger), str(exc))
        return report
    report.origin = info.origin
    report.anchor = str(anchor) if anchor is not None else ""
    report.keys = [k.encode() for k in trusted]
    report.keys_from_ledger = not keys
    segments = _segments(ledger, report)
    streams: dict[int, list[SignedCheckpoint]] = {}
    local = load_local(ledger, [f for f, _ in segments], trusted, info.origin, report, streams)
    report.recovered = sorted(
        {(*r, s.checkpoint.time_ns) for s in local if (r := s.checkpoint.recovered) is not None}
    )
    anchored = load_anchored(anchored_dir, trusted, info.origin, report) if anchored_dir else []
    split_views(local + anchored, report)
    after_rollback = anchor_rollbacks(anchored, report)
    vouching = [s for s in anchored if s.note not in after_rollback]
    scanner = Scanner(report, local + anchored, jobs, parallel_min_bytes, vouching)
    scanner.run(segments)
    report.entries = scanner.n
    report.segments = len(segments)
    report.checkpoints = len(local)
    report.anchored_checkpoints = len(anchored)
    _tail(report, local, anchored, scanner.matched, scanner.matched_anchored)
    known: set[int] = set()
    if anchored_dir is not None:
        bounds = _bounds(segments, anchored_dir)
        known = unstreamed(ledger, anchored, local, bounds, streams, report)
    missing_streams(ledger, scanner.extents, streams, report, known)
    if anchored_dir is not None:
        _anchored_segments(report, ledger, anchored_dir)
    _age(report, max_age_secs)
    report.seconds = time.perf_counter() - started
    return report


def _segments(ledger: Path, report: Report) -> list[tuple[int, Path]]:
    segments, strays = list_indexed(ledger / layout.SEGMENTS, layout.SEGMENT_SUFFIX)
    for stray in strays:
        report.add(INTEGRITY, str(stray), "unexpected file among the segments")
    if not segments:
        report.add(INTEGRITY, str(ledger / layout.SEGMENTS), "no segment files")
    return segments


def _removed(
    n: int, size: int, matched: int, how: str, whose: str
) -> tuple[str, tuple[int, int] | None]:
    """What is known of the entries of a signed tree of `size` missing from the `n` held:
    when the `n` match a checkpoint (`matched` = n), exactly the last ones ("", None);
    else that some of those after the last match are (what, their span)."""
    if matched >= n:
        return "", None
    verb = "is" if size - n == 1 else "are"
    known = f" (entries up to {matched - 1} match {whose})" if matched else ""
    what = f"{size - n} of entries {matched}..{size - 1} {verb} missing: {how}{known}"
    return what, (matched, size - 1)


def _bounds(segments: list[tuple[int, Path]], anchor: Anchor) -> list[int]:
    """Where the segments known (the ledger's, the anchor's copies) start, and where the
    newest one ends if it is sealed (only its anchored copy says: its frames are counted)."""
    copies = anchor.segment_files()
    bounds = {f for f, _ in segments} | {f for f, _ in copies}
    if copies and copies[-1][0] == max(bounds):
        end = _end_of(copies[-1][1], copies[-1][0])
        if end is not None:
            bounds.add(end)
    return sorted(bounds)


def _end_of(path: Path, first: int) -> int | None:
    """The index after the last entry of the segment file `path` (frame lengths only)."""
    try:
        data = path.read_bytes()
        offset = Header.decode(data).length
    except (OSError, ValueError):
        return None
    index = first
    while offset + FRAME_HEAD <= len(data):
        offset += FRAME_HEAD + int.from_bytes(data[offset : offset + 4], "big")
        if offset > len(data):
            break
        index += 1
    return index


def _tail(
    report: Report,
    local: list[SignedCheckpoint],
    anchored: list[SignedCheckpoint],
    matched: int,
    matched_anchored: int,
) -> None:
    """The end of the ledger against its newest checkpoints; `matched` is the size of the
    newest checkpoint the entries matched, `matched_anchored` of the anchor's newest."""
    n = report.entries
    if not local:
        report.add(INTEGRITY, report.ledger, "no valid signed checkpoint in the ledger")
    else:
        newest = newest_of(local)
        report.newest_size = newest.checkpoint.size
        report.newest_time_ns = newest.checkpoint.time_ns
        if newest.checkpoint.size > n:
            how = "entries were removed (truncated), or from among them"
            what, span = _removed(n, newest.checkpoint.size, matched, how, "a signed checkpoint")
            index = None if span else n
            if index is not None:
                what = f"entries {n}..{newest.checkpoint.size - 1} were removed (truncated)"
            report.add(
                INTEGRITY,
                newest.where,
                f"this checkpoint covers {newest.checkpoint.size} entries but the ledger holds "
                f"{n}: {what}",
                index,
                span,
            )
        elif newest.checkpoint.size < n:
            report.add(
                INTEGRITY,
                report.ledger,
                f"entries {newest.checkpoint.size}..{n - 1} are not covered by any signed "
                "checkpoint (appended after the last one, or a writer is still running)",
                newest.checkpoint.size,
            )
    if anchored:
        _against_anchor(report, local, anchored, matched_anchored)


def _against_anchor(
    report: Report, local: list[SignedCheckpoint], anchored: list[SignedCheckpoint], matched: int
) -> None:
    top = newest_of(anchored)
    size, when = top.checkpoint.size, top.checkpoint.time_ns or 0
    if size > report.entries:
        how = "truncated, rolled back, the newest segment deleted, or removed from among them"
        what, span = _removed(report.entries, size, matched, how, "a checkpoint the anchor holds")
        index = None if span else report.entries
        if index is not None:
            what = f"entries {index}..{size - 1} are missing (truncated, rolled back, or the "
            what += "newest segment deleted)"
        report.add(
            COMPLETENESS,
            top.where,
            f"the anchor holds a checkpoint of size {size} but the ledger holds "
            f"{report.entries} entries: {what}",
            index,
            span,
        )
    newest_local = max((s.checkpoint.time_ns or 0 for s in local), default=0)
    if when > newest_local and size <= report.entries:
        report.add(
            COMPLETENESS,
            top.where,
            "the anchor holds a newer checkpoint than the ledger's newest: the ledger's "
            "checkpoints were rolled back",
        )


def _anchored_segments(report: Report, ledger: Path, anchor: Anchor) -> None:
    for first, copy in anchor.segment_files():
        report.anchored_segments += 1
        local = ledger / layout.SEGMENTS / copy.name
        if not local.exists():
            report.add(
                COMPLETENESS,
                str(local),
                f"segment starting at entry {first} was deleted (the anchor has a copy: {copy})",
                first,
            )
            continue
        try:
            mine, theirs = local.read_bytes(), copy.read_bytes()
        except OSError as exc:
            report.add(INTEGRITY, str(copy), f"cannot read: {exc.strerror}")
            continue
        if mine != theirs:
            _differs(report, str(local), mine, theirs, first, copy)


def _differs(
    report: Report, where: str, mine: bytes, theirs: bytes, first: int, copy: Path
) -> None:
    """Report where a sealed segment differs from its anchored copy: header, first entry."""
    start = _header_length(theirs)
    if start is None:
        index = first
    else:
        if mine[:start] != theirs[:start]:
            report.add(INTEGRITY, where, f"the header differs from the anchored copy ({copy})")
            if _header_length(mine) != start:
                return
            mine = theirs[:start] + mine[start:]  # then compare the entries
            if mine == theirs:
                return
        index = _first_difference(mine, theirs, first, start)
    report.add(
        INTEGRITY,
        where,
        f"entry {index} differs from the anchored copy of this sealed segment ({copy})",
        index,
    )


def _header_length(data: bytes) -> int | None:
    try:
        return Header.decode(data).length
    except ValueError:
        return None


def _first_difference(mine: bytes, theirs: bytes, first: int, start: int) -> int:
    """The index of the first entry at which a segment differs from its anchored copy,
    the entries' frames starting at byte `start` of both."""
    at = _mismatch_offset(mine, theirs)
    index = first
    for offset, payload in read_frames(theirs, start):
        if offset + FRAME_HEAD + len(payload) > at:
            break
        index += 1
    return index


def _mismatch_offset(a: bytes, b: bytes, chunk: int = 1 << 16) -> int:
    at = 0
    limit = min(len(a), len(b))
    while at < limit and a[at : at + chunk] == b[at : at + chunk]:
        at += chunk
    while at < limit and a[at] == b[at]:
        at += 1
    return min(at, limit)


def _age(report: Report, max_age_secs: float | None) -> None:
    if max_age_secs is None or report.newest_time_ns is None:
        return
    age = (time.time_ns() - min(report.newest_time_ns, 1 << 63)) / 1e9
    if age > max_age_secs:
        report.add(
            COMPLETENESS,
            report.ledger,
            f"the newest checkpoint is {age:,.0f} s old (more than {max_age_secs:g} s): "
            "the writer stopped or the log is frozen",
        )
