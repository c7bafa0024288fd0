"""The container logs source: real files laid out as the kubelet lays them out under
/var/log/pods, real samples (tests/fixtures/container_logs), real rotation the kubelet's way
(``0.log`` renamed to ``0.log.<YYYYMMDD-HHMMSS>``, a new ``0.log``, later the backup gzipped
through ``.gz.tmp``), real restarts and crashes in `emit`: every entry is emitted once, in
order per container, with seq 1..N across runs.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import msgspec
import pytest
from tail_helpers import HeldSink

from logwarden.errors import InputError
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources.container_logs import ContainerLogsSource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "container_logs"
KUEUE = (FIXTURES / "kueue-issue-4140-kind-ci-cri.log").read_bytes().splitlines()
DESIGN_DOC = (FIXTURES / "kubelet-cri-design-doc-example.log").read_bytes().splitlines()
INVALID_UTF8 = (FIXTURES / "vector-cri-partial-invalid-utf8.bin.log").read_bytes().rstrip(b"\n")
DOCKER = (FIXTURES / "fluentbit-dockerjson-stderr_stdout_text.log").read_bytes().splitlines()

UID = "0f4e3c8a-1b2d-4e5f-8a9b-0c1d2e3f4a5b"


class Crash(Exception):
    """What the fake ledger raises to end a run in the middle of `emit`."""


class Sink:
    """A fake ledger: keeps each batch `emit` hands it; can crash after storing batch
    number `crash_after` (durable, state not saved) or before storing it (not durable)."""

    def __init__(self, *, crash_after: int = 0, crash_before: int = 0) -> None:
        self.batches: list[list[Record]] = []
        self.crash_after = crash_after
        self.crash_before = crash_before
        self.cond = threading.Condition()

    @property
    def records(self) -> list[Record]:
        with self.cond:
            return [r for batch in self.batches for r in batch]

    def __call__(self, batch: list[Record]) -> None:
        if self.crash_before and len(self.batches) + 1 == self.crash_before:
            raise Crash("before storing")
        with self.cond:
            self.batches.append(batch)
            self.cond.notify_all()
        if self.crash_after and len(self.batches) == self.crash_after:
            raise Crash("after storing")

    def wait_for(self, n: int, timeout: float = 5.0) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: sum(map(len, self.batches)) >= n, timeout)
        assert ok, f"only {len(self.records)} of {n} records arrived"


@contextmanager
def running(
    source: ContainerLogsSource, sink: Callable[[list[Record]], None], resume_seq: int = 0
) -> Iterator[list[Any]]:
    """Run `source` in a thread; stop it on leaving (it must end within 2 s). The list
    yielded gets the exception `run` raised, if any."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            source.run(sink, stop, resume_seq)
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        stop.set()
        began = time.monotonic()
        thread.join(5)
        assert not thread.is_alive(), "run did not end after stop"
        assert time.monotonic() - began < 2
    if errors and not isinstance(errors[0], Crash):
        raise errors[0]


def make(root: Path, state: Path, **kw: Any) -> ContainerLogsSource:
    kw.setdefault("poll_interval_secs", 0.01)
    kw.setdefault("start_at", "beginning")
    return ContainerLogsSource("node", str(root), state, kw.pop("rejects", Rejects()), **kw)


def log_path(root: Path, ns: str, pod: str, container: str, restart: int = 0) -> Path:
    directory = root / f"{ns}_{pod}_{UID}" / container
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{restart}.log"


def write(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def cri(text: str, stream: str = "stdout", tag: str = "F", when: str = "") -> bytes:
    when = when or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{when} {stream} {tag} {text}\n".encode()


def rotate(live: Path, stamp: str) -> Path:
    """What the kubelet does: rename the live file to its backup; the runtime reopens."""
    backup = live.with_name(f"{live.name}.{stamp}")
    os.rename(live, backup)
    live.touch()
    return backup


def compress(backup: Path) -> Path:
    """The kubelet's compression of a backup: ``.gz.tmp``, renamed, then the plain removed."""
    tmp = backup.with_name(backup.name + ".gz.tmp")
    with gzip.open(tmp, "wb") as out:
        out.write(backup.read_bytes())
    target = backup.with_name(backup.name + ".gz")
    os.rename(tmp, target)
    backup.unlink()
    return target


def logs_of(records: list[Record]) -> list[tuple[str, str, str]]:
    return [(r.view.pod, r.view.stream, r.view.log) for r in records]


def seqs(records: list[Record]) -> list[int]:
    return [r.seq for r in records]


def state_of(state: Path) -> dict[str, Any]:
    (path,) = state.glob("container_logs.*.json")
    value = json.loads(path.read_bytes())
    assert isinstance(value, dict)
    return value


# --- reading -----------------------------------------------------------------------------


def test_concurrent_pods_and_containers_each_in_order(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    paths = [
        log_path(root, ns, pod, container)
        for ns, pod in (("kube-system", "kube-apiserver-kind"), ("team-a", "web-7d9f"))
        for container in ("main", "sidecar")
    ]
    for path in paths:
        path.touch()
    expected: dict[Path, list[str]] = {p: [] for p in paths}

    def writer(path: Path, seed: int) -> None:
        for i in range(60):
            line = KUEUE[(i + seed) % len(KUEUE)]
            text = line.split(b" ", 3)[3].decode() + f" #{i}"
            expected[path].append(text)
            data = line.split(b" ", 3)[0] + b" stderr F " + text.encode() + b"\n"
            if i % 7 == 0:  # the tail sees a line without its newline yet
                write(path, data[:30])
                time.sleep(0.002)
                write(path, data[30:])
            else:
                write(path, data)
            time.sleep(0.001)

    source = make(root, tmp_path / "state", batch_events=16)
    sink = Sink()
    with running(source, sink):
        threads = [threading.Thread(target=writer, args=(p, i)) for i, p in enumerate(paths)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sink.wait_for(240)
    records = sink.records
    assert seqs(records) == list(range(1, 241))
    for path in paths:
        mine = [r for r in records if r.view.file == str(path)]
        assert [r.view.log for r in mine] == expected[path]
        assert [r.line for r in mine] == list(range(1, 61))
        assert mine[0].view.namespace == path.parent.parent.name.split("_")[0]
        assert mine[0].view.container == path.parent.name
        assert mine[0].view.pod_uid == UID and mine[0].view.restart == 0
    assert all(len(b) <= 16 and len({r.view.file for r in b}) == 1 for b in sink.batches)
    assert (source.events, source.rejected, source.gaps) == (240, 0, 0)
    assert source.last_event_ns == records[-1].received_ns
    assert all(r.source == "container_log" and r.instance == "node" for r in records)


def test_partial_chunks_across_writes_and_a_rotation_then_gzip(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    live = log_path(root, "default", "app", "main")
    f1, p1, p2, f2 = DESIGN_DOC
    write(live, f1 + b"\n" + p1 + b"\n" + p2[:20])  # a P line split across two writes
    source = make(root, tmp_path / "state")
    sink = Sink()
    with running(source, sink):
        sink.wait_for(1)
        write(live, p2[20:] + b"\n")
        backup = rotate(live, "20250203-155314")
        write(live, b"2016-10-06T00:17:10.113242941Z stdout F  and its end\n" + f2 + b"\n")
        sink.wait_for(3)
        compress(backup)
        write(live, KUEUE[0] + b"\n")
        sink.wait_for(4)
    assert logs_of(sink.records) == [
        ("app", "stdout", "The content of the log entry 1"),
        ("app", "stdout", "First line of log entry 2Second line of the log entry 2 and its end"),
        ("app", "stderr", "Last line of the log entry 2"),
        ("app", "stderr", KUEUE[0].split(b" ", 3)[3].decode()),
    ]
    first, joined, stderr, last = sink.records
    assert (first.line, joined.line, stderr.line, last.line) == (1, 2, 2, 3)
    assert joined.view.file == str(live)  # the file its first line was read from
    assert joined.time_ns == first.time_ns  # the time of its first chunk
    assert source.rotations_seen == 1 and source.rejected == 0 and source.gaps == 0


def test_invalid_utf8_split_joins_into_the_right_character(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    live = log_path(root, "default", "app", "main")
    write(live, INVALID_UTF8 + b"\n")
    source = make(root, tmp_path / "state")
    sink = Sink()
    with running(source, sink):
        time.sleep(0.05)
        assert not sink.records  # the P chunk waits for the rest of its message
        write(live, b"2021-08-05T17:35:26.640507539Z stdout F \x80!\n")
        sink.wait_for(1)
    (record,) = sink.records
    assert record.view.log == "Hello World Привет Мир!"
    assert record.view.invalid_utf8 is not True


def test_java_stack_trace_is_one_record(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    live = log_path(root, "shop", "orders-5c6b", "java")
    trace = [
        'Exception in thread "main" java.lang.IllegalStateException: no connection',
        "\tat com.example.orders.Db.connect(Db.java:42)",
        "\tat com.example.orders.Main.main(Main.java:12)",
        "Caused by: java.net.ConnectException: Connection refused",
        "\t... 2 more",
    ]
    write(live, b"".join(cri(t, "stderr") for t in trace) + cri("started", "stdout"))
    write(live, cri("next request", "stderr"))
    sink = Sink()
    with running(make(root, tmp_path / "state"), sink):
        sink.wait_for(3)
    assert logs_of(sink.records) == [
        ("orders-5c6b", "stdout", "started"),
        ("orders-5c6b", "stderr", "\n".join(trace)),
        ("orders-5c6b", "stderr", "next request"),
    ]
    assert [r.line for r in sink.records] == [6, 1, 7]


def test_docker_json_file_lines(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    live = log_path(root, "default", "annotations-parser", "app")
    write(live, b"\n".join(DOCKER) + b"\n")
    sink = Sink()
    with running(make(root, tmp_path / "state"), sink):
        sink.wait_for(2)
    text = "[2019-04-05T14:54:23.584269761] Simple text"
    assert [(r.view.stream, r.view.log) for r in sink.records] == [
        ("stderr", text),
        ("stdout", text),
    ]


def test_new_pod_mid_run_and_namespace_filters(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    write(log_path(root, "team-a", "a", "main"), cri("a1"))
    write(log_path(root, "kube-system", "coredns-1", "coredns"), cri("ks1"))
    write(log_path(root, "team-b", "b", "main"), cri("b1"))
    source = make(root, tmp_path / "state", exclude_namespaces=["kube-system"])
    sink = Sink()
    with running(source, sink):
        sink.wait_for(2)
        write(log_path(root, "team-c", "c-0", "main"), cri("c1"))  # a new pod
        write(log_path(root, "team-a", "a", "main", restart=1), cri("a2"))  # restarted
        write(log_path(root, "kube-system", "etcd-0", "etcd"), cri("ks2"))
        sink.wait_for(4)
        time.sleep(0.05)
    assert sorted(r.view.log for r in sink.records) == ["a1", "a2", "b1", "c1"]
    only = make(
        root,
        tmp_path / "state2",
        include_namespaces=["team-a", "kube-system"],
        exclude_namespaces=["kube-system"],  # excluding wins over including
    )
    sink = Sink()
    with running(only, sink):
        sink.wait_for(2)
        time.sleep(0.05)
    assert sorted(r.view.log for r in sink.records) == ["a1", "a2"]


def test_start_at_end_skips_what_is_there(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    live = log_path(root, "default", "app", "main")
    write(live, cri("old"))
    source = make(root, tmp_path / "state", start_at="end")
    sink = Sink()
    with running(source, sink):
        time.sleep(0.05)
        write(live, cri("new"))
        write(log_path(root, "default", "later", "main"), cri("new pod"))
        sink.wait_for(2)
    assert sorted(r.view.log for r in sink.records) == ["new", "new pod"]


def test_bad_lines_are_counted_and_kept(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    live = log_path(root, "default", "app", "main")
    rejects = Rejects()
    write(live, cri("one") + b"garbage\n" + b"2024-13-45T00:00:00Z stdout F x\n")
    write(live, cri("two"))
    source = make(root, tmp_path / "state", rejects=rejects)
    sink = Sink()
    with running(source, sink):
        sink.wait_for(2)
    assert [r.view.log for r in sink.records] == ["one", "two"]
    assert [r.line for r in sink.records] == [1, 4]
    assert source.rejected == rejects.count == 2
    assert [x.where for x in rejects.first] == [f"{live}:2", f"{live}:3"]
    assert "no stream" in rejects.first[0].reason and "RFC 3339" in rejects.first[1].reason
    assert rejects.first[0].raw == "garbage"


def test_deleted_pod_lets_out_its_pending_message(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    live = log_path(root, "default", "gone", "main")
    write(live, cri("whole") + cri("half a message", tag="P"))
    source = make(root, tmp_path / "state")
    sink = Sink()
    with running(source, sink):
        sink.wait_for(1)
        shutil.rmtree(live.parent.parent)
        sink.wait_for(2)
        deadline = time.monotonic() + 2
        while source.logs and time.monotonic() < deadline:
            time.sleep(0.01)
        assert source.logs == 0
    assert [(r.view.log, r.view.partial) for r in sink.records] == [
        ("whole", msgspec.UNSET),
        ("half a message", True),
    ]
    assert state_of(tmp_path / "state")["logs"] == []


# --- restart -----------------------------------------------------------------------------


def test_restart_with_a_pending_partial_neither_loses_nor_repeats(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    live = log_path(root, "default", "app", "main")
    state = tmp_path / "state"
    # stdout's message is pending over stderr lines that are emitted meanwhile
    write(live, cri("e1", "stderr") + cri("out part 1, ", tag="P") + cri("e2", "stderr"))
    first = Sink()
    with running(make(root, state), first):
        first.wait_for(2)
        time.sleep(0.05)
    saved = state_of(state)
    assert saved["seq"] == 2
    (log,) = saved["logs"]
    assert (log["line"], log["span"], log["refeed"]) == (1, 2, [0])  # line 2 again

    backup = rotate(live, "20250203-155314")  # rotated and compressed while down
    write(live, cri("part 2", tag="P") + cri("e3", "stderr") + cri(" end"))
    compress(backup)
    second = Sink()
    with running(make(root, state), second, resume_seq=2):
        second.wait_for(2)
        time.sleep(0.05)
    assert logs_of(first.records) == [("app", "stderr", "e1"), ("app", "stderr", "e2")]
    assert logs_of(second.records) == [
        ("app", "stderr", "e3"),
        ("app", "stdout", "out part 1, part 2 end"),
    ]
    assert seqs(second.records) == [3, 4]
    assert second.records[1].line == 2  # its first line, in the backup


def test_crash_between_emit_and_state_save_skips_what_the_ledger_holds(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    state = tmp_path / "state"
    paths = [log_path(root, "default", f"p{i}", "main") for i in range(3)]
    expected: list[tuple[str, str, str]] = []
    for i, path in enumerate(paths):
        for n in range(10):
            write(path, cri(f"p{i} line {n}"))
            expected.append((f"p{i}", "stdout", f"p{i} line {n}"))
    ledger: list[Record] = []
    for crash_after in (2, 3, 5):  # durable, then a crash before the state is saved
        sink = Sink(crash_after=crash_after)
        with running(make(root, state, batch_events=3), sink, resume_seq=len(ledger)) as err:
            sink.wait_for(crash_after * 1)
            deadline = time.monotonic() + 2
            while not err and time.monotonic() < deadline:
                time.sleep(0.01)
            assert err and isinstance(err[0], Crash)
        ledger += sink.records
        assert state_of(state)["seq"] < len(ledger)
    sink = Sink(crash_before=2)  # a batch that never became durable
    with running(make(root, state, batch_events=3), sink, resume_seq=len(ledger)) as err:
        deadline = time.monotonic() + 2
        while not err and time.monotonic() < deadline:
            time.sleep(0.01)
    ledger += sink.records
    last = Sink()
    with running(make(root, state, batch_events=3), last, resume_seq=len(ledger)):
        last.wait_for(30 - len(ledger))
        time.sleep(0.05)
    ledger += last.records
    assert seqs(ledger) == list(range(1, 31))
    assert sorted(logs_of(ledger)) == sorted(expected)
    for i in range(3):
        mine = [r.view.log for r in ledger if r.view.pod == f"p{i}"]
        assert mine == [f"p{i} line {n}" for n in range(10)]


def test_state_and_ledger_disagreeing_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    write(log_path(root, "default", "app", "main"), cri("x"))
    state = tmp_path / "state"
    with pytest.raises(InputError, match=r"state file .* is missing"):
        make(root, state).run(Sink(), threading.Event(), 5)
    sink = Sink()
    with running(make(root, state), sink):
        sink.wait_for(1)
    with pytest.raises(InputError, match="ledger holds only 0"):
        make(root, state).run(Sink(), threading.Event(), 0)


def test_stop_drains_promptly_while_lines_keep_coming(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    live = log_path(root, "default", "busy", "main")
    state = tmp_path / "state"
    halt = threading.Event()

    def writer() -> None:
        n = 0
        while not halt.is_set():
            write(live, b"".join(cri(f"line {n + i}") for i in range(50)))
            n += 50
            time.sleep(0.001)

    thread = threading.Thread(target=writer)
    thread.start()
    sink = Sink()
    try:
        with running(make(root, state, batch_events=64), sink):  # asserts run ends < 2 s
            sink.wait_for(500)
    finally:
        halt.set()
        thread.join()
    records = sink.records
    assert state_of(state)["seq"] == len(records)  # the batch in hand was saved
    assert [r.view.log for r in records] == [f"line {n}" for n in range(len(records))]
    second = Sink()
    total = live.read_bytes().count(b"\n")
    with running(make(root, state, batch_events=64), second, resume_seq=len(records)):
        second.wait_for(total - len(records))
    assert [r.view.log for r in records + second.records] == [f"line {n}" for n in range(total)]
    assert seqs(records + second.records) == list(range(1, total + 1))


def test_restart_with_a_held_trace_emits_it_once(tmp_path: Path) -> None:
    root = tmp_path / "pods"
    live = log_path(root, "default", "py", "main")
    state = tmp_path / "state"
    trace = [
        "Traceback (most recent call last):",
        '  File "/app/main.py", line 3, in <module>',
        "    run()",
        "ValueError: bad input",
    ]
    write(live, cri("before") + b"".join(cri(t, "stderr") for t in trace))
    first = Sink()
    with running(make(root, state), first):
        first.wait_for(1)  # the trace is held: its window (1 s) has not passed
    assert [r.view.log for r in first.records] == ["before"]
    assert state_of(state)["logs"][0]["refeed"] == [0, 1, 2, 3]
    second = Sink()
    with running(make(root, state), second, resume_seq=1):
        write(live, cri("after", "stderr"))
        second.wait_for(2)
        time.sleep(0.05)
    assert [(r.seq, r.line, r.view.log) for r in second.records] == [
        (2, 2, "\n".join(trace)),
        (3, 6, "after"),
    ]


def _run_unprivileged(root: Path, go_on: int, results: int) -> NoReturn:
    """In a forked child: run the source as an unprivileged user (root reads any file),
    write what it emitted and reported to `results`, and exit."""
    code = 1
    try:
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        sink, rejects = Sink(), Rejects()
        source = make(root, root / "state", rejects=rejects)
        with running(source, sink) as errors:
            sink.wait_for(1)
            write(log_path(root, "default", "web", "app"), cri("a2"))
            sink.wait_for(2)
            os.read(go_on, 1)  # the parent made the other log readable
            sink.wait_for(3)
        got = {
            "logs": [r.view.log for r in sink.records],
            "errors": [repr(e) for e in errors],
            "gaps": source.gaps,
            "reports": [(r.where, r.reason) for r in rejects.first],
        }
        os.write(results, json.dumps(got).encode())
        code = 0
    finally:
        os._exit(code)


def test_an_unreadable_log_is_reported_and_the_others_go_on() -> None:
    """One pod's log cannot be opened (0000): it is reported once, the other pod's lines
    keep coming, and the log is read once it becomes readable."""
    root = Path(tempfile.mkdtemp())  # outside tmp_path: the unprivileged child must reach it
    try:
        readable = log_path(root, "default", "web", "app")
        secret = log_path(root, "default", "db", "app")
        write(readable, cri("a1"))
        write(secret, cri("b1"))
        (root / "state").mkdir()
        for path in [root, *root.rglob("*")]:
            os.chmod(path, 0o777 if path.is_dir() else 0o666)
        os.chmod(secret, 0o000)
        go_on_r, go_on_w = os.pipe()
        results_r, results_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            _run_unprivileged(root, go_on_r, results_w)
        os.close(results_w)
        time.sleep(0.5)  # several polls with the file unreadable
        os.chmod(secret, 0o666)
        os.write(go_on_w, b"x")
        with os.fdopen(results_r, "rb") as fh:
            out = fh.read()
        os.close(go_on_r)
        os.close(go_on_w)
        _, status = os.waitpid(pid, 0)
        assert status == 0 and out, "the child failed"
        got = json.loads(out)
        assert got["errors"] == []
        assert sorted(got["logs"]) == ["a1", "a2", "b1"]
        assert got["gaps"] == 1
        assert [where for where, _ in got["reports"]] == [str(secret)]
        assert "permission denied" in got["reports"][0][1]
    finally:
        shutil.rmtree(root)


def test_lines_the_runtime_writes_to_the_renamed_file_before_it_reopens(tmp_path: Path) -> None:
    """The kubelet renames 0.log and creates a new one; the runtime appends to the renamed
    file until it reopens the log (CRI ReopenContainerLog)."""
    root = tmp_path / "pods"
    live = log_path(root, "default", "app", "main")
    runtime = open(live, "ab", buffering=0)  # noqa: SIM115 - closed below
    try:
        runtime.write(cri("one"))
        source = make(root, tmp_path / "state", poll_interval_secs=0.05)
        sink = Sink()
        with running(source, sink):
            sink.wait_for(1)
            rotate(live, "20250203-155314")
            time.sleep(0.1)  # two polls: the new file is there, the old one quiet
            runtime.write(cri("two"))
            runtime.close()
            runtime = open(live, "ab", buffering=0)  # noqa: SIM115 - reopened
            runtime.write(cri("three"))
            sink.wait_for(3)
    finally:
        runtime.close()
    assert [text for _, _, text in logs_of(sink.records)] == ["one", "two", "three"]
    assert (source.rotations_seen, source.rejected, source.gaps) == (1, 0, 0)


def test_a_backup_deleted_before_it_was_read_is_a_gap(tmp_path: Path) -> None:
    """While `emit` holds the first batch, the log is rotated three times and each older
    backup deleted: the second file is never read."""
    root = tmp_path / "pods"
    live = log_path(root, "default", "app", "main")
    write(live, cri("one"))
    sink = HeldSink()

    def rotate_keeping_one(secs: int) -> None:
        # kubelet stamps backups in local time, to the second: later than the live file's
        # opening, so that they count as newer than it
        rotate(live, datetime.fromtimestamp(time.time() + secs).strftime("%Y%m%d-%H%M%S"))
        for old in sorted(live.parent.glob("0.log.*"))[:-1]:
            old.unlink()

    rejects = Rejects()
    source = make(root, tmp_path / "state", rejects=rejects)
    with running(source, sink):
        assert sink.entered.wait(10)
        rotate_keeping_one(10)
        write(live, cri("two"))
        rotate_keeping_one(11)  # the first backup: read already
        write(live, cri("three"))
        rotate_keeping_one(12)  # the second: never read
        write(live, cri("four"))
        sink.release()
        sink.wait_for(3)
        time.sleep(0.1)
    assert [text for _, _, text in logs_of(sink.records)] == ["one", "three", "four"]
    assert rejects.count == source.gaps == 1 and "gone" in rejects.first[0].reason


@pytest.mark.parametrize("restart", [False, True])
def test_an_empty_log_rotated_and_compressed_within_its_second_loses_nothing(
    tmp_path: Path, restart: bool
) -> None:
    """An empty 0.log is rotated within the second it was opened in, its backup
    compressed, and lines written to the new 0.log (while running, or while stopped).
    The new lines come once. The empty file cannot be found again (no content to know it
    by, a new inode once compressed, and a name stamped to the second, which cannot be
    ordered against the millisecond it was opened at): it counts as gone, reported."""
    root = tmp_path / "pods"
    live = log_path(root, "default", "app", "main")
    live.touch()
    write(log_path(root, "default", "other", "main"), cri("other"))
    state = tmp_path / "state"
    rejects = Rejects()
    sink = Sink()

    def rotate_now() -> None:
        compress(rotate(live, datetime.now().strftime("%Y%m%d-%H%M%S")))
        write(live, cri("one") + cri("two"))

    source = make(root, state, rejects=rejects)
    with running(source, sink):
        sink.wait_for(1)
        if not restart:
            rotate_now()
            sink.wait_for(3)
            time.sleep(0.1)  # nothing more comes
    if restart:
        rotate_now()
        source = make(root, state, rejects=rejects)
        with running(source, sink, resume_seq=1):
            sink.wait_for(3)
            time.sleep(0.1)
    assert sorted(r.view.log for r in sink.records) == ["one", "other", "two"]
    assert seqs(sink.records) == [1, 2, 3]
    assert source.gaps <= 1 and rejects.count == source.gaps
    assert all("gone" in item.reason for item in rejects.first)
