"""The offline verifier behind `logwarden verify`: is this ledger intact and complete?

It needs only the standard library and `cryptography` (no msgspec, YAML or rich), so it
runs anywhere the ledger is copied. It checks, in one pass over the entries:

- every checkpoint note: well formed, signed by a trusted key (--key; else the ledger's
  own key, which proves only internal consistency), of the ledger's origin;
- checkpoint order in the streams (size never shrinks, time always grows: no rollback);
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
from logwarden.ledger._checkpoints import load_anchored, load_local, split_views
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
    report.keys = [k.encode() for k in trusted]
    report.keys_from_ledger = not keys
    segments = _segments(ledger, report)
    local = load_local(ledger, [f for f, _ in segments], trusted, info.origin, report)
    anchored = load_anchored(anchored_dir, trusted, info.origin, report) if anchored_dir else []
    split_views(local + anchored, report)
    scanner = Scanner(report, local + anchored, jobs, parallel_min_bytes)
    scanner.run(segments)
    report.entries = scanner.n
    report.segments = len(segments)
    report.checkpoints = len(local)
    report.anchored_checkpoints = len(anchored)
    _tail(report, local, anchored)
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


def _tail(report: Report, local: list[SignedCheckpoint], anchored: list[SignedCheckpoint]) -> None:
    n = report.entries
    if not local:
        report.add(INTEGRITY, report.ledger, "no valid signed checkpoint in the ledger")
    else:
        newest = newest_of(local)
        report.newest_size = newest.checkpoint.size
        report.newest_time_ns = newest.checkpoint.time_ns
        if newest.checkpoint.size > n:
            report.add(
                INTEGRITY,
                newest.where,
                f"this checkpoint covers {newest.checkpoint.size} entries but the ledger holds "
                f"{n}: entries {n}..{newest.checkpoint.size - 1} were removed (truncated)",
                n,
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
        _against_anchor(report, local, anchored)


def _against_anchor(
    report: Report, local: list[SignedCheckpoint], anchored: list[SignedCheckpoint]
) -> None:
    top = newest_of(anchored)
    size, when = top.checkpoint.size, top.checkpoint.time_ns or 0
    if size > report.entries:
        report.add(
            COMPLETENESS,
            top.where,
            f"the anchor holds a checkpoint of size {size} but the ledger holds "
            f"{report.entries} entries: entries {report.entries}..{size - 1} are missing "
            "(truncated, rolled back, or the newest segment deleted)",
            report.entries,
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
            index = _first_difference(mine, theirs, first)
            report.add(
                INTEGRITY,
                str(local),
                f"entry {index} differs from the anchored copy of this sealed segment ({copy})",
                index,
            )


def _first_difference(mine: bytes, theirs: bytes, first: int) -> int:
    """The index of the first entry at which a segment differs from its anchored copy."""
    at = _mismatch_offset(mine, theirs)
    try:
        start = Header.decode(theirs).length
    except ValueError:
        return first
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
