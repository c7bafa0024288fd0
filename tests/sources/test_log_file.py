"""The log file tail over the network formats: real lines (ingress-nginx, nginx, Envoy,
Hubble), real files, real rotation while writing, restarts and crashes at several points;
every record line is emitted exactly once, in order, with seq 1..N.

The source compliance properties: restart (and a crash before or after the ledger stored a
batch) resumes without loss or repeat; stop drains promptly; bad lines are reported as
``path:line: reason`` and counted; the counters follow. The `//` header lines of Hubble's
sample files are passed over without being rejects.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from tail_helpers import (
    HeldSink,
    RotatingWriter,
    Sink,
    append,
    rotate,
    running,
    seqs_and_lines,
)

from logwarden.errors import InputError
from logwarden.normalize import hubble, web_access
from logwarden.normalize.base import Format, MalformedInput
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources.log_file import LogFileSource, comment_line, skip_for

NETWORK = Path(__file__).resolve().parent.parent / "fixtures" / "network"


def _lines(folder: str) -> list[bytes]:
    return [
        line
        for path in sorted((NETWORK / folder).iterdir())
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]


#: real lines of each format: 29 ingress-nginx, 20 nginx, 1 Envoy, 1918 Hubble flows
LINES = {
    "ingress_nginx": _lines("ingress_nginx"),
    "nginx_access": _lines("nginx"),
    "envoy_access": _lines("envoy"),
    "hubble_flow": _lines("hubble"),
}
FORMATS: dict[str, Format] = {
    "ingress_nginx": web_access.INGRESS_NGINX,
    "nginx_access": web_access.NGINX,
    "envoy_access": web_access.ENVOY,
    "hubble_flow": hubble.FORMAT,
}
#: the kind of comment header hubble-otel's sample files begin with
HEADER = [b"// SPDX-License-Identifier: Apache-2.0", b"// Copyright Authors of Hubble"]
#: a comment header longer than the head that identifies a file (1 KiB), the same in
#: every file of the log
LONG_HEADER = HEADER + [
    b"// flows of node kind-worker%d, exported by hubble observe -o json" % i for i in range(20)
]


def lines_of(source: str, count: int) -> list[bytes]:
    """`count` real lines of `source`'s format (repeated in order if there are fewer)."""
    real = LINES[source]
    return [real[i % len(real)] for i in range(count)]


def make_source(
    source: str, live: Path, state: Path, rejects: Rejects | None = None, **options: object
) -> LogFileSource:
    """A tail of `live` in `source`'s format (with its `skip`), polling fast."""
    fmt = FORMATS[source]
    options.setdefault("poll_interval_secs", 0.005)
    options.setdefault("skip", skip_for(fmt))
    return LogFileSource(
        "net",
        str(live),
        state,
        Rejects() if rejects is None else rejects,
        fmt=fmt,
        **options,  # type: ignore[arg-type]
    )


def start_file(source: str, live: Path, lines: list[bytes]) -> list[tuple[bytes, int]]:
    """Write `lines` to a new `live` (after Hubble's comment header); return the record
    lines with their line numbers."""
    if source == "hubble_flow":
        append(live, HEADER)
    return append(live, lines)


# --- following --------------------------------------------------------------------------------


@pytest.mark.parametrize("source", sorted(FORMATS))
def test_each_format_is_followed_as_lines_are_appended(tmp_path: Path, source: str) -> None:
    fmt = FORMATS[source]
    lines = lines_of(source, 24)
    live = tmp_path / "access.log"
    written = start_file(source, live, lines[:10])
    tail = make_source(source, live, tmp_path / "state", batch_events=4)
    sink = Sink()
    with running(tail, sink):
        sink.wait_for(10)
        with open(live, "ab") as fh:  # a line in two writes: used once its newline is there
            fh.write(lines[10][:20])
            fh.flush()
            time.sleep(0.02)
            fh.write(lines[10][20:] + b"\n")
        written += [(lines[10], written[-1][1] + 1)]
        written += append(live, lines[11:])
        sink.wait_for(24)
    seqs, got = seqs_and_lines(sink.records)
    assert seqs == list(range(1, 25))
    assert got == written
    for record in sink.records:
        assert (record.source, record.instance) == (fmt.source, "net")
        assert record.time_ns == fmt.time_ns(fmt.decode(record.raw)) > 0
    assert (tail.events, tail.rejected, tail.gaps) == (24, 0, 0)
    assert tail.skipped == (2 if source == "hubble_flow" else 0)
    assert tail.last_event_ns == sink.records[-1].received_ns
    assert tail.bytes_read == live.stat().st_size
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["log_file.net.json"]


@pytest.mark.parametrize(
    ("source", "style", "count"),
    [("ingress_nginx", "lumberjack", 240), ("hubble_flow", "logrotate", 240)],
)
def test_every_line_once_in_order_through_rotations(
    tmp_path: Path, source: str, style: str, count: int
) -> None:
    live = tmp_path / "access.log"
    live.touch()
    writer = RotatingWriter(live, lines_of(source, count), rotate_every=50, style=style)
    tail = make_source(source, live, tmp_path / "state", batch_events=16)
    sink = Sink()
    with running(tail, sink):
        writer.start()
        writer.finish()
        sink.wait_for(count)
    seqs, got = seqs_and_lines(sink.records)
    assert seqs == list(range(1, count + 1))
    assert got == writer.written
    assert tail.rotations_seen == writer.rotations == 4
    assert (tail.events, tail.rejected, tail.gaps) == (count, 0, 0)


@pytest.mark.parametrize("source", ["ingress_nginx", "hubble_flow"])
def test_copytruncate_finishes_the_copy_then_the_new_content(tmp_path: Path, source: str) -> None:
    """While `emit` holds the first 40 lines, 10 more are written, the file is copied to
    access.log.1 and truncated, and 15 new lines are written."""
    lines = lines_of(source, 65)
    live = tmp_path / "access.log"
    start_file(source, live, lines[:40])
    sink = HeldSink()

    rejects = Rejects()
    tail = make_source(source, live, tmp_path / "state", rejects, batch_events=40)
    with running(tail, sink):
        assert sink.entered.wait(10)
        append(live, lines[40:50])
        shutil.copyfile(live, tmp_path / "access.log.1")
        os.truncate(live, 0)
        append(live, lines[50:])
        sink.release()
        sink.wait_for(65)
    assert [r.raw for r in sink.records] == lines
    assert [r.seq for r in sink.records] == list(range(1, 66))
    header = len(HEADER) if source == "hubble_flow" else 0
    assert [r.line for r in sink.records[40:]] == [
        *range(header + 41, header + 51),
        *range(1, 16),
    ]
    assert rejects.count == tail.gaps == 1 and "copytruncate" in rejects.first[0].reason


def test_copytruncate_grown_back_past_the_point_read_with_the_same_first_bytes(
    tmp_path: Path,
) -> None:
    """Hubble flows after a comment header longer than 1 KiB, the same in every file:
    while `emit` holds the first 40 flows, 10 more are written, the file is copied to
    flows.json.1 and truncated, and the header and 60 new flows are written. The file
    starts as it did and grew back past the point read: the last bytes read tell."""
    lines = lines_of("hubble_flow", 110)
    live = tmp_path / "flows.json"
    append(live, LONG_HEADER)
    append(live, lines[:40])
    sink = HeldSink()
    rejects = Rejects()
    tail = make_source("hubble_flow", live, tmp_path / "state", rejects, batch_events=40)
    with running(tail, sink):
        assert sink.entered.wait(10)
        append(live, lines[40:50])
        shutil.copyfile(live, tmp_path / "flows.json.1")
        os.truncate(live, 0)
        append(live, LONG_HEADER)
        append(live, lines[50:])
        assert live.stat().st_size > (tmp_path / "flows.json.1").stat().st_size
        sink.release()
        sink.wait_for(110)
        time.sleep(0.05)  # nothing more comes
    header = len(LONG_HEADER)
    assert [r.raw for r in sink.records] == lines
    assert [r.line for r in sink.records[40:]] == [
        *range(header + 41, header + 51),
        *range(header + 1, header + 61),
    ]
    assert (tail.rejected, tail.gaps) == (0, 1) and "copytruncate)" in rejects.first[0].reason


@pytest.mark.parametrize("replacement", ["longer copy", "new file", "header only"])
def test_a_live_file_replaced_by_one_starting_alike_is_followed(
    tmp_path: Path, replacement: str
) -> None:
    """The live file is replaced (renamed over: a new inode) by one that starts with the
    same comment header, longer than 1 KiB: a longer copy of it (an atomic rewrite) is read
    on where the old one was left; a new file is read from its start, and the old one
    counts as gone; the old one held the header only: the new one goes on after it."""
    lines = lines_of("hubble_flow", 20)
    live = tmp_path / "flows.json"
    old = 0 if replacement == "header only" else 5
    append(live, LONG_HEADER)
    append(live, lines[:old])
    rejects = Rejects()
    tail = make_source("hubble_flow", live, tmp_path / "state", rejects)
    sink = Sink()
    with running(tail, sink):
        sink.wait_for(old)
        while tail.bytes_read < live.stat().st_size:
            time.sleep(0.005)
        new = tmp_path / "flows.json.new"
        append(new, LONG_HEADER)
        append(new, lines[:old] if replacement == "longer copy" else [])
        append(new, lines[old:])
        os.rename(new, live)
        sink.wait_for(20)
        time.sleep(0.05)  # nothing more comes
    header = len(LONG_HEADER)
    assert [r.raw for r in sink.records] == lines
    assert [r.seq for r in sink.records] == list(range(1, 21))
    first = header + (1 if replacement == "new file" else old + 1)
    assert [r.line for r in sink.records[old:]] == list(range(first, first + 20 - old))
    assert tail.gaps == (1 if replacement == "new file" else 0) == rejects.count
    assert replacement != "new file" or "gone" in rejects.first[0].reason


def test_after_a_restart_a_file_that_only_starts_alike_is_not_taken_for_the_saved_one(
    tmp_path: Path,
) -> None:
    """While logwarden is stopped, the live file is replaced by a new one that starts with
    the same long comment header: the new file is read from its start, not from the
    offset saved in the old one, and the old one is reported gone."""
    lines = lines_of("hubble_flow", 20)
    live, state = tmp_path / "flows.json", tmp_path / "state"
    append(live, LONG_HEADER)
    append(live, lines[:5])
    first = Sink()
    with running(make_source("hubble_flow", live, state), first):
        first.wait_for(5)
    new = tmp_path / "flows.json.new"
    append(new, LONG_HEADER)
    append(new, lines[5:])
    os.rename(new, live)
    rejects = Rejects()
    second = Sink()
    again = make_source("hubble_flow", live, state, rejects)
    with running(again, second, resume_seq=5):
        second.wait_for(15)
        time.sleep(0.05)  # nothing more comes
    assert [r.raw for r in first.records + second.records] == lines
    assert [r.line for r in second.records] == list(range(23, 38))
    assert again.gaps == rejects.count == 1 and "gone" in rejects.first[0].reason


def test_after_a_restart_an_older_compressed_file_starting_alike_is_not_read_on(
    tmp_path: Path,
) -> None:
    """The saved file is gone after a restart; an older compressed backup starts with the
    same long comment header, so only the last bytes read before the saved offset tell it
    is not the saved file: it is not read on from that offset; the new live file is read."""
    lines = lines_of("hubble_flow", 40)
    live, state = tmp_path / "flows.json", tmp_path / "state"
    old = tmp_path / "flows.json.2.gz"
    with gzip.open(old, "wb") as out:
        out.write(b"".join(line + b"\n" for line in [*LONG_HEADER, *lines[20:]]))
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    append(live, LONG_HEADER)
    append(live, lines[:5])
    first = Sink()
    with running(make_source("hubble_flow", live, state), first):
        first.wait_for(5)
    live.unlink()  # rotated and deleted while stopped; a new live file
    append(live, LONG_HEADER)
    append(live, lines[5:10])
    rejects = Rejects()
    second = Sink()
    again = make_source("hubble_flow", live, state, rejects)
    with running(again, second, resume_seq=5):
        second.wait_for(5)
        time.sleep(0.05)  # nothing more comes
    assert [r.raw for r in first.records + second.records] == lines[:10]
    assert again.rejected == 0 and again.gaps == rejects.count == 1


def test_create_rotation_keeps_what_the_writer_appends_before_it_reopens(
    tmp_path: Path,
) -> None:
    """logrotate's ``create``: the log is renamed to access.log.1 and a new one created;
    the writer (nginx until USR1) appends to the renamed file a while before reopening."""
    lines = lines_of("ingress_nginx", 30)
    live = tmp_path / "access.log"
    writer = open(live, "ab", buffering=0)  # noqa: SIM115 - closed below
    try:
        writer.write(b"".join(line + b"\n" for line in lines[:10]))
        tail = make_source("ingress_nginx", live, tmp_path / "state", poll_interval_secs=0.05)
        sink = Sink()
        with running(tail, sink):
            sink.wait_for(10)
            os.rename(live, tmp_path / "access.log.1")
            live.touch()
            time.sleep(0.1)  # two polls: the new file is there, the old one quiet
            writer.write(b"".join(line + b"\n" for line in lines[10:20]))
            writer.close()
            writer = open(live, "ab", buffering=0)  # noqa: SIM115 - reopened on USR1
            writer.write(b"".join(line + b"\n" for line in lines[20:]))
            sink.wait_for(30)
    finally:
        writer.close()
    assert [r.raw for r in sink.records] == lines
    assert [r.line for r in sink.records] == [*range(1, 21), *range(1, 11)]
    assert (tail.rotations_seen, tail.rejected, tail.gaps) == (1, 0, 0)


def test_lines_written_to_a_rotated_file_after_it_was_finished_are_reported(
    tmp_path: Path,
) -> None:
    """logrotate's ``create`` without a signal to the writer: it never reopens its log and
    goes on writing to the renamed file after the tail finished it. Those lines are not
    read (the tail follows the new file), and that is reported, not silent."""
    lines = lines_of("ingress_nginx", 30)
    live = tmp_path / "access.log"
    writer = open(live, "ab", buffering=0)  # noqa: SIM115 - closed below
    rejects = Rejects()
    try:
        writer.write(b"".join(line + b"\n" for line in lines[:10]))
        tail = make_source("ingress_nginx", live, tmp_path / "state", rejects)
        sink = Sink()
        with running(tail, sink):
            sink.wait_for(10)
            os.rename(live, tmp_path / "access.log.1")
            live.touch()
            while tail.rotations_seen < 1:  # finished after its grace, the new file opened
                time.sleep(0.005)
            writer.write(b"".join(line + b"\n" for line in lines[10:20]))
            append(live, lines[20:])
            sink.wait_for(20)
            deadline = time.monotonic() + 5
            while not tail.gaps and time.monotonic() < deadline:
                time.sleep(0.005)
    finally:
        writer.close()
    assert [r.raw for r in sink.records] == lines[:10] + lines[20:]
    assert tail.gaps == rejects.count == 1
    assert rejects.first[0].where == f"{live}:10"
    assert "does its writer reopen the log" in rejects.first[0].reason


def test_a_backup_deleted_before_it_was_read_is_reported_as_a_gap(tmp_path: Path) -> None:
    """While `emit` holds the first 20 lines, the log is rotated three times and each older
    backup deleted (lumberjack with maxbackups=1): the file after the first is never read."""
    lines = lines_of("ingress_nginx", 50)
    live = tmp_path / "access.log"
    start_file("ingress_nginx", live, lines[:20])
    sink = HeldSink()

    def rotate_keeping_one() -> None:
        rotate(live)
        for old in sorted(tmp_path.glob("access-*.log.gz"))[:-1]:
            old.unlink()

    rejects = Rejects()
    tail = make_source("ingress_nginx", live, tmp_path / "state", rejects, batch_events=20)
    with running(tail, sink):
        assert sink.entered.wait(10)
        rotate_keeping_one()
        append(live, lines[20:30])
        rotate_keeping_one()  # the first backup is deleted: read already
        append(live, lines[30:40])
        rotate_keeping_one()  # the second is deleted, never read
        append(live, lines[40:])
        sink.release()
        sink.wait_for(40)
        time.sleep(0.1)
    assert [r.raw for r in sink.records] == lines[:20] + lines[30:]
    assert rejects.count == tail.gaps == 1 and "gone" in rejects.first[0].reason


# --- restarts and crashes ------------------------------------------------------------------------


class Crash(Exception):
    """The process dies inside `emit`."""


def run_once(tail: LogFileSource, ledger: list[Record], *, at: int, how: str) -> None:
    """Run `tail` (resuming from `ledger`) until its `at`-th batch, then: ``stop`` (the batch
    is stored, then stop is set), ``after`` (crash once the ledger stored the batch, before
    the position is saved) or ``before`` (crash before the ledger stored it)."""
    stop = threading.Event()
    watchdog = threading.Timer(10, stop.set)
    watchdog.start()
    batches = 0

    def emit(batch: list[Record]) -> None:
        nonlocal batches
        batches += 1
        if batches == at and how == "before":
            raise Crash
        ledger.extend(batch)
        if batches == at and how == "after":
            raise Crash
        if batches == at:
            stop.set()

    try:
        tail.run(emit, stop, ledger[-1].seq if ledger else 0)
    except Crash:
        pass
    finally:
        watchdog.cancel()
    assert batches == at, "the run ended before the batch it was to stop at"
    saved = json.loads(tail.state_file.read_bytes())["seq"] if tail.state_file.exists() else 0
    stored = ledger[-1].seq if ledger else 0
    if how == "after":  # the position lags the ledger by the batch the crash cut off
        assert saved == stored - tail.batch_events
    else:  # a crash before: as the last run left it, which may lag too
        assert saved == stored if how == "stop" else saved <= stored


@pytest.mark.parametrize("source", ["ingress_nginx", "hubble_flow"])
def test_restarts_and_crashes_resume_without_loss_or_repeat(tmp_path: Path, source: str) -> None:
    """Six runs end by stop, crash after the ledger stored a batch, crash before; between
    them the file grows, is rotated (renamed and compressed, renamed and kept plain), and
    gets bad lines; the last run reads to the end."""
    live, state = tmp_path / "access.log", tmp_path / "state"
    good = iter(lines_of(source, 200))
    written = start_file(source, live, [next(good) for _ in range(30)])
    bad: list[tuple[bytes, int]] = []

    def grow(n: int) -> None:
        nonlocal written
        bad.extend(append(live, [b"not a line of this format, #%d" % len(bad)]))
        written += append(live, [next(good) for _ in range(n)])

    ledger: list[Record] = []
    rejects = Rejects()
    plan: list[tuple[int, str, object]] = [
        (3, "stop", lambda: grow(25)),
        (2, "after", lambda: rotate(live)),
        (1, "before", lambda: grow(30)),
        (4, "after", lambda: rotate(live, compress=False)),
        (2, "stop", lambda: grow(40)),
        (3, "before", lambda: grow(40)),
    ]
    for at, how, change in plan:
        run_once(make_source(source, live, state, rejects, batch_events=5), ledger, at=at, how=how)
        change()  # type: ignore[operator]
    final = make_source(source, live, state, rejects, batch_events=5)
    rest = Sink()
    with running(final, rest, resume_seq=ledger[-1].seq):
        rest.wait_for(len(written) - len(ledger))
    seqs, got = seqs_and_lines(ledger + rest.records)
    assert seqs == list(range(1, len(written) + 1))
    assert got == written
    assert final.gaps == 0
    # each bad line reported where it was read (a backup's name once rotated): at least
    # once, and again only if a crash came before the batch after it was stored
    reported = {(i.raw.encode(), int(i.where.rpartition(":")[2])) for i in rejects.first if i.raw}
    assert reported == set(bad)
    assert all(i.where.startswith(str(tmp_path / "access")) for i in rejects.first)
    assert len(bad) <= rejects.count < 2 * len(bad)


def test_state_ahead_of_the_ledger_or_missing_is_an_error(tmp_path: Path) -> None:
    live, state = tmp_path / "access.log", tmp_path / "state"
    append(live, lines_of("ingress_nginx", 10))
    sink = Sink()
    with running(make_source("ingress_nginx", live, state), sink):
        sink.wait_for(10)
    saved = json.loads((state / "log_file.net.json").read_bytes())
    assert (saved["seq"], saved["line"], saved["offset"]) == (10, 10, live.stat().st_size)
    ahead = r"log_file\.net\.json.*up to 10.*only 5"
    again = make_source("ingress_nginx", live, state)
    with pytest.raises(InputError, match=ahead), running(again, Sink(), resume_seq=5):
        pass
    missing = r"holds 7 records.*log_file\.net\.json"
    fresh = make_source("ingress_nginx", live, tmp_path / "other")
    with pytest.raises(InputError, match=missing), running(fresh, Sink(), resume_seq=7):
        pass


# --- bad input ------------------------------------------------------------------------------------


def test_bad_ingress_lines_are_counted_and_reported_with_path_and_line(tmp_path: Path) -> None:
    good = lines_of("ingress_nginx", 4)
    custom = b'10.0.0.1 - - [07/Feb/2020:11:48:51 +0000] "GET / HTTP/1.1" 200 59 "-" "curl"'
    bad_time = good[0].replace(b"07/Feb/2020", b"31/Feb/2020")
    live = tmp_path / "access.log"
    live.write_bytes(
        b"\n".join([good[0], custom, good[1], b"", bad_time, good[2], good[3][:70]]) + b"\n"
    )
    rejects = Rejects()
    sink = Sink()
    tail = make_source("ingress_nginx", live, tmp_path / "state", rejects)
    with running(tail, sink):
        sink.wait_for(3)
        append(live, [good[3]])
        sink.wait_for(4)
    assert [(r.raw, r.line) for r in sink.records] == [
        (good[0], 1),
        (good[1], 3),
        (good[2], 6),
        (good[3], 8),
    ]
    assert tail.rejected == rejects.count == 3
    assert [item.where for item in rejects.first] == [f"{live}:2", f"{live}:5", f"{live}:7"]
    assert "request_length" in rejects.first[0].reason
    assert "31/Feb/2020" in rejects.first[1].reason
    assert rejects.first[1].raw == bad_time.decode()
    assert tail.events == 4 and tail.skipped == 0


def test_bad_hubble_lines_are_counted_and_comments_passed_over(tmp_path: Path) -> None:
    good = lines_of("hubble_flow", 3)
    lost = b'{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"3"}}'
    live = tmp_path / "flows.json"
    live.write_bytes(
        b"\n".join([*HEADER, good[0], good[1][:-40], lost, b"// a comment", good[1], good[2]])
        + b"\n"
    )
    rejects = Rejects()
    sink = Sink()
    tail = make_source("hubble_flow", live, tmp_path / "state", rejects)
    with running(tail, sink):
        sink.wait_for(3)
    assert [(r.raw, r.line) for r in sink.records] == [(good[0], 3), (good[1], 7), (good[2], 8)]
    assert [item.where for item in rejects.first] == [f"{live}:4", f"{live}:5"]
    assert "lost_events" in rejects.first[1].reason
    assert (tail.events, tail.rejected, tail.skipped) == (3, 2, 3)


def test_units_split_a_line_into_the_units_the_format_decodes(tmp_path: Path) -> None:
    """ingress-nginx lines as the kubelet writes a container's stdout (CRI: time, stream,
    tag, line), unwrapped by `units`; a wrapper that is not CRI is a reject."""

    def cri(line: bytes) -> list[bytes | MalformedInput]:
        parts = line.split(b" ", 3)
        if len(parts) != 4 or parts[2] != b"F":
            return [MalformedInput("not a complete CRI log line")]
        return [parts[3]]

    good = lines_of("ingress_nginx", 3)
    wrapped = [b"2020-02-07T11:48:51.000000000Z stdout F " + line for line in good]
    live = tmp_path / "controller.log"
    append(live, [wrapped[0], b"garbage", wrapped[1], wrapped[2]])
    rejects = Rejects()
    sink = Sink()
    tail = make_source("ingress_nginx", live, tmp_path / "state", rejects, units=cri)
    with running(tail, sink):
        sink.wait_for(3)
    assert [(r.raw, r.line, r.seq) for r in sink.records] == [
        (good[0], 1, 1),
        (good[1], 3, 2),
        (good[2], 4, 3),
    ]
    assert [(i.where, i.reason) for i in rejects.first] == [
        (f"{live}:2", "not a complete CRI log line")
    ]


def test_skip_for_knows_hubble_comments_only() -> None:
    assert skip_for(hubble.FORMAT) is comment_line
    assert comment_line(b"// SPDX-License-Identifier: Apache-2.0")
    assert not comment_line(LINES["hubble_flow"][0])
    assert skip_for(web_access.INGRESS_NGINX) is None


# --- stop -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["ingress_nginx", "hubble_flow"])
def test_stop_drains_the_batch_in_hand_and_returns_promptly(tmp_path: Path, source: str) -> None:
    lines = lines_of(source, 30)
    live, state = tmp_path / "access.log", tmp_path / "state"
    start_file(source, live, lines)
    held = HeldSink()
    tail = make_source(source, live, state, batch_events=10, poll_interval_secs=0.25)
    with running(tail, held) as stop:
        assert held.entered.wait(10)
        stop.set()
        released = time.monotonic()
        held.release()
    took = time.monotonic() - released
    assert took < 2, f"run took {took:.2f}s to return after its emit"
    assert [r.seq for r in held.records] == list(range(1, 11))
    assert tail.events == 10
    sink = Sink()
    with running(make_source(source, live, state, batch_events=10), sink, resume_seq=10):
        sink.wait_for(20)
    assert [r.raw for r in held.records + sink.records] == lines
    idle = make_source(source, live, state, poll_interval_secs=0.25)
    with running(idle, Sink(), resume_seq=30) as stop:
        time.sleep(0.05)  # at the end of the file, waiting for the next poll
        stop.set()
        stopped = time.monotonic()
    assert time.monotonic() - stopped < 2
