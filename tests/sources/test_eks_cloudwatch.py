"""The EKS CloudWatch Logs source against moto's CloudWatch Logs server (a real HTTP server,
reached by boto3 with dummy credentials from the environment): real audit events as log
messages, pagination, appends, late events, restarts and crashes at several points, bad
messages, throttling and network failures (a small gate in front of moto answers like AWS
when it throttles, refuses or drops the connection).

moto's FilterLogEvents ignores ``logStreamNamePrefix`` and returns the group's streams one
after the other (AWS interleaves them by time): the tests say so where it matters.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import msgspec
import pytest
from audit_tail_helpers import AUDIT_LINES
from moto.server import ThreadedMotoServer

from logwarden.errors import InputError
from logwarden.normalize import k8s_audit
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources.eks_cloudwatch import EksCloudWatchSource

REGION = "eu-west-1"
AUDIT = "kube-apiserver-audit-0123456789abcdef0123456789abcdef"
AUDIT_B = "kube-apiserver-audit-fedcba9876543210fedcba9876543210"
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "cloud" / "eks"
#: the real EKS audit event of the fixture, then real audit events (audit2rbac's demo logs)
MESSAGES = [
    e["message"]
    for e in json.loads((FIXTURE / "SYNTHETIC-filterlogevents-response.json").read_bytes())[
        "events"
    ]
] + [line.decode() for line in AUDIT_LINES]


# --- the cloud --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials where boto3's chain looks first; no profile, no instance role."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


class Cloud:
    """One EKS log group in moto; `put` writes messages as log events, `sent` keeps them."""

    def __init__(self, url: str) -> None:
        self.group = f"/aws/eks/test-{uuid.uuid4().hex[:8]}/cluster"
        self.client: Any = boto3.client("logs", region_name=REGION, endpoint_url=url)
        self.client.create_log_group(logGroupName=self.group)
        self.streams: set[str] = set()
        self.sent: list[tuple[str, str]] = []
        self.next = 0

    def put(self, stream: str, count: int, *, at_ms: int | None = None) -> list[str]:
        """Put the next `count` audit messages to `stream`, 1 ms apart from `at_ms` (by
        default, ending a second ago)."""
        messages = [MESSAGES[(self.next + i) % len(MESSAGES)] for i in range(count)]
        self.next += count
        self.put_messages(stream, messages, at_ms=at_ms)
        return messages

    def put_messages(self, stream: str, messages: list[str], *, at_ms: int | None = None) -> None:
        if stream not in self.streams:
            self.client.create_log_stream(logGroupName=self.group, logStreamName=stream)
            self.streams.add(stream)
        if at_ms is None:  # just past, as CloudWatch shows events (the source reads up to now)
            at_ms = time.time_ns() // 1_000_000 - len(messages) - 1000
        events = [{"timestamp": at_ms + i, "message": m} for i, m in enumerate(messages)]
        self.client.put_log_events(logGroupName=self.group, logStreamName=stream, logEvents=events)
        self.sent.extend((stream, m) for m in messages)


@pytest.fixture
def cloud(moto_url: str) -> Cloud:
    return Cloud(moto_url)


def make_source(
    cloud: Cloud, state: Path, url: str, rejects: Rejects | None = None, **options: Any
) -> EksCloudWatchSource:
    options.setdefault("poll_interval_secs", 0.02)
    return EksCloudWatchSource(
        "eks-prod",
        state,
        Rejects() if rejects is None else rejects,
        log_group=cloud.group,
        region=REGION,
        endpoint_url=url,
        **options,
    )


# --- a fake ledger and a runner ---------------------------------------------------------------


class Crash(Exception):
    """What a fake ledger raises to end a run in the middle."""


class Ledger:
    """A fake ledger: `emit` stores a batch (durable once it returns). `crash_at` makes the
    n-th batch of the current run raise, before storing it or, `durable`, after."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.cond = threading.Condition()
        self.batches = 0
        self.crash_at = 0
        self.durable = False
        self.on_batch: Callable[[], None] | None = None

    def emit(self, batch: list[Record]) -> None:
        assert batch, "an empty batch was emitted"
        self.batches += 1
        if self.batches == self.crash_at and not self.durable:
            raise Crash("the ledger failed before storing the batch")
        with self.cond:
            self.records.extend(batch)
            self.cond.notify_all()
        if self.batches == self.crash_at:
            raise Crash("the process died after the ledger stored the batch")
        if self.on_batch is not None:
            self.on_batch()

    def new_run(self, *, crash_at: int = 0, durable: bool = False) -> int:
        """Arm the next run; returns its resume_seq (the last seq stored)."""
        self.batches, self.crash_at, self.durable = 0, crash_at, durable
        return self.records[-1].seq if self.records else 0

    def wait_for(self, count: int, timeout: float = 10) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.records) >= count, timeout)
        assert ok, f"only {len(self.records)} of {count} records arrived"

    def messages(self) -> list[tuple[str, str]]:
        out = []
        for r in self.records:
            env = json.loads(r.raw)
            out.append((env["logStream"], env["message"]))
        return out


class Running:
    """`source.run` in a thread; `finish` stops it and returns what it raised, if anything."""

    def __init__(self, source: EksCloudWatchSource, emit: Any, resume_seq: int = 0) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, args=(source, emit, resume_seq), daemon=True
        )
        self.thread.start()

    def _run(self, source: EksCloudWatchSource, emit: Any, resume_seq: int) -> None:
        try:
            source.run(emit, self.stop, resume_seq)
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout: float = 2) -> BaseException | None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the source did not stop"
        return self.error


def wait_until(cond: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def saved_state(state: Path) -> dict[str, Any]:
    (path,) = state.glob("eks_cloudwatch.*.json")
    value = json.loads(path.read_bytes())
    assert isinstance(value, dict)
    return value


def in_stream_order(got: list[tuple[str, str]], sent: list[tuple[str, str]]) -> None:
    """Every sent message once; each stream's in the order put (moto does not interleave
    streams by time as AWS does)."""
    assert sorted(got) == sorted(sent)
    for stream in {s for s, _ in sent}:
        assert [m for s, m in got if s == stream] == [m for s, m in sent if s == stream]


# --- reading ----------------------------------------------------------------------------------


def test_initial_poll_in_pages_then_appends(cloud: Cloud, moto_url: str, tmp_path: Path) -> None:
    cloud.put(AUDIT, 60)
    cloud.put(AUDIT_B, 40)
    source = make_source(cloud, tmp_path / "state", moto_url, page_events=7, batch_events=16)
    ledger = Ledger()
    run = Running(source, ledger.emit)
    try:
        ledger.wait_for(100)
        pages = source.pages
        assert pages >= 100 // 7
        cloud.put(AUDIT, 25)  # appended between polls
        cloud.put(AUDIT_B, 25)
        ledger.wait_for(150)
        wait_until(lambda: source.pages > pages + 30)  # polls go on: nothing again
    finally:
        assert run.finish() is None
    in_stream_order(ledger.messages(), cloud.sent)
    assert [r.seq for r in ledger.records] == list(range(1, 151))
    assert (source.events, source.rejected, source.errors) == (150, 0, 0)
    assert source.repeats > 150  # the settle window is read again each poll
    assert source.last_event_ns == ledger.records[-1].received_ns
    first = ledger.records[0]
    env = json.loads(first.raw)
    assert set(env) == {"logGroup", "logStream", "id", "timestamp", "message"}
    assert env["logGroup"] == cloud.group
    assert (first.source, first.instance, first.line) == ("eks_audit", "eks-prod", 0)
    audit = k8s_audit.decode(env["message"].encode())
    assert first.time_ns == k8s_audit.event_time_ns(audit)
    assert first.view.audit.auditID == "0e507148-8b16-4dfb-934b-9b05dba50974"
    assert saved_state(tmp_path / "state")["seq"] == 150


def test_late_events_within_the_settle_window(cloud: Cloud, moto_url: str, tmp_path: Path) -> None:
    """An event that becomes visible after newer ones, with an older timestamp, is emitted
    if it is within the settle window; beyond it, it is missed (the documented bound)."""
    now = time.time_ns() // 1_000_000
    cloud.put(AUDIT, 20, at_ms=now - 1000)
    source = make_source(cloud, tmp_path / "state", moto_url, settle_secs=120)
    ledger = Ledger()
    run = Running(source, ledger.emit)
    try:
        ledger.wait_for(20)
        wait_until(lambda: source.pages > 5)
        late = cloud.put(AUDIT_B, 3, at_ms=now - 100_000)  # 100 s old: within 120 s
        ledger.wait_for(23)
        cloud.put(AUDIT, 1, at_ms=now - 200_000)  # 200 s old: beyond the window
        cloud.sent.pop()
        pages = source.pages
        wait_until(lambda: source.pages > pages + 10)
    finally:
        assert run.finish() is None
    assert [m for _, m in ledger.messages()[20:]] == late
    in_stream_order(ledger.messages(), cloud.sent)
    assert [r.seq for r in ledger.records] == list(range(1, 24))
    state = saved_state(tmp_path / "state")
    assert state["start_ms"] >= now - 120_000 - 1000
    assert len(state["seen"]) == 23 and state["pending"] == []


def test_remembered_ids_are_bounded(cloud: Cloud, moto_url: str, tmp_path: Path) -> None:
    """Past `remember_events`, the window shrinks instead of repeating events."""
    cloud.put(AUDIT, 30)
    source = make_source(cloud, tmp_path / "state", moto_url, remember_events=10)
    ledger = Ledger()
    run = Running(source, ledger.emit)
    try:
        ledger.wait_for(30)
        wait_until(lambda: source.pages > 10)
    finally:
        assert run.finish() is None
    assert len(ledger.records) == 30
    assert source.overflows >= 1
    assert len(saved_state(tmp_path / "state")["seen"]) <= 10


def test_a_message_that_is_not_an_audit_event_is_rejected(
    cloud: Cloud, moto_url: str, tmp_path: Path
) -> None:
    cloud.put(AUDIT, 3)
    cloud.put_messages(AUDIT, ["I0926 08:36:44.021 not an audit event"])
    cloud.put_messages(AUDIT, ['{"kind":"Event","apiVersion":"audit.k8s.io/v1"}'])
    # another control-plane stream (moto ignores the stream prefix; with AWS, a wrong
    # log_stream_prefix lets these in)
    cloud.put_messages("authenticator-0123456789abcdef", ["time=... msg=access granted"])
    cloud.put(AUDIT, 2)
    rejects = Rejects()
    source = make_source(cloud, tmp_path / "state", moto_url, rejects=rejects)
    ledger = Ledger()
    run = Running(source, ledger.emit)
    try:
        ledger.wait_for(5)
        wait_until(lambda: source.pages > 10)  # the window is read again: no new reports
    finally:
        assert run.finish() is None
    assert len(ledger.records) == 5
    assert (source.rejected, rejects.count) == (3, 3)
    ids = {e["eventId"] for e in cloud.client.filter_log_events(logGroupName=cloud.group)["events"]}
    for item in rejects.first:
        stream, _, ident = item.where.removeprefix("eks ").partition("/")
        assert item.where.startswith("eks ") and ident in ids
        assert item.raw is not None and json.loads(item.raw)["id"] == ident
        if stream == AUDIT:
            assert "message" in item.reason
        else:
            assert stream == "authenticator-0123456789abcdef"
            assert "not an audit stream" in item.reason and "log_stream_prefix" in item.reason


# --- compliance: restart, crash, stop -----------------------------------------------------------


def test_restarts_and_crashes_neither_lose_nor_repeat(
    cloud: Cloud, moto_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    ledger = Ledger()
    cloud.put(AUDIT, 60)

    def source() -> EksCloudWatchSource:
        return make_source(cloud, state, moto_url, page_events=7, batch_events=5)

    # 1. the ledger fails on the 3rd batch (5 + 2: a batch ends with its page)
    run = Running(source(), ledger.emit, ledger.new_run(crash_at=3))
    run.thread.join(5)
    assert isinstance(run.finish(), Crash) and len(ledger.records) == 7
    assert saved_state(state)["seq"] == 7
    # 2. killed after the ledger stored the 2nd batch, before the state was saved
    run = Running(source(), ledger.emit, ledger.new_run(crash_at=2, durable=True))
    run.thread.join(5)
    assert isinstance(run.finish(), Crash) and len(ledger.records) == 14
    assert saved_state(state)["seq"] == 12 and len(saved_state(state)["pending"]) == 2
    cloud.put(AUDIT, 30)  # written while down
    cloud.put(AUDIT_B, 10)
    # 3. stopped in the middle
    run = Running(source(), ledger.emit, ledger.new_run())
    ledger.wait_for(50)
    assert run.finish() is None
    # 4. the rest, and more written while running
    src = source()
    run = Running(src, ledger.emit, ledger.new_run())
    cloud.put(AUDIT, 20)
    ledger.wait_for(120)
    pages = src.pages
    wait_until(lambda: src.pages > pages + 20)
    assert run.finish() is None
    assert [r.seq for r in ledger.records] == list(range(1, 121))
    in_stream_order(ledger.messages(), cloud.sent)
    assert len({json.loads(r.raw)["id"] for r in ledger.records}) == 120


def test_stop_drains_the_batch_in_hand_and_resumes(
    cloud: Cloud, moto_url: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    cloud.put(AUDIT, 200)
    ledger = Ledger()
    source = make_source(
        cloud, state, moto_url, page_events=50, batch_events=10, poll_interval_secs=10
    )
    run = Running(source, ledger.emit)
    stopped_at: list[float] = []

    def stop_on_third() -> None:
        if ledger.batches == 3:
            run.stop.set()
            stopped_at.append(time.monotonic())

    ledger.on_batch = stop_on_third
    run.thread.join(2)
    assert not run.thread.is_alive() and run.finish() is None
    assert stopped_at
    assert len(ledger.records) == 30  # the batch in hand, and nothing after it
    assert saved_state(state)["seq"] == 30 and saved_state(state)["pending"] == []
    # restart; once caught up it waits 10 s for the next poll: stop ends that wait at once
    ledger.on_batch = None
    source = make_source(
        cloud, state, moto_url, page_events=50, batch_events=10, poll_interval_secs=10
    )
    run = Running(source, ledger.emit, ledger.new_run())
    ledger.wait_for(200)
    wait_until(lambda: saved_state(state)["seq"] == 200)
    time.sleep(0.1)
    began = time.monotonic()
    assert run.finish() is None
    assert time.monotonic() - began < 2
    assert [r.seq for r in ledger.records] == list(range(1, 201))
    in_stream_order(ledger.messages(), cloud.sent)


def test_state_and_ledger_must_agree(cloud: Cloud, moto_url: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    stop = threading.Event()
    with pytest.raises(InputError, match=r"state file .* is missing"):
        make_source(cloud, state, moto_url).run(Ledger().emit, stop, 5)
    cloud.put(AUDIT, 10)
    ledger = Ledger()
    run = Running(make_source(cloud, state, moto_url), ledger.emit)
    ledger.wait_for(10)
    assert run.finish() is None
    with pytest.raises(InputError, match="the ledger holds only 4"):
        make_source(cloud, state, moto_url).run(ledger.emit, stop, 4)
    with pytest.raises(InputError, match="do not belong together"):
        make_source(cloud, state, moto_url).run(ledger.emit, stop, 11)


# --- AWS failures -------------------------------------------------------------------------------


class Gate(ThreadingHTTPServer):
    """A proxy in front of moto that first plays `script`, one step a request:
    ``throttle``, ``unavailable``, ``deny`` (AWS's JSON error answers), ``drop`` (closes
    the connection unanswered), ``pass`` (forwards to moto, as it does after the script)."""

    daemon_threads = True

    def __init__(self, upstream: str, script: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _GateHandler)
        self.upstream = upstream.removeprefix("http://")
        self.script = script
        self.thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


_ERRORS = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "unavailable": (503, "ServiceUnavailableException", "The service is unavailable"),
    "deny": (
        400,
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/logwarden/i-0 is not authorized to "
        "perform: logs:FilterLogEvents",
    ),
}


class _GateHandler(BaseHTTPRequestHandler):
    server: Gate

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        action = self.server.script.pop(0) if self.server.script else "pass"
        if action == "drop":
            self.close_connection = True
            return
        if action in _ERRORS:
            status, code, message = _ERRORS[action]
            self._answer(status, msgspec.json.encode({"__type": code, "message": message}))
            return
        conn = http.client.HTTPConnection(self.server.upstream, timeout=10)
        try:
            conn.request("POST", self.path, body, dict(self.headers))
            resp = conn.getresponse()
            self._answer(resp.status, resp.read())
        finally:
            conn.close()

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_throttling_and_network_errors_are_retried(
    cloud: Cloud, moto_url: str, tmp_path: Path
) -> None:
    cloud.put(AUDIT, 30)
    # the first page fails four times, the second (in the middle of the pages) twice
    script = ["throttle", "throttle", "drop", "unavailable", "pass", "throttle", "drop"]
    gate = Gate(moto_url, script)
    try:
        source = make_source(cloud, tmp_path / "state", gate.url, page_events=10)
        ledger = Ledger()
        run = Running(source, ledger.emit)
        ledger.wait_for(30)
        assert run.finish() is None
    finally:
        gate.close()
    assert source.errors == 6
    assert [r.seq for r in ledger.records] == list(range(1, 31))
    in_stream_order(ledger.messages(), cloud.sent)


def test_first_start_is_kept_when_no_poll_completed(
    cloud: Cloud, moto_url: str, tmp_path: Path
) -> None:
    """The first run's start (`lookback_secs` before it) is the position even when that run
    never read a page (AWS unreachable until it was stopped): the next run, later, does not
    start `lookback_secs` before its own start and skip what lies between."""
    state = tmp_path / "state"
    cloud.put(AUDIT, 3, at_ms=time.time_ns() // 1_000_000 - 500)
    gate = Gate(moto_url, ["unavailable"] * 1000)
    try:
        first = make_source(cloud, state, gate.url, lookback_secs=1)
        run = Running(first, Ledger().emit)
        wait_until(lambda: first.errors >= 2)
        assert run.finish() is None
    finally:
        gate.close()
    time.sleep(1.5)  # the first start's lookback lies before this run's
    ledger = Ledger()
    source = make_source(cloud, state, moto_url, lookback_secs=1)
    run = Running(source, ledger.emit)
    try:
        wait_until(lambda: source.pages > 3)
    finally:
        assert run.finish() is None
    in_stream_order(ledger.messages(), cloud.sent)


def test_access_denied_names_the_log_group_and_action(
    cloud: Cloud, moto_url: str, tmp_path: Path
) -> None:
    gate = Gate(moto_url, ["deny"])
    try:
        source = make_source(cloud, tmp_path / "state", gate.url)
        with pytest.raises(InputError) as info:
            source.run(Ledger().emit, threading.Event(), 0)
    finally:
        gate.close()
    assert cloud.group in str(info.value) and "logs:FilterLogEvents" in str(info.value)
    assert source.errors == 0


def test_a_missing_log_group_is_an_input_error(moto_url: str, tmp_path: Path) -> None:
    source = EksCloudWatchSource(
        "eks-prod",
        tmp_path / "state",
        Rejects(),
        log_group="/aws/eks/nowhere/cluster",
        region=REGION,
        endpoint_url=moto_url,
    )
    with pytest.raises(InputError, match="'/aws/eks/nowhere/cluster' in eu-west-1: the log group"):
        source.run(Ledger().emit, threading.Event(), 0)
