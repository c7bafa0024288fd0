"""The audit log file tail: real files, real rotation while writing, real restarts and a
real kill -9; every written line is emitted exactly once, in order, with seq 1..N.

Audit lines are real captured events (audit2rbac's demo logs). Rotation is done the way
kube-apiserver's lumberjack does it (rename to a timestamped backup, new live file, gzip
the backup, remove the plain one) and the way logrotate does it (numbered backups,
delaycompress; copytruncate), and by logrotate itself when it is installed.
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
import time
import zlib
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


@pytest.mark.parametrize("style", ["lumberjack", "logrotate", "dateext"])
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
    assert len(backups) == (7 if style == "logrotate" else 8)


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


@pytest.mark.parametrize("compress", [False, True])
def test_a_dated_backup_made_while_stopped_is_read_to_its_end(
    tmp_path: Path, compress: bool
) -> None:
    """logrotate with ``dateext`` (as Red Hat's distributions configure it) rotates the log
    to audit.log-<date>-<time> while logwarden is stopped: the lines written to it after
    the saved position are read from it, then the new live file."""
    live = tmp_path / "audit.log"
    state = tmp_path / "state"
    append(live, AUDIT_LINES[:50])
    first = Sink()
    with running(make_source(live, state), first):
        first.wait_for(50)
    append(live, AUDIT_LINES[50:80])
    backup = rotate(live, style="dateext", compress=compress)
    assert backup.name.startswith("audit.log-")
    append(live, AUDIT_LINES[80:100])
    sink = Sink()
    source = make_source(live, state)
    with running(source, sink, resume_seq=50):
        sink.wait_for(50)
        time.sleep(0.05)  # nothing more comes
    assert [r.raw for r in sink.records] == AUDIT_LINES[50:100]
    assert [r.line for r in sink.records] == [*range(51, 81), *range(1, 21)]
    assert source.gaps == 0 and source.rotations_seen == 1


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


def test_start_at_end_holds_across_a_restart_before_the_first_record(tmp_path: Path) -> None:
    """Started at the end, stopped before any line came: the lines written while stopped
    are read by the next run (it does not start at the end again)."""
    live = tmp_path / "audit.log"
    state = tmp_path / "state"
    append(live, AUDIT_LINES[:10])
    first = make_source(live, state, start_at="end")
    with running(first, Sink()):
        wait = threading.Event()
        while first.bytes_read < live.stat().st_size:  # positioned at the end
            assert wait.wait(0.005) is False
    new = append(live, AUDIT_LINES[10:15])
    sink = Sink()
    with running(make_source(live, state, start_at="end"), sink):
        sink.wait_for(5)
    assert [(r.raw, r.line) for r in sink.records] == new
    assert [r.seq for r in sink.records] == [1, 2, 3, 4, 5]


# --- copytruncate ---------------------------------------------------------------------------


def _copytruncate_while_blocked(
    tmp_path: Path, *, keep_copy: bool, end: int = 150
) -> tuple[Sink, Rejects, list[bytes]]:
    """Read 100 lines; while `emit` holds them, 20 more are written, the file is copied to
    audit.log.1 and truncated, and new lines up to line `end` are written (from 270 on,
    the file grows back past the point read)."""
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
        append(live, AUDIT_LINES[120:end])
        sink.release()
        sink.wait_for(end if keep_copy else end - 20)
        time.sleep(0.05)  # nothing more comes
    expected = AUDIT_LINES[:end] if keep_copy else AUDIT_LINES[:100] + AUDIT_LINES[120:end]
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


@pytest.mark.parametrize("keep_copy", [True, False])
def test_copytruncate_grown_back_past_the_point_read_between_two_polls(
    tmp_path: Path, keep_copy: bool
) -> None:
    """A fast writer: after the truncation the file holds more than the 100 lines read
    before it. Its new content is not taken as growth of the old one (which would skip
    its first lines, reject a cut one and read the rest twice)."""
    sink, rejects, expected = _copytruncate_while_blocked(tmp_path, keep_copy=keep_copy, end=400)
    assert [r.raw for r in sink.records] == expected
    assert [r.seq for r in sink.records] == list(range(1, len(expected) + 1))
    assert [r.line for r in sink.records[100:]] == [
        *(range(101, 121) if keep_copy else ()),
        *range(1, 281),
    ]
    assert rejects.count == 1 and rejects.first[0].where == f"{tmp_path / 'audit.log'}:100"
    assert ("copytruncate)" if keep_copy else "no copy found") in rejects.first[0].reason


def test_a_truncated_file_read_again_is_resumed_by_its_new_content(tmp_path: Path) -> None:
    """The file is truncated in place with no copy kept and written again; the position
    saved after its new lines names it by its new first bytes, so a restart resumes in it
    (not: the saved file is gone, read the new content a second time)."""
    live = tmp_path / "audit.log"
    state = tmp_path / "state"
    append(live, AUDIT_LINES[:50])
    first = Sink()
    rejects = Rejects()
    source = make_source(live, state, rejects)
    with running(source, first):
        first.wait_for(50)
        os.truncate(live, 0)
        append(live, AUDIT_LINES[50:80])
        first.wait_for(80)
    assert source.gaps == 1 and "no copy found" in rejects.first[0].reason
    append(live, AUDIT_LINES[80:90])
    second = Sink()
    again = make_source(live, state)
    with running(again, second, resume_seq=80):
        second.wait_for(10)
        time.sleep(0.05)
    assert [r.raw for r in first.records + second.records] == AUDIT_LINES[:90]
    assert [r.line for r in second.records] == list(range(31, 41))
    assert again.gaps == 0


# --- logrotate itself ---------------------------------------------------------------------


def _logrotate(live: Path, directives: list[str]) -> list[str]:
    """The command that has logrotate rotate `live` now, keeping 20 backups."""
    conf = live.with_name("logrotate.conf")
    body = "".join(f"  {d}\n" for d in [*directives, "rotate 20", "missingok"])
    conf.write_text(f"{live} {{\n{body}}}\n")
    return ["logrotate", "--force", "--state", str(live.with_name("logrotate.state")), str(conf)]


def _content(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = zlib.decompress(data, wbits=31)
    return data.splitlines()


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed")
@pytest.mark.parametrize(
    "directives",
    [["copytruncate"], ["copytruncate", "compress"], ["create", "compress", "delaycompress"]],
)
def test_logrotate_while_writing(tmp_path: Path, directives: list[str]) -> None:
    """logrotate rotates the log 5 times while a writer appends events (opening the log
    for each, as ``>>`` does): every event the files hold afterwards is emitted, none
    twice, in order; copytruncate loses the events written between its copy and its
    truncation, and each such rotation is reported."""
    live = tmp_path / "audit.log"
    live.touch()
    lines = AUDIT_LINES[:500]
    command = _logrotate(live, directives)
    source = make_source(live, tmp_path / "state", batch_events=16, poll_interval_secs=0.01)
    sink = Sink()

    def write() -> None:
        for line in lines:
            with open(live, "ab") as out:
                out.write(line + b"\n")
            time.sleep(0.002)

    with running(source, sink):
        writer = threading.Thread(target=write)
        writer.start()
        for _ in range(5):
            time.sleep(0.2)
            subprocess.run(command, check=True, capture_output=True)
        writer.join()
        kept = {line for path in tmp_path.glob("audit.log*") for line in _content(path)}
        sink.wait_for(len(kept))
        time.sleep(0.2)  # nothing more comes
    got = [r.raw for r in sink.records]
    assert got == [line for line in lines if line in set(got)]  # once each, in order
    assert kept <= set(got)
    assert [r.seq for r in sink.records] == list(range(1, len(got) + 1))
    assert source.rejected == 0
    if "copytruncate" in directives:
        assert 1 <= source.gaps <= 5
        assert all("truncated in place" in item.reason for item in source.rejects.first)
    else:
        assert source.gaps == 0 and len(got) == len(lines)


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
