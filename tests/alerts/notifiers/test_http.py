"""The HTTP post every HTTP notifier shares: statuses, Retry-After, kept connections."""

from __future__ import annotations

import datetime
import time

import pytest

from logwarden.alerts.notifiers._http import MAX_RETRY_AFTER_SECS, HttpPost, retry_after_secs
from logwarden.alerts.notifiers.base import SendError

from .notifier_helpers import Answer, LocalReceiver, free_port


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = datetime.datetime(2024, 5, 17, 8, 0, 0, tzinfo=datetime.UTC)
    assert retry_after_secs("2", now) == 2.0
    assert retry_after_secs("Fri, 17 May 2024 08:00:30 GMT", now) == 30.0
    assert retry_after_secs("Fri, 17 May 2024 07:00:00 GMT", now) == 0.0
    assert retry_after_secs("soon", now) is None
    assert retry_after_secs(None, now) is None
    # digits that are not ASCII are not a number of seconds (float() refuses them)
    assert retry_after_secs("\u00b2", now) is None
    # the outbox keeps the next attempt in nanoseconds: a far date must not overflow it
    assert retry_after_secs("Fri, 31 Dec 9999 23:59:59 GMT", now) == MAX_RETRY_AFTER_SECS
    assert retry_after_secs("9" * 30, now) == MAX_RETRY_AFTER_SECS


def test_an_odd_retry_after_from_a_server_is_no_crash(https_receiver: LocalReceiver) -> None:
    post = HttpPost(https_receiver.url, ca_file=https_receiver.ca)
    https_receiver.answers = [Answer(429, b"slow down", {"Retry-After": "\u00b2"})]
    with pytest.raises(SendError, match="429") as caught:
        post.post(b"{}")
    assert caught.value.retry and caught.value.retry_after_secs is None
    post.close()


@pytest.mark.parametrize(
    ("status", "retry"), [(400, False), (404, False), (408, True), (429, True), (502, True)]
)
def test_statuses_say_whether_to_retry(
    https_receiver: LocalReceiver, status: int, retry: bool
) -> None:
    post = HttpPost(https_receiver.url, ca_file=https_receiver.ca)
    https_receiver.answers = [Answer(status, b"nope", {"Retry-After": "7"})]
    with pytest.raises(SendError, match=f"HTTP {status}.*nope") as caught:
        post.post(b"{}")
    assert caught.value.retry is retry
    assert caught.value.retry_after_secs == (7.0 if retry else None)
    assert post.post(b"{}") == b""
    post.close()


def test_a_kept_connection_the_server_dropped_is_reopened(https_receiver: LocalReceiver) -> None:
    post = HttpPost(https_receiver.url, ca_file=https_receiver.ca)
    https_receiver.answers = [Answer(200, b"one", drop=True), Answer(200, b"two")]
    assert post.post(b"1") == b"one"
    assert post.post(b"2") == b"two"
    assert [s.body for s in https_receiver.seen] == [b"1", b"2"]
    post.close()


def test_no_server_and_an_untrusted_certificate_are_retried(
    https_receiver: LocalReceiver,
) -> None:
    port = free_port()
    with pytest.raises(SendError) as caught:
        HttpPost(f"https://127.0.0.1:{port}/x", timeout_secs=2).post(b"{}")
    assert caught.value.retry
    with pytest.raises(SendError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        HttpPost(https_receiver.url).post(b"{}")
    assert caught.value.retry
    assert https_receiver.seen == []


def test_a_secret_url_stays_out_of_messages() -> None:
    with pytest.raises(ValueError) as caught:
        HttpPost("http://hooks.example/services/T0/B0/token", secret_url=True)
    assert "token" not in str(caught.value)
    post = HttpPost("https://127.0.0.1:1/services/T0/B0/token", secret_url=True, timeout_secs=1)
    with pytest.raises(SendError) as sent:
        post.post(b"{}")
    assert "token" not in str(sent.value) and "127.0.0.1:1" in str(sent.value)


def test_the_timeout_bounds_the_whole_send_not_each_read(https_receiver: LocalReceiver) -> None:
    post = HttpPost(https_receiver.url, ca_file=https_receiver.ca, timeout_secs=1)
    # each byte comes well within the timeout, the whole answer well after it
    https_receiver.answers = [Answer(200, b"x" * 40, trickle=0.1)]
    started = time.monotonic()
    with pytest.raises(SendError, match="no answer within 1 s") as caught:
        post.post(b"{}")
    assert time.monotonic() - started < 2.5
    assert caught.value.retry
    assert post.post(b"{}") == b""
    post.close()


def test_credentials_in_a_url_are_refused_and_a_query_stays_out_of_messages() -> None:
    with pytest.raises(ValueError, match="USER:PASSWORD@HOST") as refused:
        HttpPost("https://siem:hunter2@siem.example/hook")
    assert "hunter2" not in str(refused.value)
    assert "https://siem.example/hook" in str(refused.value)
    post = HttpPost("https://127.0.0.1:1/hook?token=hunter2", timeout_secs=1)
    with pytest.raises(SendError) as sent:
        post.post(b"{}")
    assert "hunter2" not in str(sent.value)
    assert "https://127.0.0.1:1/hook?..." in str(sent.value)
