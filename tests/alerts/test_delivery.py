"""Delivery from the outbox: restarts lose nothing, retries back off, receivers are paced,
refusals are kept, a failing receiver is reported; through fakes of our Notifier protocol
and through a real local HTTPS receiver."""

from __future__ import annotations

import collections
import http.client
import http.server
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from logwarden.alerts._pacing import TokenBucket, backoff_secs
from logwarden.alerts.delivery import Delivery, Dispatcher
from logwarden.alerts.model import AlertState, Notification
from logwarden.alerts.notifiers.base import SendError
from logwarden.alerts.outbox import Outbox
from logwarden.generate.pki import ensure_service_pki

T0 = 1_700_000_000.0


def notification(n: int, receiver: str = "r", alerts: int = 1) -> Notification:
    states = [
        AlertState(
            fingerprint=f"fp{n}-{a}",
            labels={"alertname": "R", "rule": "R"},
            annotations={"summary": f"alert {n}"},
            severity="high",
            first_ns=1,
            last_ns=1,
        )
        for a in range(alerts)
    ]
    return Notification(
        id=f"n{n:03d}",
        receiver=receiver,
        route="default",
        group_key="g",
        group_labels={},
        status="firing",
        alerts=states,
        time_ns=1,
    )


class FakeClock:
    """A clock for `Delivery(clock=..., sleep=...)`: sleeping advances it at once."""

    def __init__(self) -> None:
        self.now = T0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, secs: float) -> None:
        with self._lock:
            self.now += secs


class Fake:
    """A notifier (our own protocol) that records each send; `answer(payload, key, clock)`
    may raise to fail it."""

    kind: ClassVar[str] = "fake"
    joins: ClassVar[bool] = False
    per_alert: ClassVar[bool] = False
    local: ClassVar[bool] = False

    def __init__(
        self,
        answer: Callable[[bytes, str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.answer = answer
        self.clock = clock
        self.sends: list[tuple[bytes, str]] = []
        self.attempts: list[float] = []
        self.closed = False

    def render(self, notification: Notification) -> bytes:
        alerts = [a.fingerprint for a in notification.alerts]
        return msgspec.json.encode({"id": notification.id, "alerts": alerts}) + b"\n"

    def send(self, payload: bytes, key: str) -> None:
        self.attempts.append(self.clock())
        if self.answer is not None:
            self.answer(payload, key)
        self.sends.append((payload, key))

    def close(self) -> None:
        self.closed = True

    def ids(self) -> list[str]:
        return [msgspec.json.decode(line)["id"] for p, _ in self.sends for line in p.splitlines()]


class Joining(Fake):
    kind: ClassVar[str] = "fakelines"
    joins = True


class PerAlert(Fake):
    kind: ClassVar[str] = "fakepager"
    per_alert = True


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


@contextmanager
def dispatching(tmp: Path, notifier: Fake, **options: Any) -> Iterator[tuple[Dispatcher, Delivery]]:
    outbox = Outbox(tmp / "outbox.db")
    delivery = Delivery("r", notifier, outbox, **options)
    dispatcher = Dispatcher([delivery], outbox)
    dispatcher.start()
    try:
        yield dispatcher, delivery
    finally:
        dispatcher.close(drain_secs=0.5)


def fast(clock: FakeClock, **options: Any) -> dict[str, Any]:
    return {"clock": clock, "sleep": clock.sleep, **options}


# -- a real HTTPS receiver, and a tiny notifier that POSTs to it ------------------------


class Poster(Fake):
    """POSTs each payload with an Idempotency-Key header; 5xx and 429 are retried."""

    kind: ClassVar[str] = "post"

    def __init__(self, port: int, ca: Path) -> None:
        super().__init__()
        self.port = port
        self.context = ssl.create_default_context(cafile=str(ca))

    def send(self, payload: bytes, key: str) -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=2)
        try:
            conn.request("POST", "/hook", body=payload, headers={"Idempotency-Key": key})
            status = conn.getresponse().status
        except OSError as exc:
            raise SendError(f"127.0.0.1:{self.port}: {exc}", retry=True) from exc
        finally:
            conn.close()
        if status != 200:
            raise SendError(f"HTTP {status}", retry=status >= 500 or status == 429)


@contextmanager
def https_receiver(tmp: Path, status: list[int]) -> Iterator[tuple[int, Path, list[str]]]:
    """A local HTTPS server answering `status[0]` (changeable), recording accepted keys."""
    pki = ensure_service_pki(tmp / "pki", ["127.0.0.1"])
    accepted: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            if status[0] == 200:
                accepted.append(self.headers["Idempotency-Key"])
            self.send_response(status[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], pki.ca, accepted
    finally:
        server.shutdown()
        server.server_close()


def test_a_receiver_down_across_a_restart_gets_every_notification_once(tmp_path: Path) -> None:
    status = [503]
    with https_receiver(tmp_path, status) as (port, ca, accepted):
        # logwarden runs while the receiver answers 503, then stops
        outbox = Outbox(tmp_path / "outbox.db")
        delivery = Delivery("hook", Poster(port, ca), outbox, min_backoff_secs=0.01)
        first = Dispatcher([delivery], outbox)
        first.start()
        first.submit([notification(i, "hook") for i in range(50)], time.time_ns())
        wait_until(lambda: first.stats()["hook"].retried >= 3)
        first.close(drain_secs=0.1)
        assert accepted == []
        # the receiver is back; logwarden starts again on the same outbox
        status[0] = 200
        outbox = Outbox(tmp_path / "outbox.db")
        delivery = Delivery("hook", Poster(port, ca), outbox, min_backoff_secs=0.01)
        second = Dispatcher([delivery], outbox)
        second.start()
        wait_until(lambda: second.stats()["hook"].pending == 0)
        stats = second.stats()["hook"]
        second.close()
    assert collections.Counter(accepted) == {f"n{i:03d}": 1 for i in range(50)}
    assert accepted == sorted(accepted)  # in order, too
    assert stats.sent == 50 and not stats.failing


def test_close_sends_what_is_due_and_releases_the_notifier(tmp_path: Path) -> None:
    fake = Fake()
    with dispatching(tmp_path, fake) as (dispatcher, _):
        dispatcher.submit([notification(i) for i in range(20)], time.time_ns())
    assert fake.ids() == [f"n{i:03d}" for i in range(20)]
    assert fake.closed


def test_backoff_is_exponential_with_jitter_within_bounds() -> None:
    for attempts in range(1, 12):
        cap = min(8.0, 0.5 * 2**attempts)
        assert backoff_secs(attempts, 0.5, 8.0, rand=lambda: 0.0) == 0.5
        assert backoff_secs(attempts, 0.5, 8.0, rand=lambda: 1.0) == cap
        assert 0.5 <= backoff_secs(attempts, 0.5, 8.0) <= cap
    assert backoff_secs(10_000, 0.5, 8.0, rand=lambda: 1.0) == 8.0
    assert backoff_secs(1, 0.5, 8.0, retry_after_secs=120.0) == 120.0


def test_retries_of_a_failing_receiver_wait_the_computed_backoffs(tmp_path: Path) -> None:
    clock = FakeClock()

    def fail_twelve_times(payload: bytes, key: str) -> None:
        if len(fake.attempts) <= 12:
            raise SendError("HTTP 503", retry=True)

    fake = Fake(fail_twelve_times, clock)
    options = fast(clock, min_backoff_secs=0.5, max_backoff_secs=8.0)
    with dispatching(tmp_path, fake, **options) as (dispatcher, _):
        dispatcher.submit([notification(1), notification(2)], int(clock() * 1e9))
        wait_until(lambda: len(fake.sends) == 2)
        assert dispatcher.stats()["r"].retried == 12
    gaps = [b - a for a, b in zip(fake.attempts, fake.attempts[1:], strict=False)][:12]
    for attempt, gap in enumerate(gaps, start=1):
        assert 0.5 - 1e-6 <= gap <= min(8.0, 0.5 * 2**attempt) + 1e-6, (attempt, gap)
    assert len({round(g, 3) for g in gaps[4:]}) > 1  # jittered, not a fixed 8 s
    assert fake.ids() == ["n001", "n002"]  # the second waited behind the first


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    clock = FakeClock()

    def slow_down_once(payload: bytes, key: str) -> None:
        if len(fake.attempts) == 1:
            raise SendError("HTTP 429", retry=True, retry_after_secs=30.0)

    fake = Fake(slow_down_once, clock)
    with dispatching(tmp_path, fake, **fast(clock, min_backoff_secs=0.01)) as (dispatcher, _):
        dispatcher.submit([notification(1)], int(clock() * 1e9))
        wait_until(lambda: len(fake.sends) == 1)
    assert fake.attempts[1] - fake.attempts[0] >= 30.0


def test_the_token_bucket_paces_sends() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, 5, clock)
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    assert bucket.take() == pytest.approx(0.1)
    clock.sleep(0.1)
    assert bucket.take() == 0.0
    assert TokenBucket(0.0, 1, clock).take() == 0.0


def test_a_rate_limit_spreads_sends_without_counting_failures(tmp_path: Path) -> None:
    clock = FakeClock()
    fake = Fake(clock=clock)
    options = fast(clock, rate_limit_per_sec=10.0, burst=5)
    with dispatching(tmp_path, fake, **options) as (dispatcher, delivery):
        dispatcher.submit([notification(i) for i in range(20)], int(clock() * 1e9))
        wait_until(lambda: len(fake.sends) == 20)
        stats = dispatcher.stats()["r"]
    assert 1.5 - 1e-5 <= fake.attempts[-1] - T0 <= 1.6  # 15 sends after the burst of 5
    assert fake.attempts[4] == T0  # the burst went at once
    assert stats.retried == 0 and not stats.failing
    assert delivery.name == "outbox<retry<ratelimit<fake>>>"


def test_a_refused_notification_is_kept_dead_and_reported(tmp_path: Path) -> None:
    health: list[tuple[str, bool, str]] = []
    refuse = {"n001"}

    def refuse_n001(payload: bytes, key: str) -> None:
        if key in refuse:
            raise SendError("HTTP 400 Bad Request", retry=False)

    fake = Fake(refuse_n001)
    options = {"on_health": lambda *a: health.append(a)}
    with dispatching(tmp_path, fake, **options) as (dispatcher, _):
        dispatcher.submit([notification(i) for i in range(3)], time.time_ns())
        wait_until(lambda: len(fake.sends) == 2)
        assert fake.ids() == ["n000", "n002"]
        [dead] = dispatcher.failed("r")
        assert (dead.key, dead.state, dead.last_error) == ("n001", "dead", "HTTP 400 Bad Request")
        assert dispatcher.failures() == {"r": 1}
        assert dispatcher.stats()["r"].dead_kept == 1
        assert [(r, ok) for r, ok, _ in health] == [("r", False), ("r", True)]
        assert "refused notification 'n001'" in health[0][2]
        refuse.clear()  # someone fixed it: send it again
        assert dispatcher.requeue("r", time.time_ns()) == 1
        wait_until(lambda: len(fake.sends) == 3)
        assert dispatcher.failed() == []


def test_a_refused_joined_send_is_split_to_find_the_refused_payload(tmp_path: Path) -> None:
    def refuse_n005(payload: bytes, key: str) -> None:
        if b"n005" in payload:
            raise SendError("bad line", retry=False)

    fake = Joining(refuse_n005)
    with dispatching(tmp_path, fake) as (dispatcher, _):
        dispatcher.submit([notification(i) for i in range(10)], time.time_ns())
        wait_until(lambda: len(fake.ids()) == 9)
        assert [i.key for i in dispatcher.failed()] == ["n005"]
    assert fake.ids() == [f"n{i:03d}" for i in range(10) if i != 5]


def test_a_receiver_failing_for_long_is_reported_once_then_its_recovery(tmp_path: Path) -> None:
    clock = FakeClock()
    health: list[tuple[str, bool, str]] = []

    def down_for_a_minute(payload: bytes, key: str) -> None:
        if clock() < T0 + 60:
            raise SendError("connection refused", retry=True)

    fake = Fake(down_for_a_minute, clock)
    options = fast(
        clock,
        min_backoff_secs=1.0,
        max_backoff_secs=4.0,
        failing_after_secs=20.0,
        on_health=lambda *a: health.append(a),
    )
    with dispatching(tmp_path, fake, **options) as (dispatcher, _):
        dispatcher.submit([notification(1)], int(clock() * 1e9))
        wait_until(lambda: len(fake.sends) == 1)
        assert dispatcher.stats()["r"].retried >= 15
    assert [(r, ok) for r, ok, _ in health] == [("r", False), ("r", True)]
    assert health[0][2].startswith("receiver 'r' has failed for 2")
    assert health[0][2].endswith(": connection refused")


def test_joined_payloads_go_in_few_sends_in_order(tmp_path: Path) -> None:
    fake = Joining()
    with dispatching(tmp_path, fake) as (dispatcher, _):
        dispatcher.submit([notification(i) for i in range(100)], time.time_ns())
        wait_until(lambda: len(fake.ids()) == 100)
    assert fake.ids() == [f"n{i:03d}" for i in range(100)]
    assert len(fake.sends) <= 3


def test_a_per_alert_notifier_gets_one_notification_per_alert(tmp_path: Path) -> None:
    fake = PerAlert()
    with dispatching(tmp_path, fake) as (dispatcher, _):
        dispatcher.submit([notification(1, alerts=3)], time.time_ns())
        wait_until(lambda: len(fake.sends) == 3)
    assert [key for _, key in fake.sends] == ["n001/fp1-0", "n001/fp1-1", "n001/fp1-2"]
    assert [msgspec.json.decode(p)["alerts"] for p, _ in fake.sends] == [
        ["fp1-0"],
        ["fp1-1"],
        ["fp1-2"],
    ]


def test_a_notifier_bug_is_logged_and_retried_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def crash_once(payload: bytes, key: str) -> None:
        if len(fake.attempts) == 1:
            raise RuntimeError("oops")

    fake = Fake(crash_once)
    with (
        caplog.at_level(logging.ERROR, "logwarden.alerts"),
        dispatching(tmp_path, fake, min_backoff_secs=0.01) as (dispatcher, _),
    ):
        dispatcher.submit([notification(1), notification(2)], time.time_ns())
        wait_until(lambda: len(fake.sends) == 2)
        assert dispatcher.stats()["r"].retried == 1
        assert "delivery-r" in {t.name for t in threading.enumerate()}
    [record] = [r for r in caplog.records if r.exc_info]
    assert "raised instead of SendError" in record.getMessage()
    assert fake.ids() == ["n001", "n002"]


def test_unknown_receivers_and_unrenderable_notifications(tmp_path: Path) -> None:
    class Broken(Fake):
        def render(self, notification: Notification) -> bytes:
            if notification.id == "n001":
                raise KeyError("summary")
            return super().render(notification)

    fake = Broken()
    with dispatching(tmp_path, fake) as (dispatcher, _):
        with pytest.raises(ValueError, match="unknown receiver 'nobody'"):
            dispatcher.submit([notification(0), notification(9, "nobody")], time.time_ns())
        dispatcher.submit([notification(i) for i in range(3)], time.time_ns())
        wait_until(lambda: len(fake.sends) == 2)
        [kept] = dispatcher.failed("r")
        assert (
            kept.state == "unrendered" and kept.last_error == "render failed: KeyError: 'summary'"
        )
        assert msgspec.json.decode(kept.body, type=Notification).id == "n001"
        assert dispatcher.failures() == {"r": 1}
    assert fake.ids() == ["n000", "n002"]


def test_stats_show_the_backlog_of_a_failing_receiver(tmp_path: Path) -> None:
    clock = FakeClock()

    def down(payload: bytes, key: str) -> None:
        raise SendError("HTTP 502", retry=True)

    fake = Fake(down, clock)
    options = fast(clock, min_backoff_secs=100.0, max_backoff_secs=100.0)
    with dispatching(tmp_path, fake, **options) as (dispatcher, _):
        dispatcher.submit([notification(1), notification(2)], int(clock() * 1e9))
        wait_until(lambda: len(fake.attempts) >= 2)
        stats = dispatcher.stats()["r"]
    assert stats.pending == 2 and stats.failing and stats.last_error == "HTTP 502"
    assert stats.oldest_pending_age_secs >= 100.0 and stats.sent == 0
