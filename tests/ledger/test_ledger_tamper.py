"""One test per tamper class of issue 4, each on a real ledger of real audit logs.

The ledger holds the two captured audit logs and Falco's k8s_audit test traces, appended
file by file (a checkpoint after each), in 128 KiB segments with an anchor. Each test
copies it, does what an attacker would, and checks `verify_ledger` catches it under the
right verdict and names the first bad entry.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest
from ledger_helpers import (
    build_ledger,
    frame_offset,
    locate,
    read_segment,
    real_records,
    segments,
    stream_frames,
    u32,
    write_segment,
)

from logwarden.ledger import layout, note
from logwarden.ledger.checkpoint import Checkpoint
from logwarden.ledger.report import COMPLETENESS, INTEGRITY, Report
from logwarden.ledger.segments import Header, decode_entry, encode_entry, encode_frame
from logwarden.ledger.verify import verify_ledger
from logwarden.ledger.writer import LedgerWriter

SIGNER = note.generate("ledger-test.logwarden.invalid/log")
KEY = SIGNER.verifier()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    base = tmp_path_factory.mktemp("built")
    size = build_ledger(base / "ledger", SIGNER, real_records(), anchor=base / "anchor")
    return base, size


@pytest.fixture
def copy(built: tuple[Path, int], tmp_path: Path) -> tuple[Path, Path, int]:
    base, size = built
    shutil.copytree(base / "ledger", tmp_path / "ledger")
    shutil.copytree(base / "anchor", tmp_path / "anchor")
    return tmp_path / "ledger", tmp_path / "anchor", size


def check(
    ledger: Path, anchor: Path | None = None, keys: list[note.Verifier] | None = None
) -> Report:
    report = verify_ledger(ledger, keys=keys or [KEY], anchor=anchor)
    for problem in report.problems:  # a range of entries is never empty
        assert problem.span is None or problem.span[0] <= problem.span[1], problem
    return report


def first_bad(report: Report, verdict: str) -> int | None:
    problem = report.first_bad(verdict)
    assert problem is not None, report.problems
    return problem.index


def test_the_untouched_ledger_verifies(copy: tuple[Path, Path, int]) -> None:
    ledger, anchor, size = copy
    report = check(ledger, anchor)
    assert report.ok, report.problems
    assert report.entries == size > 800
    assert report.segments > 4
    assert report.anchored_segments == report.segments - 1
    assert report.checkpoints >= len({r.instance for r in real_records()})


def test_the_parallel_scan_finds_the_same(copy: tuple[Path, Path, int]) -> None:
    ledger, _, _ = copy
    path, pos = locate(ledger, 700)
    data = bytearray(path.read_bytes())
    data[frame_offset(path, pos) + 200] ^= 0x01
    path.write_bytes(bytes(data))
    one = verify_ledger(ledger, keys=[KEY], jobs=1)
    two = verify_ledger(ledger, keys=[KEY], jobs=2, parallel_min_bytes=0)
    assert [str(p) for p in one.problems] == [str(p) for p in two.problems]
    assert first_bad(two, INTEGRITY) == 700


def test_flipped_byte(copy: tuple[Path, Path, int]) -> None:
    ledger, _, _ = copy
    path, pos = locate(ledger, 321)
    data = bytearray(path.read_bytes())
    offset = frame_offset(path, pos)
    data[offset + 12 + u32(bytes(data), offset) - 10] ^= 0x20  # in the record's raw bytes
    path.write_bytes(bytes(data))
    report = check(ledger)
    assert first_bad(report, INTEGRITY) == 321
    assert "entry 321: checksum mismatch" in str(report.first_bad(INTEGRITY))
    assert not report.of(COMPLETENESS)


def _edit(ledger: Path, index: int) -> None:
    """Change the user of entry `index` and fix its frame's checksum, as an attacker would."""
    path, pos = locate(ledger, index)
    header, payloads = read_segment(path)
    e = decode_entry(payloads[pos][1:])
    raw = e.raw.replace(b'"username":"', b'"username":"x', 1)
    assert raw != e.raw
    payloads[pos] = b"\x00" + encode_entry(e.source, e.instance, e.seq, e.received_ns, raw)
    write_segment(path, header, payloads)


def test_edited_record(copy: tuple[Path, Path, int]) -> None:
    ledger, anchor, _ = copy
    _edit(ledger, 400)
    report = check(ledger)
    problem = report.first_bad(INTEGRITY)
    assert problem is not None and problem.span is not None
    assert problem.span[0] <= 400 <= problem.span[1]
    assert "do not match this signed checkpoint" in problem.message
    # the anchored copy of the sealed segment pins the entry exactly
    exact = [p for p in check(ledger, anchor).problems if "anchored copy" in p.message]
    assert [p.index for p in exact] == [400]


def test_deleted_record(copy: tuple[Path, Path, int]) -> None:
    ledger, _, _ = copy
    path, pos = locate(ledger, 500)
    header, payloads = read_segment(path)
    del payloads[pos]
    write_segment(path, header, payloads)
    report = check(ledger)
    assert report.of(INTEGRITY)
    gap = report.first_bad(COMPLETENESS)
    assert gap is not None and gap.index == 500
    assert "1 record(s) missing" in gap.message


def test_inserted_record(copy: tuple[Path, Path, int]) -> None:
    ledger, _, _ = copy
    path, pos = locate(ledger, 600)
    header, payloads = read_segment(path)
    forged = encode_entry("k8s_audit", "forged.log", 1, 0, b'{"auditID":"forged"}')
    payloads.insert(pos, b"\x00" + forged)
    write_segment(path, header, payloads)
    report = check(ledger)
    problem = report.first_bad(INTEGRITY)
    assert problem is not None and problem.span is not None
    assert problem.span[0] <= 600 <= problem.span[1]
    assert "changed, inserted, removed or moved" in problem.message


def test_swapped_records(copy: tuple[Path, Path, int]) -> None:
    ledger, _, _ = copy
    path, pos = locate(ledger, 650)
    header, payloads = read_segment(path)
    payloads[pos], payloads[pos + 1] = payloads[pos + 1], payloads[pos]
    write_segment(path, header, payloads)
    report = check(ledger)
    problem = report.first_bad(INTEGRITY)
    assert problem is not None and problem.span is not None
    assert problem.span[0] <= 650 <= problem.span[1]
    order = report.first_bad(COMPLETENESS)
    assert order is not None and order.index == 650
    assert "out of order" in order.message or "missing" in order.message


def _last_filled(ledger: Path) -> tuple[int, Path]:
    return next((f, p) for f, p in reversed(segments(ledger)) if read_segment(p)[1])


def test_truncated_tail(copy: tuple[Path, Path, int]) -> None:
    ledger, anchor, size = copy
    _, path = _last_filled(ledger)
    header, payloads = read_segment(path)
    cut = min(3, len(payloads))
    write_segment(path, header, payloads[:-cut])
    report = check(ledger)
    assert first_bad(report, INTEGRITY) == size - cut
    assert "were removed (truncated)" in str(report.first_bad(INTEGRITY))
    assert first_bad(check(ledger, anchor), COMPLETENESS) == size - cut


def test_deleted_newest_segment_is_caught_with_an_anchor(copy: tuple[Path, Path, int]) -> None:
    ledger, anchor, _ = copy
    first, _ = _last_filled(ledger)
    for f, path in segments(ledger):
        if f >= first:  # the newest segment with entries, its checkpoints, any empty one after
            path.unlink()
            (ledger / layout.CHECKPOINTS / path.with_suffix(".chk").name).unlink()
    assert check(ledger).ok  # on its own the shortened ledger is consistent ...
    report = check(ledger, anchor)  # ... the anchor's newest checkpoint shows what is gone
    assert first_bad(report, COMPLETENESS) == first
    assert "the anchor holds a checkpoint" in str(report.first_bad(COMPLETENESS))


def test_deleted_middle_segment(copy: tuple[Path, Path, int]) -> None:
    ledger, _, _ = copy
    first, path = segments(ledger)[2]
    path.unlink()
    report = check(ledger)
    assert first_bad(report, COMPLETENESS) == first
    assert "a segment was deleted" in str(report.first_bad(COMPLETENESS))


def test_rolled_back_checkpoint(copy: tuple[Path, Path, int]) -> None:
    ledger, _, _ = copy
    streams = sorted((ledger / layout.CHECKPOINTS).iterdir())
    old = stream_frames(streams[0])[1]
    with open(streams[-1], "ab") as fh:  # an old checkpoint presented as the newest
        fh.write(encode_frame(old))
    report = check(ledger)
    assert any("rolled back" in p.message for p in report.of(INTEGRITY))


def test_checkpoints_rolled_back_by_deletion_are_caught_with_the_anchor(
    copy: tuple[Path, Path, int],
) -> None:
    ledger, anchor, _ = copy
    stream = sorted((ledger / layout.CHECKPOINTS).iterdir())[-1]
    frames = stream_frames(stream)
    assert len(frames) >= 2
    stream.write_bytes(b"".join(encode_frame(f) for f in frames[:-1]))  # the newest one gone
    report = check(ledger, anchor)
    assert any("were rolled back" in p.message for p in report.of(COMPLETENESS))


def test_split_view(copy: tuple[Path, Path, int]) -> None:
    ledger, anchor, size = copy
    # the key holder signs a second tree of the same size (shown to someone else)
    other = Checkpoint(SIGNER.name, size, b"\x07" * 32, ("time 1",)).sign(SIGNER)
    (anchor / "checkpoints" / layout.anchor_checkpoint_name(size, 1)).write_bytes(other)
    report = check(ledger, anchor)
    assert any("split view" in p.message for p in report.of(INTEGRITY))


def test_forged_signature(copy: tuple[Path, Path, int]) -> None:
    ledger, _, _ = copy
    stream = sorted((ledger / layout.CHECKPOINTS).iterdir())[1]
    frames = stream_frames(stream)
    text = frames[-1].decode()
    root = text.split("\n")[2]
    forged = base64.b64encode(b"\x01" * 32).decode()
    frames[-1] = text.replace(f"\n{root}\n", f"\n{forged}\n").encode()
    stream.write_bytes(b"".join(encode_frame(f) for f in frames))
    report = check(ledger)
    assert any("invalid signature" in p.message for p in report.of(INTEGRITY))


def test_wrong_key(copy: tuple[Path, Path, int], tmp_path: Path) -> None:
    ledger, _, _ = copy
    other = note.generate(SIGNER.name)
    report = check(ledger, keys=[other.verifier()])
    assert any("not signed by a trusted key" in p.message for p in report.of(INTEGRITY))
    assert any("no valid signed checkpoint" in p.message for p in report.of(INTEGRITY))
    # a ledger rewritten and re-signed with the attacker's own key passes only its own key
    forged = tmp_path / "forged"
    build_ledger(forged, other, real_records()[:50])
    assert check(forged, keys=[other.verifier()]).ok
    assert verify_ledger(forged).keys_from_ledger
    assert not check(forged).ok


def test_damaged_header_of_a_reordered_segment(copy: tuple[Path, Path, int]) -> None:
    ledger, _, _ = copy
    (a, pa), (_, pb) = segments(ledger)[1:3]
    data_a, data_b = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(data_b)  # swap the contents of two segments, names kept
    pb.write_bytes(data_a)
    report = check(ledger)
    assert any("header says it starts" in p.message for p in report.of(INTEGRITY))
    assert first_bad(report, INTEGRITY) == a


def test_signer_is_never_written_into_the_ledger(copy: tuple[Path, Path, int]) -> None:
    ledger, anchor, _ = copy
    secret = base64.b64encode(SIGNER.seed).decode()
    for path in [*ledger.rglob("*"), *anchor.rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert SIGNER.seed not in data and secret.encode() not in data
            assert b"PRIVATE+KEY" not in data


def _stream(ledger: Path, first: int) -> Path:
    return ledger / layout.CHECKPOINTS / layout.index_name(first, layout.STREAM_SUFFIX)


@pytest.mark.parametrize("position", [0, 1])
def test_a_deleted_checkpoint_stream(copy: tuple[Path, Path, int], position: int) -> None:
    ledger, anchor, _ = copy
    stream = _stream(ledger, segments(ledger)[position][0])
    stream.unlink()  # its checkpoints gone; the later ones still cover every entry
    alone = check(ledger)
    assert not alone.of(INTEGRITY)
    assert [p.where for p in alone.problems] == [str(stream)]
    assert "checkpoint stream deleted: segment" in alone.problems[0].message
    anchored = check(ledger, anchor)  # the anchor holds copies of what was in it
    assert not anchored.of(INTEGRITY)
    assert [p.where for p in anchored.problems] == [str(stream)]
    assert "checkpoint stream deleted: the anchor holds" in anchored.problems[0].message


def test_a_sealing_checkpoint_cut_from_its_stream(copy: tuple[Path, Path, int]) -> None:
    ledger, anchor, _ = copy
    stream = _stream(ledger, segments(ledger)[0][0])
    frames = stream_frames(stream)
    assert len(frames) > 1
    stream.write_bytes(b"".join(encode_frame(f) for f in frames[:-1]))
    alone = check(ledger)
    assert [p.where for p in alone.problems] == [str(stream)]
    assert "checkpoint cut from this stream: segment 0 was sealed" in alone.problems[0].message
    anchored = check(ledger, anchor)
    assert [p.where for p in anchored.problems] == [str(stream)]
    assert "checkpoints cut from this stream: the anchor holds" in anchored.problems[0].message


class _Rec(NamedTuple):
    source: str
    instance: str
    seq: int
    received_ns: int
    raw: bytes


def _append(ledger: Path, anchor: Path, count: int) -> int:
    """Restart the writer, as logwarden does on its next start, and append `count` records
    of a new instance in one batch (it signs a checkpoint on opening if one is due, and on
    closing); returns the ledger's size."""
    raws = [r.raw for r in real_records()[:count]]
    batch = [_Rec("k8s_audit", "restarted.log", i, 1 << 60, raw) for i, raw in enumerate(raws, 1)]
    with LedgerWriter(ledger, SIGNER, anchor=anchor) as writer:
        writer.append_records(batch)
        return writer.size


def test_a_rewound_stream_and_an_edit_are_placed_after_the_last_match(
    copy: tuple[Path, Path, int],
) -> None:
    ledger, anchor, _ = copy
    size = _append(ledger, anchor, 40)
    stream = _stream(ledger, segments(ledger)[-1][0])
    frames = stream_frames(stream)
    stream.write_bytes(b"".join(encode_frame(f) for f in frames[:-1]))  # the newest one cut
    kept = Checkpoint.parse(note.parse_note(frames[-2])[0]).size
    edited = size - 20
    assert kept < edited
    _edit(ledger, edited)
    _append(ledger, anchor, 0)  # the restarted writer signs the edited entries
    report = check(ledger, anchor)
    problem = report.first_bad(INTEGRITY)
    assert problem is not None and problem.span == (kept, size - 1), report.problems
    assert [p.where for p in report.of(COMPLETENESS)] == [str(stream)]
    assert "checkpoints cut from this stream" in report.of(COMPLETENESS)[0].message


def test_an_altered_header_names_no_entry(copy: tuple[Path, Path, int]) -> None:
    ledger, anchor, _ = copy
    first, path = segments(ledger)[3]
    header, payloads = read_segment(path)
    roots = list(Header.decode(header).frontier)
    roots[0] = bytes([roots[0][0] ^ 0x01]) + roots[0][1:]
    write_segment(path, Header.encode(first, roots), payloads)  # its checksum recomputed
    alone, anchored = check(ledger), check(ledger, anchor)
    for report in (alone, anchored):
        assert not report.of(COMPLETENESS)
        assert "header subtree roots were altered" in report.problems[0].message
        # the entries are what was signed: none is named, no checkpoint fails
        assert all(p.index is None and p.span is None for p in report.problems), report.problems
    assert len(alone.problems) == 1
    assert "the header differs from the anchored copy" in anchored.problems[1].message
    assert len(anchored.problems) == 2


def test_a_record_deleted_from_the_open_segment_is_placed_after_the_last_match(
    copy: tuple[Path, Path, int],
) -> None:
    ledger, anchor, _ = copy
    before = _append(ledger, anchor, 40) - 40  # the checkpoint on reopening is of this size
    deleted = before + 20
    path, pos = locate(ledger, deleted)
    header, payloads = read_segment(path)
    del payloads[pos]
    write_segment(path, header, payloads)
    for report in (check(ledger), check(ledger, anchor)):
        problem = report.first_bad(INTEGRITY)
        assert problem is not None and problem.index is None, report.problems
        assert problem.span == (before, before + 39)
        assert "or from among them" in problem.message  # not only "truncated"
        assert first_bad(report, COMPLETENESS) == deleted
    missing = check(ledger, anchor).of(COMPLETENESS)
    assert [p.span for p in missing if "the anchor holds" in p.message] == [(before, before + 39)]


def test_a_record_deleted_from_a_sealed_segment_without_a_sequence_gap(
    copy: tuple[Path, Path, int],
) -> None:
    ledger, _, _ = copy
    (first, path), (end, _) = segments(ledger)[-2:]  # one record per source instance here
    deleted = first + 9
    header, payloads = read_segment(path)
    del payloads[9]
    write_segment(path, header, payloads)
    report = check(ledger)
    assert report.first_bad(INTEGRITY) is not None
    assert report.first_bad(INTEGRITY).span == (deleted, deleted)  # type: ignore[union-attr]
    gap = report.first_bad(COMPLETENESS)  # no sequence gap: the next segment starts late
    assert gap is not None and gap.index is None
    assert gap.span == (deleted, end - 1)


def test_a_rollback_the_restarted_writer_signed_over_shows_in_the_anchor(
    copy: tuple[Path, Path, int],
) -> None:
    ledger, anchor, _ = copy
    size = _append(ledger, anchor, 40)
    first, path = segments(ledger)[-1]
    stream = _stream(ledger, first)
    frames = stream_frames(stream)
    kept = Checkpoint.parse(note.parse_note(frames[-2])[0]).size
    header, payloads = read_segment(path)
    write_segment(path, header, payloads[: kept - first])  # back to the checkpoint before
    stream.write_bytes(b"".join(encode_frame(f) for f in frames[:-1]))
    _append(ledger, anchor, 10)  # the writer goes on from there, anchoring what it signs
    report = check(ledger, anchor)
    rollback = [p for p in report.of(COMPLETENESS) if p.message.startswith("rolled back")]
    assert len(rollback) == 1 and f"after one of size {size}" in rollback[0].message
    # the anchor's checkpoints signed after the rollback do not vouch for the entries
    problem = report.first_bad(COMPLETENESS)
    assert problem is not None and problem.span == (kept, size - 1), report.problems


def test_every_segment_and_checkpoint_deleted(copy: tuple[Path, Path, int]) -> None:
    ledger, anchor, _ = copy
    for directory in (layout.SEGMENTS, layout.CHECKPOINTS):
        for path in (ledger / directory).iterdir():
            path.unlink()
    report = check(ledger)
    assert [p.message for p in report.problems] == [
        "no segment files",
        "no valid signed checkpoint in the ledger",
    ]
    streams = [p for p in check(ledger, anchor).problems if "stream deleted" in p.message]
    assert len(streams) == len(list((anchor / layout.SEGMENTS).iterdir())) + 1
