"""Where each source left off: what a restarting service reads back from its ledger.

A source that restarts must neither repeat nor skip records, and the ledger is the one
place that knows what was made durable: `last_seqs` gives, for every (source, instance)
that has entries, the `seq` of its newest entry. `recent_entries` yields the entries of
the newest segments, for a stage that drops what a sender retries after a crash.
`entries_between` yields the entries of a range of indices, for detection to take up the
records it had not seen when the service stopped.

Reading the whole ledger at every start would cost as much as verifying it, so the marks
of each sealed segment (which never changes again) are kept in ``LEDGER/index/`` as
``<first>.marks`` (JSON, derived data, rebuilt from the segment when missing or stale;
`logwarden verify` does not read them). Only the active segment is read each time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from logwarden.ledger import layout
from logwarden.ledger.layout import LedgerError, index_name, list_indexed, write_atomic
from logwarden.ledger.segments import Entry, Header, decode_entry, read_frames

__all__ = ["INDEX", "entries_between", "last_seqs", "recent_entries"]

#: The directory of derived per-segment marks inside a ledger.
INDEX = "index"
_MARKS = ".marks"

Marks = dict[tuple[str, str], int]


def last_seqs(ledger: Path) -> Marks:
    """The newest `seq` stored for each (source, instance) in the ledger."""
    segments, _ = list_indexed(ledger / layout.SEGMENTS, layout.SEGMENT_SUFFIX)
    marks: Marks = {}
    for n, (first, path) in enumerate(segments):
        sealed = n < len(segments) - 1
        found = _sealed_marks(ledger, first, path) if sealed else _scan(path)
        for key, seq in found.items():
            if seq > marks.get(key, 0):
                marks[key] = seq
    return marks


def recent_entries(ledger: Path, segments: int = 2) -> Iterator[Entry]:
    """The entries of the newest `segments` segments, oldest first."""
    found, _ = list_indexed(ledger / layout.SEGMENTS, layout.SEGMENT_SUFFIX)
    for _first, path in found[-segments:]:
        yield from _entries(path)


def entries_between(ledger: Path, first: int, last: int) -> Iterator[tuple[int, Entry]]:
    """`(index, entry)` for the entries `first` to `last` (inclusive), oldest first, reading
    only the segments that hold them (a segment being appended to is read as it was)."""
    found, _ = list_indexed(ledger / layout.SEGMENTS, layout.SEGMENT_SUFFIX)
    for n, (start, path) in enumerate(found):
        end = found[n + 1][0] - 1 if n + 1 < len(found) else last
        if end < first or start > last:
            continue
        for index, entry in enumerate(_entries(path), start):
            if index > last:
                return
            if index >= first:
                yield index, entry


def _entries(path: Path) -> Iterator[Entry]:
    data = path.read_bytes()
    try:
        header = Header.decode(data)
    except ValueError as exc:
        raise LedgerError(f"{path}: {exc}") from None
    for offset, payload in read_frames(data, header.length):
        try:
            yield decode_entry(payload[1:])
        except ValueError as exc:
            raise LedgerError(f"{path}@{offset}: {exc}") from None


def _scan(path: Path) -> Marks:
    marks: Marks = {}
    for entry in _entries(path):
        key = (entry.source, entry.instance)
        if entry.seq > marks.get(key, 0):
            marks[key] = entry.seq
    return marks


def _sealed_marks(ledger: Path, first: int, segment: Path) -> Marks:
    index = ledger / INDEX / index_name(first, _MARKS)
    size = segment.stat().st_size
    try:
        doc = json.loads(index.read_bytes())
        if doc["segment_bytes"] == size:
            return {(s, i): int(q) for s, i, q in doc["marks"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or stale: derived data, made again below
    marks = _scan(segment)
    body = {"segment_bytes": size, "marks": [[s, i, q] for (s, i), q in sorted(marks.items())]}
    try:
        index.parent.mkdir(exist_ok=True)
        write_atomic(index, json.dumps(body).encode())
    except OSError:
        pass  # a read-only ledger still answers, it only reads the segment again next time
    return marks
