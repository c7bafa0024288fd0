"""One segment, checked on its own: the unit of work of the verifier (one per process).

A segment's header holds the subtree roots of the tree before its first entry, so a
segment can be checked independently: starting from those roots, the scan checks every
frame and checksum, rebuilds the tree over its entries, takes the root at every
checkpoint size that falls in it, and tracks per-source sequence numbers. The roots in
the header are not trusted: the verifier checks afterwards that each header's roots equal
the tree the previous segment ended with, so the chain is as strong as one pass.

The loop is written for speed (inlined tree, no per-entry objects). Standard library only.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from logwarden.ledger.merkle import fold
from logwarden.ledger.segments import ENTRY_VERSION, Header

__all__ = ["LIMIT", "SegmentScan", "scan_segment"]

#: A frame's head and the envelope of its entry: length, check, 0x00, version, received,
#: seq, source and instance lengths (34 bytes).
_FRAME = struct.Struct(">I8sBBQQHH")
_MIN_PAYLOAD = 22  # 0x00, version, received, seq, two name lengths
#: Problems of one kind listed one by one per segment; the rest are only counted.
LIMIT = 50

#: (kind, where, message, entry index)
Found = tuple[str, str, str, int]


@dataclass
class SegmentScan:
    """What the scan of one segment found."""

    path: str
    size: int = 0
    header: Header | None = None
    error: str = ""
    end: int = 0  # entry index after the last entry read
    frontier: list[bytes] = field(default_factory=list)
    roots: dict[int, bytes] = field(default_factory=dict)
    first_seq: dict[bytes, tuple[int, int, int]] = field(default_factory=dict)
    last_seq: dict[bytes, int] = field(default_factory=dict)
    found: list[Found] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, where: str, message: str, index: int) -> None:
        count = self.counts[kind] = self.counts.get(kind, 0) + 1
        if count <= LIMIT:
            self.found.append((kind, where, message, index))


def scan_segment(path: str, targets: list[int], frontier: list[bytes] | None = None) -> SegmentScan:
    """Check the segment file `path`; take the roots at the tree sizes in `targets`.

    The tree starts from the header's subtree roots, or from `frontier` when given (the
    roots the verifier computed, for a header it found altered).
    """
    scan = SegmentScan(path)
    try:
        with open(path, "rb") as fh:
            buf = fh.read()
    except OSError as exc:
        scan.error = f"cannot read: {exc.strerror}"
        return scan
    scan.size = len(buf)
    try:
        header = Header.decode(buf)
    except ValueError as exc:
        scan.error = str(exc)
        return scan
    if frontier is not None:
        header = Header(header.first, tuple(frontier), header.length)
    scan.header = header
    wanted = sorted(t for t in targets if t >= header.first)
    _frames(scan, buf, header, wanted)
    return scan


def _frames(scan: SegmentScan, buf: bytes, header: Header, wanted: list[int]) -> None:
    view = memoryview(buf)
    end = len(buf)
    sha = hashlib.sha256
    unpack_frame = _FRAME.unpack_from
    stack = list(header.frontier)
    n = header.first
    last_seq = scan.last_seq
    wanted.append(-1)
    w = 0
    if wanted[0] == n:
        scan.roots[n] = fold(stack)
        w = 1
    target = wanted[w]
    offset = header.length
    key, key_len, key_seq = b"", -1, 0
    while offset < end:
        if end - offset < 12 + _MIN_PAYLOAD:
            scan.add("torn", f"{scan.path}@{offset}", f"entry {n}: a frame cut short", n)
            break
        length, check, zero, version, _received, seq, a, b = unpack_frame(buf, offset)
        start = offset + 12
        stop = start + length
        if stop > end or length < _MIN_PAYLOAD:
            msg = f"entry {n}: a frame length ({length}) that does not fit"
            scan.add("torn", f"{scan.path}@{offset}", msg, n)
            break
        h = sha(view[start:stop]).digest()
        if not h.startswith(check) or zero or version != ENTRY_VERSION or 22 + a + b > length:
            _bad_entry(scan, offset, n, not h.startswith(check), stop == end)
        # the key is (name lengths, source, instance); runs of one source skip the dict
        if a + b == key_len and buf.startswith(key, start + 18):
            if seq != key_seq + 1:
                _gap(scan, offset, n, key, key_seq, seq)
            key_seq = seq
        else:
            if key_len >= 0:
                last_seq[key] = key_seq
            key = buf[start + 18 : start + 22 + a + b]
            key_len, key_seq = a + b, seq
            last = last_seq.get(key)
            if last is None:
                scan.first_seq[key] = (seq, n, offset)
            elif seq != last + 1:
                _gap(scan, offset, n, key, last, seq)
        stack.append(h)
        m = n
        while m & 1:
            right = stack.pop()
            stack[-1] = sha(b"\x01" + stack[-1] + right).digest()
            m >>= 1
        n += 1
        if n == target:
            scan.roots[n] = fold(stack)
            w += 1
            target = wanted[w]
        offset = stop
    if key_len >= 0:
        last_seq[key] = key_seq
    scan.end = n
    scan.frontier = stack


def _bad_entry(scan: SegmentScan, offset: int, index: int, checksum: bool, last: bool) -> None:
    what = "checksum mismatch" if checksum else "malformed envelope"
    if last and checksum:
        what += " (the last frame: a torn tail, or damage)"
    scan.add("entry", f"{scan.path}@{offset}", f"entry {index}: {what}", index)


def describe_gap(key: bytes, index: int, last: int, seq: int) -> str:
    """The message for a sequence number that does not follow `last`.

    `key` is the entry's name lengths (4 bytes), source and instance, as in the entry.
    """
    a = int.from_bytes(key[:2], "big")
    source = key[4 : 4 + a].decode(errors="replace")
    instance = key[4 + a :].decode(errors="replace")
    if seq > last + 1:
        what = f"{seq - last - 1} record(s) missing before it (seq {last + 1}..{seq - 1})"
    else:
        what = f"out of order or repeated (the previous record had seq {last})"
    return f"entry {index}: source {source!r} instance {instance!r} seq {seq}: {what}"


def _gap(scan: SegmentScan, offset: int, index: int, key: bytes, last: int, seq: int) -> None:
    scan.add("sequence", f"{scan.path}@{offset}", describe_gap(key, index, last, seq), index)
