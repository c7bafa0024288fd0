"""The journald source over real journals: files written by Debian's systemd-journal-remote
from export-format entries into a directory, followed by the real journalctl; journal files
added while following and while stopped, stops, crashes in `emit`, journalctl killed, unit
filters. Every written entry is emitted exactly once, in order, with seq 1..N."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from logwarden.errors import InputError
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources.journald import JournaldSource

JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
JOURNALCTL = shutil.which("journalctl")
BOOT = "6c7c6013a26343b29e964691ff25d04c"
START_US = 1_716_000_000_000_000

pytestmark = pytest.mark.skipif(
    not JOURNAL_REMOTE.exists() or JOURNALCTL is None,
    reason="needs Debian packages systemd-journal-remote "
    "(/lib/systemd/systemd-journal-remote) and systemd (journalctl)",
)


def export(first: int, count: int, unit: str = "ssh.service") -> bytes:
    """Journal export format entries numbered first.. as sshd (or `unit`) writes them; a
    real journal's entries of one boot have distinct monotonic times."""
    ident = unit.split(".")[0]
    out = []
    for n in range(first, first + count):
        fields = {
            "__REALTIME_TIMESTAMP": str(START_US + 1000 * n),
            "__MONOTONIC_TIMESTAMP": str(5_000_000 + 1000 * n),
            "_BOOT_ID": BOOT,
            "_HOSTNAME": "node-1",
            "_TRANSPORT": "syslog",
            "PRIORITY": "6",
            "SYSLOG_IDENTIFIER": ident,
            "_PID": str(4100 + n),
            "_SYSTEMD_UNIT": unit,
            "MESSAGE": f"Failed password for root from 198.51.100.7 port {40000 + n} ssh2 #{n}",
        }
        out.append("".join(f"{k}={v}\n" for k, v in fields.items()).encode() + b"\n")
    return b"".join(out)


class Sink:
    """A fake `emit`: a batch is durable once appended to `records`."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.batches = 0
        self.cond = threading.Condition()

    def __call__(self, batch: list[Record]) -> None:
        assert batch, "an empty batch was emitted"
        with self.cond:
            self.records.extend(batch)
            self.batches += 1
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10) -> None:
        """Wait until at least `count` records are stored."""
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.records) >= count, timeout)
        assert ok, f"only {len(self.records)} of {count} records arrived"


def write_journal(path: Path, data: bytes) -> None:
    """Write (or append to) the journal file `path` with systemd-journal-remote."""
    subprocess.run(
        [str(JOURNAL_REMOTE), f"--output={path}", "-"], input=data, check=True, capture_output=True
    )


def numbers(records: list[Record]) -> list[int]:
    return [int(json.loads(r.raw)["MESSAGE"].rsplit("#", 1)[1]) for r in records]


def state_of(state: Path) -> dict[str, object]:
    value = json.loads((state / "journald.node.json").read_bytes())
    assert isinstance(value, dict)
    return value


def make_source(journals: Path, state: Path, **options: object) -> JournaldSource:
    options.setdefault("start_at", "beginning")
    options.setdefault("restart_backoff_secs", 0.05)
    rejects = options.pop("rejects", None)
    return JournaldSource(
        "node",
        state,
        rejects if isinstance(rejects, Rejects) else Rejects(),
        directory=str(journals),
        **options,  # type: ignore[arg-type]
    )


@contextmanager
def running(
    source: JournaldSource, emit: Callable[[list[Record]], None], resume_seq: int = 0
) -> Iterator[threading.Event]:
    """Run `source` in a thread; on leaving, stop it (within 2 s) and re-raise its error."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            source.run(emit, stop, resume_seq)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        started = time.monotonic()
        thread.join(10)
        assert not thread.is_alive(), "the source did not stop"
        if errors:
            raise errors[0]
        assert time.monotonic() - started < 2.0, "the source took 2 s or more to stop"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def assert_exactly_once(records: list[Record], count: int) -> None:
    assert [r.seq for r in records] == list(range(1, count + 1))
    assert numbers(records) == list(range(count))


@pytest.fixture
def journals(tmp_path: Path) -> Path:
    path = tmp_path / "journal"
    path.mkdir()
    return path


def test_follow_stop_restart_every_entry_once_in_order(journals: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_journal(journals / "a.journal", export(0, 30))
    source = make_source(journals, state, batch_events=8)
    first = Sink()
    with running(source, first):
        first.wait_for(30)
        write_journal(journals / "b.journal", export(30, 15))  # a new file while following
        first.wait_for(45)
    assert state_of(state)["seq"] == 45
    assert state_of(state)["cursor"] == json.loads(first.records[-1].raw)["__CURSOR"]
    assert (source.events, source.rejected, source.restarts) == (45, 0, 0)
    assert source.last_event_ns == first.records[-1].received_ns
    assert source.journalctl_pid is None
    write_journal(journals / "c.journal", export(45, 10))  # while stopped
    second = Sink()
    source = make_source(journals, state, batch_events=8)
    with running(source, second, resume_seq=45):
        second.wait_for(10)
        write_journal(journals / "c.journal", export(55, 5))  # appended while following
        second.wait_for(15)
        time.sleep(0.2)  # nothing more comes
    records = first.records + second.records
    assert_exactly_once(records, 60)
    view = records[0].view
    assert view.fields["SYSLOG_IDENTIFIER"] == "ssh"
    assert records[0].time_ns == START_US * 1000
    assert all(r.source == "journald" and r.instance == "node" for r in records)


class CrashingSink(Sink):
    """A fake ledger whose `emit` raises at batch `at`: before storing it (`stored` False:
    the batch is lost with the process) or after (the ledger has it, the state does not)."""

    def __init__(self, at: int, *, stored: bool) -> None:
        super().__init__()
        self.at, self.stored = at, stored
        self.crashed = threading.Event()

    def __call__(self, batch: list[Record]) -> None:
        if self.batches + 1 == self.at:
            if self.stored:
                super().__call__(batch)
            self.crashed.set()
            raise RuntimeError("crash")
        super().__call__(batch)


@pytest.mark.parametrize(("at", "stored"), [(1, False), (3, False), (1, True), (4, True)])
def test_crash_in_emit_then_restart(journals: Path, tmp_path: Path, at: int, stored: bool) -> None:
    state = tmp_path / "state"
    write_journal(journals / "a.journal", export(0, 40))
    sink = CrashingSink(at, stored=stored)
    with (
        pytest.raises(RuntimeError, match="crash"),
        running(make_source(journals, state, batch_events=5), sink),
    ):
        assert sink.crashed.wait(10)
    assert len(sink.records) == 5 * (at if stored else at - 1)
    assert state_of(state)["seq"] == 5 * (at - 1)
    rest = Sink()
    source = make_source(journals, state, batch_events=5)
    with running(source, rest, resume_seq=len(sink.records)):
        rest.wait_for(40 - len(sink.records))
        write_journal(journals / "b.journal", export(40, 3))
        rest.wait_for(43 - len(sink.records))
    assert_exactly_once(sink.records + rest.records, 43)
    assert source.events == len(rest.records)


def test_stop_during_emit_drains_and_resumes(journals: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_journal(journals / "a.journal", export(0, 30))
    sink = Sink()
    stop = threading.Event()

    def emit(batch: list[Record]) -> None:
        sink(batch)
        if sink.batches == 2:
            stop.set()

    source = make_source(journals, state, batch_events=6)
    started = time.monotonic()
    source.run(emit, stop, 0)
    assert time.monotonic() - started < 2.0
    assert len(sink.records) == 12 and state_of(state)["seq"] == 12
    rest = Sink()
    with running(make_source(journals, state, batch_events=6), rest, resume_seq=12):
        rest.wait_for(18)
    assert_exactly_once(sink.records + rest.records, 30)


def test_journalctl_killed_while_following_is_restarted(journals: Path, tmp_path: Path) -> None:
    write_journal(journals / "a.journal", export(0, 1500))
    rejects = Rejects()
    source = make_source(journals, tmp_path / "state", batch_events=25, rejects=rejects)
    sink = Sink()

    def slow(batch: list[Record]) -> None:  # journalctl blocks on a full pipe meanwhile
        time.sleep(0.002)
        sink(batch)

    with running(source, slow):
        sink.wait_for(100)
        killed = source.journalctl_pid
        read_before = len(sink.records)
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        wait_until(
            lambda: source.restarts == 1 and source.journalctl_pid not in (None, killed),
            "a restart",
        )
        sink.wait_for(1500)
        write_journal(journals / "b.journal", export(1500, 5))
        sink.wait_for(1505)
    assert read_before < 1400  # killed mid-stream
    assert_exactly_once(sink.records, 1505)
    assert source.restarts == 1
    assert [r.where for r in rejects.first] == ["journald node: journalctl"]
    assert "killed by signal 9" in rejects.first[0].reason
    assert "starting it again in 0.05 s, reading after s=" in rejects.first[0].reason


def test_start_at_end_reads_what_comes_after_the_first_start(
    journals: Path, tmp_path: Path
) -> None:
    """The end is saved at once: entries written while stopped before any arrived are read;
    with a unit filter the saved end (a kubelet entry) does not match, and the first
    matching entry after it is not skipped (journalctl --after-cursor would skip it)."""
    state = tmp_path / "state"
    write_journal(journals / "a.journal", export(0, 10) + export(10, 1, "kubelet.service"))
    source = make_source(journals, state, start_at="end", units=["ssh.service"])
    first = Sink()
    with running(source, first):
        wait_until(lambda: source.journalctl_pid is not None, "journalctl to run")
        time.sleep(0.2)
    assert first.records == []
    saved = state_of(state)
    assert saved["seq"] == 0 and isinstance(saved["cursor"], str)
    write_journal(journals / "b.journal", export(11, 4) + export(15, 1, "kubelet.service"))
    second = Sink()
    with running(make_source(journals, state, start_at="end", units=["ssh.service"]), second):
        second.wait_for(4)
        time.sleep(0.2)
    assert [r.seq for r in second.records] == [1, 2, 3, 4]
    assert numbers(second.records) == [11, 12, 13, 14]


def test_unit_glob_matching_nothing_is_reported_until_it_matches(
    journals: Path, tmp_path: Path
) -> None:
    write_journal(journals / "a.journal", export(0, 5))
    rejects = Rejects()
    source = make_source(journals, tmp_path / "state", units=["kube*"], rejects=rejects)
    sink = Sink()
    with running(source, sink):
        wait_until(lambda: source.restarts >= 2, "journalctl to fail twice")
        write_journal(journals / "b.journal", export(5, 3, "kubelet.service") + export(8, 1))
        sink.wait_for(3)
        time.sleep(0.2)
    assert numbers(sink.records) == [5, 6, 7]
    report = rejects.first[0]
    assert report.where == "journald node: journalctl"
    assert report.reason.startswith("exited with status 1: Failed to add filter for units")
    assert "reading from the beginning" in report.reason
    assert source.rejected == 0 and rejects.count == source.restarts


def test_lines_the_format_refuses_are_rejected_and_reading_goes_on(
    journals: Path, tmp_path: Path
) -> None:
    """journalctl itself prints only good entries: a wrapper prints three bad lines first."""
    wrapper = tmp_path / "journalctl"
    wrapper.write_text(
        "#!/bin/sh\n"
        'printf \'%s\\n\' \'not json\' \'{"MESSAGE":"no time","__CURSOR":"s=1;i=1"}\' '
        '\'{"MESSAGE":"no cursor","__REALTIME_TIMESTAMP":"1716000000000000"}\'\n'
        f'exec {JOURNALCTL} "$@"\n'
    )
    wrapper.chmod(0o755)
    write_journal(journals / "a.journal", export(0, 5))
    rejects = Rejects()
    source = make_source(journals, tmp_path / "state", journalctl=str(wrapper), rejects=rejects)
    sink = Sink()
    with running(source, sink):
        sink.wait_for(5)
    assert_exactly_once(sink.records, 5)
    assert source.rejected == 3 == rejects.count
    got = [(r.where, r.reason, r.raw) for r in rejects.first]
    assert got[0] == ("journald line 1 of journalctl's output", got[0][1], "not json")
    assert got[0][1].startswith("invalid JSON")
    assert got[1] == (
        "journald s=1;i=1",
        "journal entry without __REALTIME_TIMESTAMP and _SOURCE_REALTIME_TIMESTAMP",
        '{"MESSAGE":"no time","__CURSOR":"s=1;i=1"}',
    )
    assert got[2][:2] == (
        "journald line 3 of journalctl's output",
        "journal entry without __CURSOR: cannot resume after it",
    )


def test_state_and_ledger_disagree(journals: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with pytest.raises(InputError, match=r"state file .* is missing"):
        make_source(journals, state).run(Sink(), threading.Event(), 3)
    write_journal(journals / "a.journal", export(0, 5))
    sink = Sink()
    with running(make_source(journals, state), sink):
        sink.wait_for(5)
    with pytest.raises(InputError, match="ledger holds only 2"):
        make_source(journals, state).run(Sink(), threading.Event(), 2)


@pytest.mark.parametrize("start_at", ["beginning", "end"])
def test_journalctl_missing(tmp_path: Path, start_at: str) -> None:
    source = make_source(
        tmp_path, tmp_path / "state", start_at=start_at, journalctl=str(tmp_path / "nothing")
    )
    with pytest.raises(InputError, match=r"package systemd"):
        source.run(Sink(), threading.Event(), 0)
