"""The GKE Pub/Sub source against `fake_pubsub` (a real HTTP server reached by the unmocked
google-auth client, with a service account key that signs its own tokens): the real
GKE audit LogEntries of the fixture and more built in their shape as message data,
acknowledgement only after the ledger holds a batch, crashes and lost acknowledgements
(redeliveries stored once), ack deadline extension, bad messages, errors, stop and
restart.
"""

from __future__ import annotations

import base64
import copy
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_pubsub import FakePubSub, running_pubsub, write_service_account

from logwarden.errors import InputError
from logwarden.records import Record
from logwarden.rejects import Rejects
from logwarden.sources.gke_pubsub import GkePubSubSource

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "cloud" / "gke"
#: the fixture's real GKE audit entries
FIXTURE_ENTRIES = [
    json.loads(line)
    for line in (FIXTURE / "SYNTHETIC-gke-cloudaudit-entries.jsonl").read_text().splitlines()
    if line.strip()
]
SUB = "projects/example-project/subscriptions/gke-audit"


def entry(i: int) -> bytes:
    """The i-th LogEntry: a fixture entry, made distinct past the fixture's end."""
    e = copy.deepcopy(FIXTURE_ENTRIES[i % len(FIXTURE_ENTRIES)])
    if i >= len(FIXTURE_ENTRIES):
        e["insertId"] = f"{e['insertId']}-{i}"
        e["timestamp"] = f"2024-03-12T10:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}Z"
    return json.dumps(e, separators=(",", ":")).encode()


# --- the cloud, a fake ledger and a runner ----------------------------------------------------


@pytest.fixture(autouse=True)
def gcp_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ambient Google credentials; the metadata server (ADC's last resort) refuses."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("NO_GCE_CHECK", "True")


@pytest.fixture
def pubsub() -> Iterator[FakePubSub]:
    with running_pubsub() as fake:
        fake.create(SUB, ack_deadline_secs=1)
        yield fake


@pytest.fixture
def key_file(pubsub: FakePubSub, tmp_path: Path) -> Path:
    return write_service_account(tmp_path / "sa.json")


def make_source(
    pubsub: FakePubSub, state: Path, key: Path | None, rejects: Rejects | None = None, **kw: Any
) -> GkePubSubSource:
    kw.setdefault("poll_interval_secs", 0.02)
    kw.setdefault("ack_deadline_secs", 1)
    return GkePubSubSource(
        "gke-prod",
        state,
        Rejects() if rejects is None else rejects,
        subscription=kw.pop("subscription", SUB),
        credentials_file=str(key) if key else None,
        endpoint=pubsub.url,
        **kw,
    )


class Crash(Exception):
    """What the fake ledger raises to end a run in the middle."""


class Ledger:
    """`emit` stores a batch (durable once it returns). `crash_at` makes the n-th batch of
    the current run raise, before storing it or, `durable`, after; `on_batch` runs before
    a batch is stored."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.cond = threading.Condition()
        self.batches = 0
        self.crash_at = 0
        self.durable = False
        self.on_batch: Callable[[list[Record]], None] | None = None

    def emit(self, batch: list[Record]) -> None:
        assert batch, "an empty batch was emitted"
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(batch)
        if self.batches == self.crash_at and not self.durable:
            raise Crash("the ledger failed before storing the batch")
        with self.cond:
            self.records.extend(batch)
            self.cond.notify_all()
        if self.batches == self.crash_at:
            raise Crash("the process died after the ledger stored the batch")

    def new_run(self, *, crash_at: int = 0, durable: bool = False) -> int:
        """Arm the next run; returns its resume_seq (the last seq stored)."""
        self.batches, self.crash_at, self.durable = 0, crash_at, durable
        return self.records[-1].seq if self.records else 0

    def wait_for(self, count: int, timeout: float = 10) -> None:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.records) >= count, timeout)
        assert ok, f"only {len(self.records)} of {count} records arrived"

    def raws(self) -> list[bytes]:
        return [r.raw for r in self.records]


class Running:
    """`source.run` in a thread; `finish` stops it and returns what it raised, if anything."""

    def __init__(self, source: GkePubSubSource, emit: Any, resume_seq: int = 0) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, args=(source, emit, resume_seq), daemon=True
        )
        self.thread.start()

    def _run(self, source: GkePubSubSource, emit: Any, resume_seq: int) -> None:
        try:
            source.run(emit, self.stop, resume_seq)
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout: float = 2) -> BaseException | None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the source did not stop"
        return self.error

    def ended(self, timeout: float = 10) -> BaseException | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not end"
        return self.error


def wait_until(cond: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def publish(pubsub: FakePubSub, first: int, count: int) -> list[bytes]:
    datas = [entry(i) for i in range(first, first + count)]
    for data in datas:
        pubsub.publish(SUB, data)
    return datas


def contiguous(ledger: Ledger) -> None:
    assert [r.seq for r in ledger.records] == list(range(1, len(ledger.records) + 1))


# --- delivery ---------------------------------------------------------------------------------


def test_pulls_emits_then_acknowledges(pubsub: FakePubSub, key_file: Path, tmp_path: Path) -> None:
    sent = publish(pubsub, 0, 10)
    ledger = Ledger()
    acked_at_emit: list[int] = []

    def before_storing(batch: list[Record]) -> None:
        acked = {base64.b64decode(m.data) for m in pubsub.messages(SUB) if m.acked}
        assert not acked & {r.raw for r in batch}
        acked_at_emit.append(len(acked))

    ledger.on_batch = before_storing
    source = make_source(pubsub, tmp_path / "state", key_file, max_messages=4, batch_events=3)
    running = Running(source, ledger.emit)
    ledger.wait_for(10)
    wait_until(lambda: pubsub.unacked(SUB) == 0)
    assert running.finish() is None

    assert ledger.raws() == sent  # the message data, exactly, in order
    contiguous(ledger)
    first = ledger.records[0]
    assert (first.source, first.instance, first.line) == ("gke_audit", "gke-prod", 0)
    assert first.view.insertId == "a1b2c3d4-exec-0001"
    assert first.time_ns == 1710235211402118000
    # pulls of 4 in batches of 3 (3+1, 3+1, 2): no message is acknowledged before its
    # batch is stored, and each batch is acknowledged once stored
    assert acked_at_emit == [0, 3, 4, 7, 8]
    assert all(m.deliveries == 1 for m in pubsub.messages(SUB))
    assert (source.events, source.acked, source.repeats, source.rejected) == (10, 10, 0, 0)
    assert source.last_event_ns == ledger.records[-1].received_ns > 0
    assert source.pulls >= 3
    assert pubsub.calls("pull")[0] == {"maxMessages": 4}
    # the tokens, signed by the service account key, are for Pub/Sub's scope
    assert set(pubsub.scopes) == {"https://www.googleapis.com/auth/pubsub"}


def test_application_default_credentials(
    pubsub: FakePubSub, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    sent = publish(pubsub, 0, 2)
    ledger = Ledger()
    running = Running(make_source(pubsub, tmp_path / "state", None), ledger.emit)
    ledger.wait_for(2)
    assert running.finish() is None
    assert ledger.raws() == sent


def test_crash_after_emit_before_ack_is_not_stored_twice(
    pubsub: FakePubSub, key_file: Path, tmp_path: Path
) -> None:
    """The ledger stored the batch, the process died before the state was saved and the
    messages acknowledged: Pub/Sub redelivers them after their deadline; they are repeats."""
    sent = publish(pubsub, 0, 6)
    ledger = Ledger()
    state = tmp_path / "state"
    resume = ledger.new_run(crash_at=2, durable=True)
    crashed = Running(make_source(pubsub, state, key_file, max_messages=3), ledger.emit, resume)
    assert isinstance(crashed.ended(), Crash)
    assert len(ledger.records) == 6 and pubsub.unacked(SUB) == 3

    source = make_source(pubsub, state, key_file, max_messages=3)
    running = Running(source, ledger.emit, ledger.new_run())
    wait_until(lambda: pubsub.unacked(SUB) == 0)  # after the 1 s deadline
    assert running.finish() is None
    assert ledger.raws() == sent
    contiguous(ledger)
    assert (source.repeats, source.events) == (3, 0)
    assert [m.deliveries for m in pubsub.messages(SUB)] == [1, 1, 1, 2, 2, 2]


def test_lost_acknowledgement_is_acknowledged_again(
    pubsub: FakePubSub, key_file: Path, tmp_path: Path
) -> None:
    sent = publish(pubsub, 0, 4)
    pubsub.drop_acks = True
    ledger = Ledger()
    source = make_source(pubsub, tmp_path / "state", key_file)
    running = Running(source, ledger.emit)
    ledger.wait_for(4)
    wait_until(lambda: len(pubsub.calls("acknowledge")) >= 1)
    pubsub.drop_acks = False
    wait_until(lambda: pubsub.unacked(SUB) == 0)  # redelivered after the deadline
    assert running.finish() is None
    assert ledger.raws() == sent
    assert source.repeats == 4
    assert source.acked == 8


def test_crash_before_emit_is_stored_once(
    pubsub: FakePubSub, key_file: Path, tmp_path: Path
) -> None:
    sent = publish(pubsub, 0, 5)
    ledger = Ledger()
    state = tmp_path / "state"
    crashed = Running(make_source(pubsub, state, key_file), ledger.emit, ledger.new_run(crash_at=1))
    assert isinstance(crashed.ended(), Crash)
    assert not ledger.records and pubsub.unacked(SUB) == 5

    source = make_source(pubsub, state, key_file)
    running = Running(source, ledger.emit, ledger.new_run())
    ledger.wait_for(5)
    wait_until(lambda: pubsub.unacked(SUB) == 0)
    assert running.finish() is None
    assert ledger.raws() == sent
    contiguous(ledger)
    assert source.repeats == 0


def test_same_entry_published_twice_is_a_repeat(
    pubsub: FakePubSub, key_file: Path, tmp_path: Path
) -> None:
    """A Logging sink may publish one LogEntry twice, under two messageIds."""
    pubsub.publish(SUB, entry(0))
    pubsub.publish(SUB, entry(1))
    pubsub.publish(SUB, entry(0))
    ledger = Ledger()
    source = make_source(pubsub, tmp_path / "state", key_file)
    running = Running(source, ledger.emit)
    wait_until(lambda: pubsub.unacked(SUB) == 0)
    assert running.finish() is None
    assert ledger.raws() == [entry(0), entry(1)]
    assert source.repeats == 1


def test_slow_emit_keeps_the_deadline_extended(
    pubsub: FakePubSub, key_file: Path, tmp_path: Path
) -> None:
    sent = publish(pubsub, 0, 3)
    ledger = Ledger()
    ledger.on_batch = lambda batch: time.sleep(2.2) if ledger.batches == 1 else None
    source = make_source(pubsub, tmp_path / "state", key_file)
    running = Running(source, ledger.emit)
    ledger.wait_for(3)
    wait_until(lambda: pubsub.unacked(SUB) == 0)
    assert running.finish() is None
    assert ledger.raws() == sent
    # held 2.2 s with a 1 s deadline: extended every half second, never redelivered
    assert all(m.deliveries == 1 for m in pubsub.messages(SUB))
    extensions = [b for b in pubsub.calls("modifyAckDeadline") if b["ackDeadlineSeconds"] == 1]
    assert len(extensions) >= 3
    assert source.extended >= 9
    assert source.repeats == 0


# --- bad input and errors ---------------------------------------------------------------------


def test_bad_messages_are_rejected_and_acknowledged(
    pubsub: FakePubSub, key_file: Path, tmp_path: Path
) -> None:
    container_log = {
        "insertId": "x1",
        "logName": "projects/example-project/logs/stdout",
        "jsonPayload": {"msg": "hello"},
        "timestamp": "2024-03-12T09:20:11Z",
    }
    pubsub.publish(SUB, entry(0))
    bad = [
        pubsub.publish(SUB, b"not json at all"),
        pubsub.publish(SUB, json.dumps(container_log).encode()),
        pubsub.publish(SUB, raw_data=""),
        pubsub.publish(SUB, raw_data="%%% not base64 %%%"),
    ]
    pubsub.publish(SUB, entry(1))
    ledger = Ledger()
    rejects = Rejects()
    source = make_source(pubsub, tmp_path / "state", key_file, rejects)
    running = Running(source, ledger.emit)
    wait_until(lambda: pubsub.unacked(SUB) == 0)
    assert running.finish() is None
    assert ledger.raws() == [entry(0), entry(1)]
    contiguous(ledger)
    assert source.rejected == rejects.count == 4
    assert [r.where for r in rejects.first] == [f"gke {i}" for i in bad]
    reasons = [r.reason for r in rejects.first]
    assert "not a Cloud Audit Log entry: missing protoPayload" in reasons[1]
    assert reasons[2] == "the message has no data: not a LogEntry"
    assert reasons[3] == "the message data is not base64"
    assert rejects.first[0].raw == "not json at all"
    assert all(m.deliveries == 1 for m in pubsub.messages(SUB))


def test_permission_denied_names_the_permission(
    pubsub: FakePubSub, key_file: Path, tmp_path: Path
) -> None:
    pubsub.denied.add(SUB)
    source = make_source(pubsub, tmp_path / "state", key_file)
    error = Running(source, Ledger().emit).ended()
    assert isinstance(error, InputError)
    assert SUB in str(error) and "pubsub.subscriptions.consume" in str(error)
    assert "PERMISSION_DENIED" in str(error)


def test_unknown_subscription(pubsub: FakePubSub, key_file: Path, tmp_path: Path) -> None:
    other = "projects/example-project/subscriptions/nope"
    source = make_source(pubsub, tmp_path / "state", key_file, subscription=other)
    error = Running(source, Ledger().emit).ended()
    assert isinstance(error, InputError) and "does not exist" in str(error)


def test_missing_credentials(pubsub: FakePubSub, tmp_path: Path) -> None:
    source = make_source(pubsub, tmp_path / "state", tmp_path / "no-such-key.json")
    with pytest.raises(InputError, match="cannot read the credentials file"):
        source.run(Ledger().emit, threading.Event(), 0)


def test_without_google_auth(
    pubsub: FakePubSub, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)
    source = make_source(pubsub, tmp_path / "state", key_file)
    with pytest.raises(InputError, match=r"pip install 'logwarden\[gcp\]'"):
        source.run(Ledger().emit, threading.Event(), 0)


def test_transient_errors_are_retried(pubsub: FakePubSub, key_file: Path, tmp_path: Path) -> None:
    sent = publish(pubsub, 0, 3)
    ledger = Ledger()
    source = make_source(pubsub, tmp_path / "state", key_file)
    pubsub.fail_next = [0, 503, 429, 500]  # pulls: reset, 503, 429, 500
    running = Running(source, ledger.emit)
    ledger.wait_for(3)
    wait_until(lambda: pubsub.unacked(SUB) == 0)
    assert running.finish() is None
    assert ledger.raws() == sent
    assert source.errors >= 3


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="projects/PROJECT/subscriptions/NAME"):
        GkePubSubSource("g", Path("/nonexistent"), Rejects(), subscription="gke-audit")


# --- stop and restart -------------------------------------------------------------------------


def test_stop_while_pulling_is_prompt_and_loses_nothing(tmp_path: Path) -> None:
    with running_pubsub(hold_secs=3) as pubsub:
        pubsub.create(SUB, ack_deadline_secs=60)
        key = write_service_account(tmp_path / "sa2.json")
        ledger = Ledger()
        state = tmp_path / "state"
        running = Running(make_source(pubsub, state, key), ledger.emit)
        wait_until(lambda: len(pubsub.calls("pull")) == 1)
        started = time.monotonic()
        assert running.finish() is None
        assert time.monotonic() - started < 1
        # the abandoned pull still waits on the server: what it brings is handed back, so
        # the next run has it at once (not after the 60 s deadline)
        pubsub.publish(SUB, entry(0))
        wait_until(lambda: pubsub.calls("modifyAckDeadline") != [])
        assert pubsub.calls("modifyAckDeadline")[0]["ackDeadlineSeconds"] == 0
        running = Running(make_source(pubsub, state, key), ledger.emit, ledger.new_run())
        ledger.wait_for(1, timeout=5)
        wait_until(lambda: pubsub.unacked(SUB) == 0)
        assert running.finish() is None
        assert ledger.raws() == [entry(0)]


def test_stop_drains_the_batch_in_hand(pubsub: FakePubSub, key_file: Path, tmp_path: Path) -> None:
    sent = publish(pubsub, 0, 6)
    ledger = Ledger()
    state = tmp_path / "state"
    source = make_source(pubsub, state, key_file, max_messages=6, batch_events=2)
    running = Running(source, ledger.emit)
    ledger.on_batch = lambda batch: running.stop.set()  # stop comes during the first batch
    ledger.wait_for(2)
    running.ended(timeout=2)
    assert running.error is None
    # the first batch is stored and acknowledged; the rest of the pull was handed back
    assert ledger.raws() == sent[:2]
    assert pubsub.unacked(SUB) == 4
    handed_back = [b for b in pubsub.calls("modifyAckDeadline") if b["ackDeadlineSeconds"] == 0]
    assert len(handed_back[0]["ackIds"]) == 4

    ledger.on_batch = None
    source = make_source(pubsub, state, key_file, max_messages=6, batch_events=2)
    running = Running(source, ledger.emit, ledger.new_run())
    ledger.wait_for(6, timeout=5)  # at once: no deadline to wait for
    wait_until(lambda: pubsub.unacked(SUB) == 0)
    assert running.finish() is None
    assert ledger.raws() == sent
    contiguous(ledger)


@pytest.mark.parametrize(
    "runs",
    [
        # (crash_at, durable) per run before the last; 0: stopped after some records
        [(2, False), (1, True), (0, False)],
        [(1, True), (3, False), (2, True)],
    ],
)
def test_restarts_store_everything_once(
    pubsub: FakePubSub, key_file: Path, tmp_path: Path, runs: list[tuple[int, bool]]
) -> None:
    sent = publish(pubsub, 0, 24)
    ledger = Ledger()
    state = tmp_path / "state"
    for crash_at, durable in runs:
        resume = ledger.new_run(crash_at=crash_at, durable=durable)
        source = make_source(pubsub, state, key_file, max_messages=3)
        running = Running(source, ledger.emit, resume)
        if crash_at:
            assert isinstance(running.ended(), Crash)
        else:
            ledger.wait_for(len(ledger.records) + 3)
            assert running.finish() is None
        # past the deadline, the unacknowledged come first (the fake: oldest first)
        wait_until(lambda: not pubsub.leased(SUB))
    source = make_source(pubsub, state, key_file, max_messages=3)
    running = Running(source, ledger.emit, ledger.new_run())
    ledger.wait_for(24)
    wait_until(lambda: pubsub.unacked(SUB) == 0)
    assert running.finish() is None
    assert ledger.raws() == sent  # nothing lost, nothing repeated, in order
    contiguous(ledger)


def test_state_and_ledger_must_agree(pubsub: FakePubSub, key_file: Path, tmp_path: Path) -> None:
    publish(pubsub, 0, 3)
    ledger = Ledger()
    state = tmp_path / "state"
    running = Running(make_source(pubsub, state, key_file), ledger.emit)
    ledger.wait_for(3)
    wait_until(lambda: pubsub.unacked(SUB) == 0)
    assert running.finish() is None
    with pytest.raises(InputError, match="ledger holds only 1"):
        make_source(pubsub, state, key_file).run(ledger.emit, threading.Event(), 1)
    with pytest.raises(InputError, match=r"state file .* is missing"):
        make_source(pubsub, tmp_path / "other", key_file).run(ledger.emit, threading.Event(), 3)
