"""The webhook notifier against a local HTTPS receiver that checks Standard Webhooks
signatures itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

import msgspec
import pytest

from logwarden.alerts.model import Notification
from logwarden.alerts.notifiers.base import SendError
from logwarden.alerts.notifiers.webhook import WebhookNotifier, sign

from .notifier_helpers import Answer, LocalReceiver, Seen, notification

SECRET = "whsec_" + base64.b64encode(b"a test secret of 32 bytes length").decode()


def verify(seen: Seen, secret: str) -> Answer:
    """What a receiver does (the spec's algorithm, written out here, not the notifier's)."""
    msg_id = seen.headers["webhook-id"]
    timestamp = seen.headers["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{msg_id}.{timestamp}.".encode() + seen.body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    offered = [s.partition(",")[2] for s in seen.headers["webhook-signature"].split(" ")]
    if not any(hmac.compare_digest(expected, s) for s in offered):
        return Answer(401, b"bad signature")
    if abs(time.time() - int(timestamp)) > 300:
        return Answer(401, b"stale")
    return Answer(204)


def test_signing_reproduces_the_standard_webhooks_test_vector() -> None:
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_signed_notification_arrives_and_a_retry_keeps_its_id(
    https_receiver: LocalReceiver,
) -> None:
    https_receiver.check = lambda seen: verify(seen, SECRET)
    hook = WebhookNotifier(
        https_receiver.url + "/hooks/logwarden",
        secret=SECRET,
        ca_file=https_receiver.ca,
        headers={"X-Team": "platform"},
    )
    sent = notification(id="n-42")
    payload = hook.render(sent)
    https_receiver.answers = [Answer(503)]
    with pytest.raises(SendError) as caught:
        hook.send(payload, sent.id)
    assert caught.value.retry
    hook.send(payload, sent.id)
    hook.close()
    first, second = https_receiver.seen
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "n-42"
    assert second.path == "/hooks/logwarden"
    assert second.headers["Content-Type"] == "application/json"
    assert second.headers["X-Team"] == "platform"
    assert msgspec.json.decode(second.body, type=Notification) == sent


def test_a_wrong_secret_is_refused_by_the_receiver_and_not_retried(
    https_receiver: LocalReceiver,
) -> None:
    https_receiver.check = lambda seen: verify(seen, SECRET)
    other = "whsec_" + base64.b64encode(b"another secret, also 32 bytes ok").decode()
    hook = WebhookNotifier(https_receiver.url, secret=other, ca_file=https_receiver.ca)
    with pytest.raises(SendError, match="401") as caught:
        hook.send(hook.render(notification()), "n-1")
    assert not caught.value.retry


def test_plain_http_and_a_malformed_secret_are_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("http://example.com/hook")):
        WebhookNotifier("http://example.com/hook")
    with pytest.raises(ValueError, match="whsec_"):
        WebhookNotifier("https://example.com/hook", secret="whsec_not base64!")
    with pytest.raises(ValueError, match="not empty"):
        WebhookNotifier("https://example.com/hook", secret="whsec_")
