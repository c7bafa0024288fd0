"""The CloudEvents notifier against a local HTTPS receiver, read back with the CloudEvents
SDK (cloudevents on PyPI) in both content modes."""

from __future__ import annotations

import datetime
import json

import msgspec
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat

from logwarden.alerts.model import Notification
from logwarden.alerts.notifiers.base import SendError
from logwarden.alerts.notifiers.cloudevents import CloudEventsNotifier

from .notifier_helpers import Answer, LocalReceiver, Seen, alert_state, notification


def parsed(seen: Seen) -> tuple[dict[str, object], object]:
    message = HTTPMessage(headers=dict(seen.headers.items()), body=seen.body)
    event = from_http(message, JSONFormat())
    return event.get_attributes(), event.get_data()


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_an_event_carries_the_required_attributes_and_the_notification(
    https_receiver: LocalReceiver, mode: str
) -> None:
    notifier = CloudEventsNotifier(
        https_receiver.url + "/events",
        source="urn:logwarden:prod-cluster",
        mode=mode,  # type: ignore[arg-type]
        ca_file=https_receiver.ca,
    )
    sent = notification(alert_state(), group_labels={"alertname": "Exec into pod ✓ 100%"})
    notifier.send(notifier.render(sent), sent.id)
    notifier.close()
    seen = https_receiver.seen[0]
    if mode == "structured":
        assert seen.headers["Content-Type"] == "application/cloudevents+json"
        assert json.loads(seen.body)["specversion"] == "1.0"
    else:
        assert seen.headers["Content-Type"] == "application/json"
        assert seen.headers["ce-id"] == "n-0001" and seen.headers["ce-specversion"] == "1.0"
        assert "%E2%9C%93%20100%25" in seen.headers["ce-subject"]
        assert seen.headers.get("ce-data") is None
    attributes, data = parsed(seen)
    assert attributes["specversion"] == "1.0"
    assert attributes["id"] == "n-0001"
    assert attributes["source"] == "urn:logwarden:prod-cluster"
    assert attributes["type"] == "io.logwarden.alert.firing"
    assert attributes["subject"] == sent.group_key
    assert attributes["datacontenttype"] == "application/json"
    assert attributes["time"] == datetime.datetime.fromtimestamp(
        sent.time_ns // 1000 / 1e6, datetime.UTC
    )
    assert msgspec.convert(data, Notification) == sent


def test_a_resolved_notification_has_the_resolved_type_and_5xx_is_retried(
    https_receiver: LocalReceiver,
) -> None:
    notifier = CloudEventsNotifier(https_receiver.url, ca_file=https_receiver.ca)
    payload = notifier.render(notification(alert_state(status="resolved")))
    event = json.loads(payload)
    assert event["type"] == "io.logwarden.alert.resolved" and event["source"] == "logwarden"
    https_receiver.answers = [Answer(503)]
    with pytest.raises(SendError) as caught:
        notifier.send(payload, "n-1")
    assert caught.value.retry
