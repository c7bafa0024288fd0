"""The verifier's pass over the entries: segment scans joined into one tree, roots compared.

Each segment is scanned on its own (`_segscan.scan_segment`), in worker processes when
the ledger is large enough to gain from it (one per core); the results are joined here in
order. Joining checks that each segment starts where the previous one ended, that its
header's subtree roots equal the tree the previous segment ended with (which makes the
independent scans one chain), carries per-source sequence numbers across segments, and
compares the root at every checkpoint size with the signed roots. Since each checkpoint
root is recomputed from the entries, two successive checkpoints that both match are
consistent: the older tree is a prefix of the newer one.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from logwarden.ledger._segscan import LIMIT, SegmentScan, describe_gap, scan_segment
from logwarden.ledger.checkpoint import SignedCheckpoint
from logwarden.ledger.report import COMPLETENESS, INTEGRITY, Report

__all__ = ["PARALLEL_MIN_BYTES", "Scanner"]

#: Below this many bytes of segments the scan stays in one process.
PARALLEL_MIN_BYTES = 32 << 20
_TORN_ADVICE = (
    "; the rest of the segment cannot be read (a torn tail if this is the end of the "
    "ledger: reopen it for writing to repair)"
)


class Scanner:
    """Joins segment scans and compares roots with checkpoints (see module doc)."""

    def __init__(
        self,
        report: Report,
        checkpoints: list[SignedCheckpoint],
        jobs: int | None = None,
        parallel_min_bytes: int = PARALLEL_MIN_BYTES,
        anchored: list[SignedCheckpoint] | None = None,
    ) -> None:
        """`checkpoints` are all valid ones; `anchored`, those of them the anchor holds."""
        self.report = report
        self.jobs = jobs or os.cpu_count() or 1
        self.parallel_min_bytes = parallel_min_bytes
        self.frontier: list[bytes] = []
        self.n = 0
        self.seqs: dict[bytes, int] = {}
        self.by_size: dict[int, list[SignedCheckpoint]] = {}
        for signed in checkpoints:
            self.by_size.setdefault(signed.checkpoint.size, []).append(signed)
        self.checked: set[int] = set()
        self.matched = 0  # size of the newest checkpoint the entries matched
        # the same for the anchor's checkpoints: a writer restarted by whoever controls
        # the host signs what it finds, so only the anchor's say what was there before
        self.anchored = {s.note for s in anchored or ()}
        self.matched_anchored = 0
        #: per segment, in order: (first index by name, index after its last entry read,
        #: or None when the segment could not be read)
        self.extents: list[tuple[int, int | None]] = []
        self.mismatches = 0
        self.counts: dict[str, int] = {}

    def run(self, segments: list[tuple[int, Path]]) -> None:
        """Scan every segment (in order of their names) and join the results."""
        targets = self._targets(segments)
        scans = self._scans(segments, targets)
        for (first, path), scan, wanted in zip(segments, scans, targets, strict=True):
            self._join(first, Path(path), scan, wanted)
        self._finish()

    def _targets(self, segments: list[tuple[int, Path]]) -> list[list[int]]:
        sizes = sorted(self.by_size)
        bounds = [*(f for f, _ in segments[1:]), None][: len(segments)]
        return [
            [s for s in sizes if s >= first and (end is None or s <= end)]
            for (first, _), end in zip(segments, bounds, strict=True)
        ]

    def _scans(
        self, segments: list[tuple[int, Path]], targets: list[list[int]]
    ) -> Iterator[SegmentScan]:
        paths = [str(p) for _, p in segments]
        total = sum(_size(p) for p in paths)
        if self.jobs < 2 or len(paths) < 2 or total < self.parallel_min_bytes:
            yield from map(scan_segment, paths, targets)
            return
        method = "fork" if threading.active_count() == 1 else "spawn"
        ctx = multiprocessing.get_context(method)
        with ProcessPoolExecutor(max_workers=min(self.jobs, len(paths)), mp_context=ctx) as pool:
            yield from pool.map(scan_segment, paths, targets)

    # -- joining ---------------------------------------------------------------------------

    def _join(self, first: int, path: Path, scan: SegmentScan, targets: list[int]) -> None:
        report = self.report
        report.bytes += scan.size
        if scan.header is None:
            report.add(
                INTEGRITY, str(path), f"{scan.error} (entries from {self.n} unreadable)", self.n
            )
            self.extents.append((first, None))
            return
        header = scan.header
        if header.first != first:
            report.add(
                INTEGRITY, str(path), f"header says it starts at entry {header.first}", first
            )
        if header.first == self.n:
            if tuple(self.frontier) != header.frontier and header.first:
                scan = self._bad_header(path, scan, targets)
        elif header.first > self.n:
            self._missing_before(path, header.first)
            self._unchecked(self.n, header.first, path)
            self.matched = header.first
        else:
            report.add(
                INTEGRITY,
                str(path),
                f"starts at entry {header.first}, inside the previous segment (which ends "
                f"at {self.n - 1}): entries inserted before it, or segments reordered",
                span=(min(self.matched, header.first), self.n - 1),
            )
            self.matched = header.first
            self.matched_anchored = min(self.matched_anchored, header.first)
        self._sequences(scan)
        for kind, where, message, index in scan.found:
            verdict = COMPLETENESS if kind == "sequence" else INTEGRITY
            report.add(verdict, where, message + (_TORN_ADVICE if kind == "torn" else ""), index)
        for kind, count in scan.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + max(0, count - LIMIT)
        for size in sorted(scan.roots):
            self._compare(size, scan.roots[size])
        self.n, self.frontier = scan.end, scan.frontier
        self.extents.append((first, scan.end))

    def _bad_header(self, path: Path, scan: SegmentScan, targets: list[int]) -> SegmentScan:
        """A header whose subtree roots differ from the tree of the entries before it.

        When those entries match a signed checkpoint of exactly that size, they are what
        was signed and the header is what changed: the segment is scanned again from the
        computed roots, so its entries are checked against their checkpoints as they are.
        Otherwise the entries since the last matching checkpoint, or the header, changed.
        """
        first = self.n
        if self.matched == first:
            self.report.add(
                INTEGRITY,
                str(path),
                "header subtree roots were altered: they do not match the entries before "
                f"it, which match the signed checkpoint of size {first} (no entry is named; "
                "the segment was checked from the roots computed from those entries)",
            )
            return scan_segment(str(path), targets, self.frontier)
        self.report.add(
            INTEGRITY,
            str(path),
            "header subtree roots do not match the entries before it: entries "
            f"{self.matched}..{first - 1} differ from what the writer hashed, or the "
            "header was altered",
            span=(self.matched, first - 1),
        )
        return scan

    def _missing_before(self, path: Path, first: int) -> None:
        """Entries before segment `first` are missing: exactly `n..first - 1` when the
        entries held match a signed checkpoint up to the end, else some after the match."""
        n, matched = self.n, self.matched
        if matched >= n:
            self.report.add(
                COMPLETENESS,
                str(path),
                f"entries {n}..{first - 1} are missing: a segment was deleted, or entries "
                "were removed from the end of the one before",
                n,
            )
            return
        count = "1 entry" if first - n == 1 else f"{first - n} entries"
        verb = "is" if first - n == 1 else "are"
        known = f"entries up to {matched - 1} match a signed checkpoint" if matched else ""
        self.report.add(
            COMPLETENESS,
            str(path),
            f"{count} of {matched}..{first - 1} {verb} missing: a segment was deleted, or "
            "entries were removed from the segment before, from its end or from among them"
            + (f" ({known})" if known else ""),
            span=(matched, first - 1),
        )

    def _unchecked(self, start: int, stop: int, path: Path) -> None:
        """Signed checkpoints inside missing entries cannot be matched: each is a problem."""
        for size in sorted(s for s in self.by_size if start < s <= stop and s not in self.checked):
            self.checked.add(size)
            for signed in self.by_size[size]:
                self.report.add(
                    INTEGRITY,
                    signed.where,
                    f"this signed checkpoint covers entries up to {size - 1}, but the "
                    f"entries from {start} are missing before {path.name}: entries "
                    f"{self.matched}..{size - 1} cannot be checked against it",
                    span=(self.matched, size - 1),
                )

    def _sequences(self, scan: SegmentScan) -> None:
        seqs = self.seqs
        for key, (seq, index, offset) in scan.first_seq.items():
            last = seqs.get(key, 0)
            if seq != last + 1:
                count = self.counts["sequence-join"] = self.counts.get("sequence-join", 0) + 1
                if count <= LIMIT:
                    where = f"{scan.path}@{offset}"
                    message = describe_gap(key, index, last, seq)
                    self.report.add(COMPLETENESS, where, message, index)
        seqs.update(scan.last_seq)

    def _compare(self, size: int, root: bytes) -> None:
        if size in self.checked:
            return
        self.checked.add(size)
        # sizes come in increasing order: the last matches below this one
        local_start, anchored_start = self.matched, self.matched_anchored
        for signed in self.by_size.get(size, ()):
            anchored = signed.note in self.anchored
            if signed.checkpoint.root == root:
                self.matched = max(self.matched, size)
                if anchored:
                    self.matched_anchored = max(self.matched_anchored, size)
                continue
            self.mismatches += 1
            if self.mismatches > 1:
                continue  # once entries stop matching, every later checkpoint fails too
            start = anchored_start if anchored else local_start
            if start >= size:  # the tree of 0 entries, or nothing matched below it
                self.report.add(
                    INTEGRITY,
                    signed.where,
                    f"this signed checkpoint (size {size}) does not match the tree of the "
                    f"first {size} entries",
                )
                continue
            self.report.add(
                INTEGRITY,
                signed.where,
                f"entries {start}..{size - 1} do not match this signed checkpoint (size "
                f"{size}): an entry in that range was changed, inserted, removed or moved",
                span=(start, size - 1),
            )

    def _finish(self) -> None:
        """Report what the pass counted but did not list one by one."""
        for kind, extra in self.counts.items():
            if extra > 0 and kind != "sequence-join":
                verdict = COMPLETENESS if kind == "sequence" else INTEGRITY
                self.report.add(verdict, self.report.ledger, f"{extra} more {kind} problems")
        if self.mismatches > 1:
            self.report.add(
                INTEGRITY,
                self.report.ledger,
                f"{self.mismatches - 1} later checkpoints do not match the entries either",
            )


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
