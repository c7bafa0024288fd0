"""Byte formats of segment files and checkpoint streams: headers, frames, entries.

Both files are sequences of frames. A frame is

    length   4 bytes, big-endian: n, the length of the payload
    check    8 bytes: the first 8 bytes of SHA-256(payload)
    payload  n bytes

In a segment the payload is the Merkle leaf input, 0x00 || entry, so `check` is the
first 8 bytes of the entry's RFC 6962 leaf hash and the verifier gets the checksum for
free. In a checkpoint stream the payload is one signed checkpoint note. A frame whose
length runs past the end of the file or whose check does not match is bad: at the end
of the file that is a torn tail (a write cut short), anywhere else a damaged file.

An entry is the envelope followed by the record's raw bytes:

    version      1 byte, 0x01
    received_ns  8 bytes, big-endian: receive time, nanoseconds since the epoch
    seq          8 bytes, big-endian: per-source sequence number
    source_len   2 bytes, big-endian: a
    instance_len 2 bytes, big-endian: b
    source       a bytes, UTF-8
    instance     b bytes, UTF-8
    raw          the rest: the record as received

A segment starts with a header: the magic ``LWLSEG1\\n``, its first entry index (8 bytes),
a count k (1 byte), the k subtree roots of the tree before that index (32 bytes each,
largest subtree first: a writer resumes from them without rehashing old segments) and
the first 8 bytes of SHA-256 of all of the header before them. Standard library only.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "ENTRY_VERSION",
    "FRAME_HEAD",
    "MAGIC",
    "BadFrame",
    "Entry",
    "Header",
    "decode_entry",
    "encode_entry",
    "encode_frame",
    "envelope_prefix",
    "read_frames",
]

MAGIC = b"LWLSEG1\n"
ENTRY_VERSION = 1
#: Bytes before a frame's payload: length and check.
FRAME_HEAD = 12
_HEAD = struct.Struct(">I8s")
_ENVELOPE = struct.Struct(">BQQHH")
_TIMES = struct.Struct(">QQ")
#: Bytes of an entry before its source name.
ENVELOPE_FIXED = _ENVELOPE.size
_sha256 = hashlib.sha256


@dataclass(frozen=True)
class Header:
    """A segment header: its first entry index and the subtree roots before it."""

    first: int
    frontier: tuple[bytes, ...]
    length: int

    @staticmethod
    def encode(first: int, frontier: tuple[bytes, ...] | list[bytes]) -> bytes:
        body = MAGIC + struct.pack(">QB", first, len(frontier)) + b"".join(frontier)
        return body + _sha256(body).digest()[:8]

    @classmethod
    def decode(cls, buf: bytes | memoryview) -> Header:
        """Parse the header at the start of `buf`; raises ValueError with the reason."""
        if bytes(buf[:8]) != MAGIC:
            raise ValueError("not a ledger segment (bad magic)")
        if len(buf) < 17:
            raise ValueError("segment header cut short")
        first, k = struct.unpack_from(">QB", buf, 8)
        end = 17 + 32 * k
        if len(buf) < end + 8:
            raise ValueError("segment header cut short")
        if _sha256(buf[:end]).digest()[:8] != bytes(buf[end : end + 8]):
            raise ValueError("segment header checksum mismatch")
        hashes = tuple(bytes(buf[17 + 32 * i : 49 + 32 * i]) for i in range(k))
        if len(hashes) != first.bit_count():
            raise ValueError(f"segment header: {k} subtree roots for first index {first}")
        return cls(first, hashes, end + 8)


def envelope_prefix(source: str, instance: str) -> bytes:
    """The part of an entry after the times that only depends on where it came from."""
    s, i = source.encode(), instance.encode()
    if len(s) > 0xFFFF or len(i) > 0xFFFF:
        raise ValueError("source or instance name longer than 65535 bytes")
    return struct.pack(">HH", len(s), len(i)) + s + i


def encode_entry(source: str, instance: str, seq: int, received_ns: int, raw: bytes) -> bytes:
    """The entry bytes (without the 0x00 leaf prefix) of one record."""
    return (
        bytes([ENTRY_VERSION])
        + _TIMES.pack(received_ns, seq)
        + envelope_prefix(source, instance)
        + raw
    )


def encode_frame(payload: bytes) -> bytes:
    """One frame around `payload`."""
    return _HEAD.pack(len(payload), _sha256(payload).digest()[:8]) + payload


@dataclass(frozen=True)
class Entry:
    """One decoded ledger entry."""

    source: str
    instance: str
    seq: int
    received_ns: int
    raw: bytes


def decode_entry(entry: bytes | memoryview) -> Entry:
    """Decode entry bytes (without the 0x00 prefix); raises ValueError if malformed."""
    if len(entry) < ENVELOPE_FIXED:
        raise ValueError("entry shorter than its envelope")
    version, received, seq, a, b = _ENVELOPE.unpack_from(entry, 0)
    if version != ENTRY_VERSION:
        raise ValueError(f"unknown entry version {version}")
    p = ENVELOPE_FIXED
    if len(entry) < p + a + b:
        raise ValueError("entry shorter than its source and instance names")
    try:
        source = bytes(entry[p : p + a]).decode()
        instance = bytes(entry[p + a : p + a + b]).decode()
    except UnicodeDecodeError:
        raise ValueError("source or instance name is not UTF-8") from None
    return Entry(source, instance, seq, received, bytes(entry[p + a + b :]))


@dataclass
class BadFrame:
    """Why reading frames stopped before the end of the data."""

    offset: int
    reason: str


def read_frames(
    buf: bytes, offset: int, out: list[BadFrame] | None = None
) -> Iterator[tuple[int, memoryview]]:
    """The frames of `buf` from `offset`: (frame offset, payload). Stops at the first bad one.

    When a frame is bad (cut short, or its check fails), a `BadFrame` is appended to `out`.
    """
    view = memoryview(buf)
    end = len(buf)
    unpack = _HEAD.unpack_from
    while offset < end:
        if end - offset < FRAME_HEAD:
            _bad(out, offset, f"frame header cut short ({end - offset} of 12 bytes)")
            return
        n, check = unpack(buf, offset)
        start = offset + FRAME_HEAD
        if start + n > end:
            _bad(out, offset, f"frame of {n} bytes runs past the end of the file")
            return
        payload = view[start : start + n]
        if _sha256(payload).digest()[:8] != check:
            _bad(out, offset, "checksum mismatch")
            return
        yield offset, payload
        offset = start + n


def _bad(out: list[BadFrame] | None, offset: int, reason: str) -> None:
    if out is not None:
        out.append(BadFrame(offset, reason))
