"""The PagerDuty notifier against a local HTTPS server playing the Events API v2."""

from __future__ import annotations

import json
import re

import msgspec
import pytest

from logwarden.alerts.notifiers.base import SendError
from logwarden.alerts.notifiers.pagerduty import PagerDutyNotifier

from .notifier_helpers import Answer, LocalReceiver, Seen, alert_state, notification

ROUTING_KEY = "R0123456789abcdef0123456789abcdef"


def events_api(seen: Seen) -> Answer:
    """What the Events API checks before it answers 202 (its documented limits: an event
    of at most 512 KB, a summary of at most 1024 characters, a dedup_key of 255)."""
    event = seen.json()
    ok = (
        len(seen.body) <= 512_000
        and seen.path == "/v2/enqueue"
        and event.get("routing_key") == ROUTING_KEY
        and event.get("event_action") in ("trigger", "acknowledge", "resolve")
        and 0 < len(event.get("dedup_key", "")) <= 255
    )
    if ok and event["event_action"] == "trigger":
        payload = event.get("payload", {})
        ok = (
            0 < len(payload.get("summary", "")) <= 1024
            and bool(payload.get("source"))
            and payload.get("severity") in ("critical", "error", "warning", "info")
        )
    if not ok:
        return Answer(400, b'{"status":"invalid event","message":"Event object is invalid"}')
    reply = {"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]}
    return Answer(202, json.dumps(reply).encode())


def test_trigger_acknowledge_and_resolve_share_the_dedup_key(
    https_receiver: LocalReceiver,
) -> None:
    https_receiver.check = events_api
    pd = PagerDutyNotifier(
        ROUTING_KEY, url=https_receiver.url + "/v2/enqueue", ca_file=https_receiver.ca
    )
    assert pd.per_alert
    for status in ("firing", "acknowledged", "resolved"):
        sent = notification(alert_state("f00d", status=status, severity="critical"))
        pd.send(pd.render(sent), sent.id)
    pd.close()
    events = [s.json() for s in https_receiver.seen]
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in events} == {"f00d"}
    payload = events[0]["payload"]
    assert payload["summary"] == "Exec into pod: alice ran a shell in prod/web-0"
    assert payload["severity"] == "critical" and payload["source"] == "logwarden"
    assert payload["group"] == "prod" and payload["class"] == "Exec into pod"
    details = payload["custom_details"]
    assert details["count"] == 3 and details["labels"]["user"] == "alice"
    assert details["links"][0]["audit_id"] == "a-1"
    assert payload["timestamp"].endswith("Z") and details["first_seen"] < details["last_seen"]
    assert events[0]["links"] == [{"href": "https://logwarden.example/alerts", "text": "logwarden"}]
    assert "payload" not in events[2]


def test_severities_map_and_long_summaries_are_cut_to_1024() -> None:
    pd = PagerDutyNotifier(ROUTING_KEY)
    for ours, theirs in (("high", "error"), ("medium", "warning"), ("low", "info")):
        event = msgspec.json.decode(pd.render(notification(alert_state(severity=ours))))
        assert event["payload"]["severity"] == theirs
    long = alert_state()
    long.annotations["summary"] = "x" * 5000
    summary = msgspec.json.decode(pd.render(notification(long)))["payload"]["summary"]
    assert len(summary) == 1024
    with pytest.raises(ValueError, match="one alert"):
        pd.render(notification(alert_state("a"), alert_state("b")))


def test_an_alert_with_a_huge_output_still_fits_in_one_event(
    https_receiver: LocalReceiver,
) -> None:
    https_receiver.check = events_api
    pd = PagerDutyNotifier(
        ROUTING_KEY, url=https_receiver.url + "/v2/enqueue", ca_file=https_receiver.ca
    )
    huge = alert_state(resource="pods/" + "w" * 300_000)
    huge.annotations["summary"] = "✓\x00\n" * 200_000  # 1 MB of UTF-8, 2.6 MB as JSON
    huge.annotations["description"] = "d" * 100_000
    small = alert_state("f1")
    small.annotations["description"] = "d" * 100_000
    for sent in (notification(huge), notification(small)):
        pd.send(pd.render(sent), sent.id)
    pd.close()
    cut, whole = (s.json()["payload"] for s in https_receiver.seen)
    assert len(cut["summary"]) == 1024 and cut["summary"].startswith("✓\x00\n✓")
    details = cut["custom_details"]
    assert "512 KB" in details["truncated"]
    assert details["annotations"]["summary"].startswith("✓\x00\n")
    assert details["annotations"]["description"].endswith("d…")
    assert details["labels"]["user"] == "alice" and details["count"] == 3
    assert cut["component"].startswith("pods/www") and cut["severity"] == "error"
    # what fits is left whole
    assert "truncated" not in whole["custom_details"]
    assert whole["custom_details"]["annotations"]["description"] == "d" * 100_000


@pytest.mark.parametrize(("status", "retry"), [(400, False), (429, True)])
def test_refusals_and_throttling(https_receiver: LocalReceiver, status: int, retry: bool) -> None:
    pd = PagerDutyNotifier(
        ROUTING_KEY, url=https_receiver.url + "/v2/enqueue", ca_file=https_receiver.ca
    )
    https_receiver.answers = [Answer(status, b'{"status":"throttled"}')]
    with pytest.raises(SendError, match=str(status)) as caught:
        pd.send(pd.render(notification()), "n-1")
    assert caught.value.retry is retry


def test_an_empty_routing_key_and_plain_http_are_refused() -> None:
    with pytest.raises(ValueError, match="routing key"):
        PagerDutyNotifier("")
    with pytest.raises(ValueError, match=re.escape("http://events.example/v2/enqueue")):
        PagerDutyNotifier(ROUTING_KEY, url="http://events.example/v2/enqueue")
