"""What `logwarden verify` found: problems under two verdicts, integrity and completeness.

Integrity: what is there is what was signed (frames, checksums, signatures, roots,
segment order, no split view). Completeness: nothing is missing (no per-source sequence
gaps, no truncation against the anchor, no deleted segment). Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["COMPLETENESS", "INTEGRITY", "Problem", "Report"]

INTEGRITY = "integrity"
COMPLETENESS = "completeness"


@dataclass(frozen=True)
class Problem:
    """One thing wrong: its verdict, where (file, entry), and what.

    `index` is the entry the problem is about, when one entry can be named; `span` is the
    range of entries (first, last) a problem lies in when only the range is known (the
    entries a failing checkpoint covers beyond the last one that matched).
    """

    verdict: str
    where: str
    message: str
    index: int | None = None
    span: tuple[int, int] | None = None

    @property
    def start(self) -> int | None:
        return self.index if self.index is not None else (self.span[0] if self.span else None)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Report:
    """Everything `verify_ledger` learned about one ledger."""

    ledger: str
    origin: str = ""
    anchor: str = ""  # the anchor directory checked against, if any
    entries: int = 0
    segments: int = 0
    bytes: int = 0
    checkpoints: int = 0
    anchored_checkpoints: int = 0
    anchored_segments: int = 0
    newest_size: int | None = None
    newest_time_ns: int | None = None
    keys: list[str] = field(default_factory=list)
    keys_from_ledger: bool = False
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    #: entries (first, last, issue time of the checkpoint) a writer found unsigned when it
    #: reopened the ledger and signed then (its checkpoint's `recovered` line): the last
    #: records before a crash, or records someone added to the files while it was stopped
    recovered: list[tuple[int, int, int | None]] = field(default_factory=list)

    def add(
        self,
        verdict: str,
        where: str,
        message: str,
        index: int | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        self.problems.append(Problem(verdict, where, message, index, span))

    def of(self, verdict: str) -> list[Problem]:
        return [p for p in self.problems if p.verdict == verdict]

    @property
    def ok(self) -> bool:
        return not self.problems

    def first_bad(self, verdict: str) -> Problem | None:
        """The problem of a verdict that names the lowest entry, preferring a named entry
        over a range that starts lower only because no finer evidence exists; else the
        first problem found."""
        found = self.of(verdict)
        for candidates in ([p for p in found if p.index is not None], found):
            located = [p for p in candidates if p.start is not None]
            if located:
                return min(located, key=lambda p: p.start or 0)
        return found[0] if found else None
