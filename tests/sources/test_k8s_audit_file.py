"""The audit log file tail: real files, real rotation while writing, real restarts and a
real kill -9; every written line is emitted exactly once, in order, with seq 1..N.

Audit lines are real captured events (audit2rbac's demo logs). Rotation is done the way
kube-apiserver's lumberjack does it (rename to a timestamped backup, new live file, gzip
the backup, remove the plain one) and the way logrotate does it (numbered backups,
delaycompress; copytruncate).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from audit_tail_helpers import (
    AUDIT_LINES,
    HeldSink,
    RotatingWriter,
    Sink,
    make_source,
    rotate,
    running,
    seqs_and_lines,
)

from logwarden.errors import InputError
from logwarden.rejects import Rejects

CHILD = Path(__file__).resolve().parent / "audit_tail_child.py"


def append(path: Path, lines: list[bytes]) -> list[tuple[bytes, int]]:
    """Append whole lines to `path`; return them with their line numbers in it."""
    first = path.read_bytes().count(b"\n") if path.exists() else 0
    with open(path, "ab") as fh:
        fh.write(b"".join(line + b"\n" for line in lines))
    return [(line, first + i + 1) for i, line in enumerate(lines)]


def state_of(state: Path) -> dict[str, object]:
    (path,) = state.glob("k8s_audit_file.*.json")
    value = json.loads(path.read_bytes())
    assert isinstance(value, dict)
    return value


# --- rotation while tailing ----------------------------------------------------------------


@pytest.mark.parametrize("style", ["lumberjack", "logrotate"])
def test_every_line_once_in_order_through_rotations(tmp_path: Path, style: str) -> None:
    live = tmp_path / "audit.log"
    live.touch()
    writer = RotatingWriter(live, AUDIT_LINES[:600], rotate_every=70, style=style)
    source = make_source(live, tmp_path / "state", batch_events=16)
    sink = Sink()
    with running(source, sink):
        writer.start()
        writer.finish()
        sink.wait_for(600)
    seqs, lines = seqs_and_lines(sink.records)
    assert seqs == list(range(1, 601))
    assert lines == writer.written
    assert writer.rotations == 8
    assert source.rotations_seen == 8
    assert (source.events, source.rejected, source.gaps) == (600, 0, 0)
    assert source.bytes_read == sum(len(line) + 1 for line in AUDIT_LINES[:600])
    assert source.last_event_ns == sink.records[-1].received_ns
    assert all(r.source == "k8s_audit" and r.instance == "apiserver" for r in sink.records)
    backups = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".gz"))
    assert len(backups) == (8 if style == "lumberjack" else 7)


def test_restart_mid_stream_with_rotations_while_down(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    live.touch()
    state = tmp_path / "state"
    writer = RotatingWriter(live, AUDIT_LINES[:700], rotate_every=60, pace_secs=0.002)
    first = Sink()
    with running(make_source(live, state, batch_events=8), first):
        writer.start()
        first.wait_for(150)
    down_at = writer.rotations
    second = Sink()
    wait = threading.Event()
    while writer.rotations < down_at + 2 and writer.is_alive():  # rotated and compressed
        wait.wait(0.005)
    source = make_source(live, state, batch_events=8)
    with running(source, second, resume_seq=len(first.records)):
        writer.finish()
        second.wait_for(700 - len(first.records))
    seqs, lines = seqs_and_lines(first.records + second.records)
    assert seqs == list(range(1, 701))
    assert lines == writer.written
    assert source.gaps == 0 and source.rejected == 0


def test_killed_in_emit_resumes_without_repeat_or_skip(tmp_path: Path) -> None:
    """kill -9 after the fake ledger stored a batch but before its position was saved;
    while down, the live file is rotated and its backup compressed."""
    live = tmp_path / "audit.log"
    live.touch()
    written = append(live, AUDIT_LINES[:300])
    state, store = tmp_path / "state", tmp_path / "ledger.txt"
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(live), str(state), str(store), "150"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert select.select([child.stdout], [], [], 30)[0], "the child did not store 150 records"
    assert child.stdout.readline() == "stored 150\n"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    stored = [line.split(b" ", 2) for line in store.read_bytes().splitlines()]
    assert [int(seq) for seq, _, _ in stored] == list(range(1, 151))
    assert state_of(state)["seq"] == 140  # the position lags the ledger by the killed batch

    backup = rotate(live)  # while down: renamed, compressed, a new live file
    assert backup.suffix == ".gz" and not backup.with_suffix("").exists()
    written += append(live, AUDIT_LINES[300:400])
    sink = Sink()
    source = make_source(live, state, batch_events=10)
    with running(source, sink, resume_seq=150):
        sink.wait_for(250)
    lines = [(raw, int(line)) for _, line, raw in stored] + seqs_and_lines(sink.records)[1]
    assert [r.seq for r in sink.records] == list(range(151, 401))
    assert lines == written
    assert source.rotations_seen == 1 and source.gaps == 0


def test_deleted_backup_while_down_is_reported_and_reading_goes_on(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    live.touch()
    state = tmp_path / "state"
    append(live, AUDIT_LINES[:50])
    first = Sink()
    with running(make_source(live, state), first):
        first.wait_for(50)
    lost = rotate(live)
    append(live, AUDIT_LINES[50:100])
    rotate(live, compress=False)
    append(live, AUDIT_LINES[100:130])
    lost.unlink()  # the backup holding the saved position is deleted (max backups)
    rejects = Rejects()
    sink = Sink()
    source = make_source(live, state, rejects)
    with running(source, sink, resume_seq=50):
        sink.wait_for(80)
    assert [r.seq for r in sink.records] == list(range(51, 131))
    assert [r.raw for r in sink.records] == AUDIT_LINES[50:130]
    assert source.gaps == 1 and rejects.count == 1
    assert rejects.first[0].where == f"{live}:50"
    assert "gone" in rejects.first[0].reason


# --- lines --------------------------------------------------------------------------------


def test_malformed_lines_counted_and_reported_with_path_and_line(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    good = AUDIT_LINES[:3]
    event_list = (
        b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
        + b",".join([AUDIT_LINES[3], b'{"kind":"Event"}', AUDIT_LINES[4]])
        + b"]}"
    )
    live.write_bytes(
        b"\n".join([good[0], b"not json", good[1], b"", event_list, b'{"kind":0}', good[2]]) + b"\n"
    )
    rejects = Rejects()
    sink = Sink()
    source = make_source(live, tmp_path / "state", rejects)
    with running(source, sink):
        sink.wait_for(5)
    assert [(r.raw, r.line) for r in sink.records] == [
        (good[0], 1),
        (good[1], 3),
        (AUDIT_LINES[3], 5),
        (AUDIT_LINES[4], 5),
        (good[2], 7),
    ]
    assert [r.seq for r in sink.records] == [1, 2, 3, 4, 5]
    assert source.rejected == 3 and rejects.count == 3
    assert [item.where for item in rejects.first] == [f"{live}:2", f"{live}:5", f"{live}:6"]
    assert "invalid JSON" in rejects.first[0].reason
    assert rejects.first[1].raw == '{"kind":"Event"}'


def test_partial_line_is_emitted_once_when_its_newline_arrives(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    line = AUDIT_LINES[7]
    live.write_bytes(AUDIT_LINES[6] + b"\n" + line[:100])
    sink = Sink()
    source = make_source(live, tmp_path / "state")
    with running(source, sink):
        sink.wait_for(1)
        with open(live, "ab") as fh:
            fh.write(line[100:200])
        with open(live, "ab") as fh:
            fh.write(line[200:] + b"\n" + AUDIT_LINES[8] + b"\n")
        sink.wait_for(3)
    assert [(r.raw, r.line, r.seq) for r in sink.records] == [
        (AUDIT_LINES[6], 1, 1),
        (line, 2, 2),
        (AUDIT_LINES[8], 3, 3),
    ]
    assert source.rejected == 0


def test_position_saved_after_each_durable_batch(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    append(live, AUDIT_LINES[:25])
    state = tmp_path / "state"
    sink = Sink()
    with running(make_source(live, state, batch_events=10), sink):
        sink.wait_for(25)
    saved = state_of(state)
    st = os.stat(live)
    assert saved["seq"] == 25 and saved["line"] == 25
    assert saved["offset"] == st.st_size
    assert (saved["device"], saved["inode"]) == (st.st_dev, st.st_ino)
    assert saved["head_len"] == 1024
    assert sink.batches == 3


def test_stop_while_emit_blocks_returns_after_it_with_the_batch_saved(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    append(live, AUDIT_LINES[:30])
    state = tmp_path / "state"
    held = HeldSink()
    with running(make_source(live, state, batch_events=10), held) as stop:
        assert held.entered.wait(10)
        stop.set()
        held.release()
    assert [r.seq for r in held.records] == list(range(1, 11))
    assert state_of(state)["seq"] == 10
    sink = Sink()
    with running(make_source(live, state, batch_events=10), sink, resume_seq=10):
        sink.wait_for(20)
    assert [r.raw for r in held.records + sink.records] == AUDIT_LINES[:30]


def test_start_at_end_skips_what_is_there(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    append(live, AUDIT_LINES[:10])
    sink = Sink()
    source = make_source(live, tmp_path / "state", start_at="end")
    with running(source, sink):
        size = live.stat().st_size
        wait = threading.Event()
        while source.bytes_read < size:  # positioned at the end
            assert wait.wait(0.005) is False
        new = append(live, AUDIT_LINES[10:12])
        sink.wait_for(2)
    assert [(r.raw, r.line) for r in sink.records] == new
    assert [r.seq for r in sink.records] == [1, 2]


# --- copytruncate ---------------------------------------------------------------------------


def _copytruncate_while_blocked(
    tmp_path: Path, *, keep_copy: bool
) -> tuple[Sink, Rejects, list[bytes]]:
    """Read 100 lines; while `emit` holds them, 20 more are written, the file is copied to
    audit.log.1 and truncated, and 30 new lines are written."""
    live = tmp_path / "audit.log"
    append(live, AUDIT_LINES[:100])
    sink = HeldSink()

    rejects = Rejects()
    with running(make_source(live, tmp_path / "state", rejects, batch_events=100), sink):
        assert sink.entered.wait(10)  # the first 100 lines are read and held by emit
        append(live, AUDIT_LINES[100:120])
        shutil.copyfile(live, tmp_path / "audit.log.1")
        os.truncate(live, 0)
        if not keep_copy:
            (tmp_path / "audit.log.1").unlink()
        append(live, AUDIT_LINES[120:150])
        sink.release()
        sink.wait_for(150 if keep_copy else 130)
    expected = AUDIT_LINES[:150] if keep_copy else AUDIT_LINES[:100] + AUDIT_LINES[120:150]
    return sink, rejects, expected


def test_copytruncate_finishes_the_copy_then_the_new_content(tmp_path: Path) -> None:
    sink, rejects, expected = _copytruncate_while_blocked(tmp_path, keep_copy=True)
    assert [r.raw for r in sink.records] == expected
    assert [r.seq for r in sink.records] == list(range(1, 151))
    assert [r.line for r in sink.records[100:]] == list(range(101, 121)) + list(range(1, 31))
    assert rejects.count == 1 and "copytruncate" in rejects.first[0].reason


def test_copytruncate_without_a_copy_rereads_from_the_start_and_says_so(tmp_path: Path) -> None:
    sink, rejects, expected = _copytruncate_while_blocked(tmp_path, keep_copy=False)
    assert [r.raw for r in sink.records] == expected
    assert [r.seq for r in sink.records] == list(range(1, 131))
    assert rejects.count == 1
    assert rejects.first[0].where == f"{tmp_path / 'audit.log'}:100"
    assert "may be lost" in rejects.first[0].reason


# --- the state and the ledger disagree --------------------------------------------------------


def test_state_ahead_of_the_ledger_is_an_error(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    append(live, AUDIT_LINES[:10])
    state = tmp_path / "state"
    sink = Sink()
    with running(make_source(live, state), sink):
        sink.wait_for(10)
    other = Sink()
    ahead = r"k8s_audit_file\.apiserver\.json.*up to 10.*only 5"
    with pytest.raises(InputError, match=ahead), running(make_source(live, state), other, 5):
        pass
    assert other.records == []


def test_missing_state_with_records_in_the_ledger_is_an_error(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    append(live, AUDIT_LINES[:10])
    sink = Sink()
    missing = r"holds 7 records.*k8s_audit_file\.apiserver\.json"
    source = make_source(live, tmp_path / "state")
    with pytest.raises(InputError, match=missing), running(source, sink, resume_seq=7):
        pass
    assert sink.records == []
