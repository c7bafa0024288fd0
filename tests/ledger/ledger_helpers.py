"""Helpers for the ledger tests: real records, a real ledger, and frame surgery on it."""

from __future__ import annotations

import struct
from pathlib import Path

from logwarden.ledger import layout
from logwarden.ledger.note import Signer
from logwarden.ledger.segments import Header, encode_frame, read_frames
from logwarden.ledger.writer import LedgerWriter, WriterOptions
from logwarden.normalize import k8s_audit
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources.files import FileSource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AUDIT = FIXTURES / "audit"
TRACES = FIXTURES / "falco" / "falcosecurity-falco@0.34.1" / "test" / "trace_files" / "k8s_audit"
#: Real audit logs: two captured logs and Falco's k8s_audit test traces.
INPUTS = [AUDIT / "demo.log", AUDIT / "demo-full-v1beta1-2017.log", *sorted(TRACES.glob("*.json"))]


def real_records(inputs: list[Path] | None = None) -> list[Record]:
    """The records `logwarden detect` (and `ledger import`) read from the real audit logs.

    (One of Falco's traces, fal_01_003.json, is malformed on purpose and is rejected.)
    """
    out: list[Record] = []
    for path in inputs or INPUTS:  # one after another (read together, they would be merged)
        FileSource([str(path)], k8s_audit.FORMAT, Rejects()).run(out.append)
    return out


def build_ledger(
    path: Path,
    signer: Signer,
    records: list[Record],
    *,
    anchor: Path | None = None,
    segment_bytes: int = 64 << 10,
) -> int:
    """Append `records` in batches of 50, with a checkpoint after each input file."""
    options = WriterOptions(segment_bytes=segment_bytes)
    with LedgerWriter(path, signer, anchor=anchor, options=options) as writer:
        batch: list[Record] = []
        for record in records:
            if batch and record.instance != batch[-1].instance:
                writer.append_records(batch)
                writer.checkpoint()
                batch = []
            elif len(batch) == 50:
                writer.append_records(batch)
                batch = []
            batch.append(record)
        writer.append_records(batch)
        return writer.size


def segments(ledger: Path) -> list[tuple[int, Path]]:
    return layout.list_indexed(ledger / layout.SEGMENTS, layout.SEGMENT_SUFFIX)[0]


def read_segment(path: Path) -> tuple[bytes, list[bytes]]:
    """A segment's header bytes and its frames' payloads."""
    data = path.read_bytes()
    header = Header.decode(data)
    return data[: header.length], [bytes(p) for _, p in read_frames(data, header.length)]


def write_segment(path: Path, header: bytes, payloads: list[bytes]) -> None:
    path.write_bytes(header + b"".join(encode_frame(p) for p in payloads))


def locate(ledger: Path, index: int) -> tuple[Path, int]:
    """The segment holding entry `index`, and the entry's position in it."""
    for first, path in reversed(segments(ledger)):
        if first <= index:
            return path, index - first
    raise AssertionError(index)


def frame_offset(path: Path, position: int) -> int:
    data = path.read_bytes()
    offsets = [o for o, _ in read_frames(data, Header.decode(data).length)]
    return offsets[position]


def stream_frames(path: Path) -> list[bytes]:
    return [bytes(p) for _, p in read_frames(path.read_bytes(), 0)]


def u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from(">I", data, offset)[0])
