"""The writer and the sink: indices, reopening, torn tails, checkpoints in time, anchors."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from ledger_helpers import real_records, segments, stream_frames

from logwarden.cli.verify import print_report
from logwarden.ledger import layout, note
from logwarden.ledger.checkpoint import open_checkpoint
from logwarden.ledger.layout import LedgerError
from logwarden.ledger.segments import encode_entry, encode_frame
from logwarden.ledger.sink import LedgerSink
from logwarden.ledger.verify import verify_ledger
from logwarden.ledger.writer import LedgerWriter, WriterOptions

SIGNER = note.generate("writer-test.logwarden.invalid/log")
KEY = SIGNER.verifier()
RECORDS = real_records()[:200]


def test_indices_are_contiguous_across_batches_and_reopen(tmp_path: Path) -> None:
    with LedgerWriter(tmp_path / "l", SIGNER) as w:
        assert w.append_records(RECORDS[:10]) == 0
        assert w.append_records(RECORDS[10:30]) == 10
        assert w.append_records([]) == 30
    with LedgerWriter(tmp_path / "l", SIGNER) as w:
        assert w.size == 30
        r = RECORDS[30]
        assert w.append(r.source, r.instance, r.seq, r.received_ns, r.raw) == 30
    report = verify_ledger(tmp_path / "l", keys=[KEY])
    assert report.ok and report.entries == 31


def test_a_new_ledger_is_signed_at_size_zero_and_names_its_key(tmp_path: Path) -> None:
    LedgerWriter(tmp_path / "l", SIGNER, origin="example.com/audit").close()
    info = layout.LedgerInfo.read(tmp_path / "l")
    assert info == layout.LedgerInfo("example.com/audit", KEY.encode())
    report = verify_ledger(tmp_path / "l", keys=[KEY])
    assert report.ok and report.newest_size == 0


def test_one_writer_at_a_time_and_only_with_the_ledger_key(tmp_path: Path) -> None:
    with LedgerWriter(tmp_path / "l", SIGNER), pytest.raises(LedgerError, match="another writer"):
        LedgerWriter(tmp_path / "l", SIGNER)
    with pytest.raises(LedgerError, match="signed by"):
        LedgerWriter(tmp_path / "l", note.generate("other"))


def test_segments_seal_into_the_anchor_with_every_checkpoint(tmp_path: Path) -> None:
    options = WriterOptions(segment_bytes=16 << 10)
    with LedgerWriter(tmp_path / "l", SIGNER, anchor=tmp_path / "a", options=options) as w:
        for i in range(0, 200, 20):
            w.append_records(RECORDS[i : i + 20])
    assert w.problems == []
    local = segments(tmp_path / "l")
    anchored = sorted((tmp_path / "a" / "segments").iterdir())
    assert len(local) > 3 and [p.name for p in anchored] == [p.name for _, p in local[:-1]]
    assert all(
        p.read_bytes() == (tmp_path / "l" / "segments" / p.name).read_bytes() for p in anchored
    )
    streams = (tmp_path / "l" / "checkpoints").iterdir()
    issued = sum(len(stream_frames(s)) for s in streams)
    assert len(list((tmp_path / "a" / "checkpoints").iterdir())) == issued
    assert verify_ledger(tmp_path / "l", keys=[KEY], anchor=tmp_path / "a").ok


def test_checkpoints_every_interval_while_records_arrive_and_a_heartbeat_when_idle(
    tmp_path: Path,
) -> None:
    options = WriterOptions(checkpoint_interval_secs=0.05, heartbeat_secs=0.2)
    sink = LedgerSink(tmp_path / "l", SIGNER, options=options)
    sink.start()
    try:
        for i in range(6):
            assert sink.process(RECORDS[i * 5 : i * 5 + 5])
            time.sleep(0.06)
        busy = _count(tmp_path / "l")
        assert busy >= 4  # one per interval while records arrive
        time.sleep(0.5)  # idle: heartbeats keep coming, so a frozen log shows
        assert _count(tmp_path / "l") >= busy + 2
    finally:
        sink.shutdown()
    assert sink.last_index == 29 and sink.errors == []
    report = verify_ledger(tmp_path / "l", keys=[KEY], max_age_secs=60)
    assert report.ok and report.newest_size == 30
    stale = verify_ledger(tmp_path / "l", keys=[KEY], max_age_secs=0)
    assert any("frozen" in p.message for p in stale.problems)


def _count(ledger: Path) -> int:
    return sum(len(stream_frames(s)) for s in (ledger / "checkpoints").iterdir())


def test_the_sink_drains_on_shutdown_and_reports_failure(tmp_path: Path) -> None:
    sink = LedgerSink(tmp_path / "l", SIGNER)
    sink.start()
    assert sink.process(RECORDS[:50])
    sink.shutdown()  # checkpoints the 50 records before closing
    assert verify_ledger(tmp_path / "l", keys=[KEY]).newest_size == 50
    assert not sink.process(RECORDS[:1]) and "not started" in sink.errors[-1]


def test_a_torn_tail_is_cut_kept_reported_and_the_ledger_verifies(tmp_path: Path) -> None:
    with LedgerWriter(tmp_path / "l", SIGNER) as w:
        w.append_records(RECORDS[:20])
    _, seg = segments(tmp_path / "l")[-1]
    good = seg.read_bytes()
    with open(seg, "ab") as fh:  # a batch that was being written when the power went
        fh.write(b"\x00\x00\x05\x00" + b"\x99" * 300)
    assert not verify_ledger(tmp_path / "l", keys=[KEY]).ok  # never silently accepted
    w = LedgerWriter(tmp_path / "l", SIGNER)
    w.close()
    assert len(w.repairs) == 1 and "torn tail of 304 bytes" in w.repairs[0]
    assert seg.read_bytes() == good
    kept = list((tmp_path / "l" / "torn").iterdir())
    assert len(kept) == 1 and kept[0].read_bytes().endswith(b"\x99" * 300)
    assert verify_ledger(tmp_path / "l", keys=[KEY]).ok


def test_damage_under_a_signed_checkpoint_is_not_repaired(tmp_path: Path) -> None:
    with LedgerWriter(tmp_path / "l", SIGNER) as w:
        w.append_records(RECORDS[:20])
    _, seg = segments(tmp_path / "l")[-1]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    seg.write_bytes(bytes(data))
    with pytest.raises(LedgerError, match="refusing to append"):
        LedgerWriter(tmp_path / "l", SIGNER)
    assert seg.read_bytes() == bytes(data)  # evidence left as it was


def test_unacknowledged_tail_after_a_crash_gets_a_checkpoint_on_reopen(tmp_path: Path) -> None:
    options = WriterOptions(checkpoint_interval_secs=3600)
    w = LedgerWriter(tmp_path / "l", SIGNER, options=options)
    w.append_records(RECORDS[:10])
    os.close(w._lock_fd)  # the process dies: no close, no final checkpoint
    w._lock_fd = -1
    uncovered = verify_ledger(tmp_path / "l", keys=[KEY])
    assert any("not covered by any signed checkpoint" in p.message for p in uncovered.problems)
    LedgerWriter(tmp_path / "l", SIGNER).close()
    assert verify_ledger(tmp_path / "l", keys=[KEY]).ok


def test_a_ledger_without_its_description_is_never_overwritten(tmp_path: Path) -> None:
    with LedgerWriter(tmp_path / "l", SIGNER) as w:
        w.append_records(RECORDS[:20])
    (tmp_path / "l" / layout.LEDGER_FILE).unlink()
    before = {p: p.read_bytes() for p in (tmp_path / "l").rglob("*") if p.is_file()}
    with pytest.raises(LedgerError, match="refusing to create a new ledger"):
        LedgerWriter(tmp_path / "l", SIGNER)
    assert {p: p.read_bytes() for p in before} == before


def test_a_crash_while_a_ledger_is_made_reopens(tmp_path: Path) -> None:
    ledger = tmp_path / "l"
    LedgerWriter(ledger, SIGNER, origin="example.com/audit").close()
    (ledger / layout.LEDGER_FILE).unlink()  # written last: as if killed just before it
    with LedgerWriter(ledger, SIGNER, origin="example.com/audit") as w:
        assert w.append_records(RECORDS[:5]) == 0
    assert verify_ledger(ledger, keys=[KEY]).ok


def test_a_ledger_whose_files_were_removed_is_not_made_again(tmp_path: Path) -> None:
    ledger = tmp_path / "l"
    with LedgerWriter(ledger, SIGNER) as w:
        w.append_records(RECORDS[:5])
    for name in (layout.SEGMENTS, layout.CHECKPOINTS):
        for path in (ledger / name).iterdir():
            path.unlink()
    with pytest.raises(LedgerError, match="no segments or checkpoints"):
        LedgerWriter(ledger, SIGNER)


@pytest.mark.parametrize("origin", ["", "two\nlines", " padded", "tab\there"])
def test_an_origin_a_checkpoint_cannot_carry_is_refused(tmp_path: Path, origin: str) -> None:
    with pytest.raises(LedgerError, match="invalid origin"):
        LedgerWriter(tmp_path / "l", SIGNER, origin=origin)
    assert not (tmp_path / "l" / layout.LEDGER_FILE).exists()


def test_bad_options_are_refused() -> None:
    with pytest.raises(LedgerError, match="fsync"):
        WriterOptions(fsync="sometimes")
    with pytest.raises(LedgerError):
        WriterOptions(segment_bytes=10)


def test_entries_found_unsigned_at_a_restart_are_signed_as_recovered(tmp_path: Path) -> None:
    ledger = tmp_path / "l"
    with LedgerWriter(ledger, SIGNER) as w:
        w.append_records(RECORDS[:5])
    last = sorted((ledger / layout.SEGMENTS).iterdir())[-1]
    with open(last, "ab") as fh:  # no key needed: a crash before the checkpoint leaves this too
        r = RECORDS[5]
        entry = encode_entry(r.source, r.instance, r.seq, r.received_ns, r.raw)
        fh.write(encode_frame(b"\x00" + entry))
    with LedgerWriter(ledger, SIGNER) as w:
        assert any(r.startswith("entries 5..5 were stored but not covered") for r in w.repairs)
    streams = sorted((ledger / layout.CHECKPOINTS).iterdir())
    notes = [open_checkpoint(p, [KEY], "") for s in streams for p in stream_frames(s)]
    assert [n.checkpoint.recovered for n in notes if n.checkpoint.recovered] == [(5, 5)]
    report = verify_ledger(ledger, keys=[KEY])  # signed, but named as signed late
    assert report.ok and [r[:2] for r in report.recovered] == [(5, 5)]
    out = io.StringIO()
    print_report(report, out)
    assert "recovered     entries 5..5 were signed when the writer restarted" in out.getvalue()
