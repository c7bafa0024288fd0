"""Alerts sent to PagerDuty's Events API v2, one event per alert (`per_alert`).

The event's `event_action` follows the alert's status: ``trigger`` (firing),
``acknowledge`` (acknowledged) or ``resolve`` (resolved); `dedup_key` is the alert's
fingerprint, so PagerDuty folds every event of one alert into one incident, and a
repeated event changes nothing (the idempotency key is not sent). A trigger carries
`payload`: `summary` (at most 1024 characters), `source` (the alert's `source` label, else
``logwarden``), `severity` (critical; high is error; medium warning; low and info info),
`timestamp` (last seen), `component` (resource), `group` (namespace), `class` (rule) and
`custom_details` (labels, annotations, count, first and last seen, the ledger links);
`links` holds the notification's `external_url`. PagerDuty answers 202.

The Events API refuses an event over 512 KB, and an alert's output can be longer (it
quotes the event): the other values in `payload` than `summary` are then cut, shorter and
shorter, until the event fits, and `custom_details.truncated` says so.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from logwarden.alerts.model import Notification
from logwarden.alerts.notifiers._http import HttpPost
from logwarden.alerts.notifiers._text import clip, rfc3339, summary

__all__ = ["EVENTS_URL", "PagerDutyNotifier"]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_ACTIONS = {"firing": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}
_SEVERITIES = {"critical": "critical", "high": "error", "medium": "warning"}
_SUMMARY_CHARS = 1024
#: the Events API's limit on one event, and how far values are cut to fit in it
_EVENT_BYTES = 512_000  # "512 KB", read as the smaller of 512 000 and 512 KiB
_CUT_CHARS = (16384, 1024, 64)
_encode = msgspec.json.Encoder().encode


class PagerDutyNotifier:
    kind: ClassVar[str] = "pagerduty"
    joins: ClassVar[bool] = False
    per_alert: ClassVar[bool] = True
    local: ClassVar[bool] = False

    def __init__(
        self,
        routing_key: str,
        *,
        url: str = EVENTS_URL,
        ca_file: str | None = None,
        timeout_secs: float = 10.0,
    ) -> None:
        if not routing_key:
            raise ValueError("pagerduty: the routing key is empty")
        self._routing_key = routing_key
        self._http = HttpPost(
            url,
            ca_file=ca_file,
            headers={"Content-Type": "application/json"},
            timeout_secs=timeout_secs,
        )

    def render(self, notification: Notification) -> bytes:
        if len(notification.alerts) != 1:
            raise ValueError(f"pagerduty takes one alert per event, not {len(notification.alerts)}")
        alert = notification.alerts[0]
        event: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": _ACTIONS[alert.status],
            "dedup_key": alert.fingerprint,
        }
        if alert.status != "firing":
            return _encode(event)
        text = clip(summary(alert), _SUMMARY_CHARS)
        labels = alert.labels
        payload: dict[str, Any] = {
            "summary": text,
            "source": labels.get("source") or "logwarden",
            "severity": _SEVERITIES.get(alert.severity, "info"),
            "timestamp": rfc3339(alert.last_ns),
            "component": labels.get("resource"),
            "group": labels.get("namespace"),
            "class": alert.rule or None,
            "custom_details": {
                "labels": labels,
                "annotations": alert.annotations,
                "count": alert.count,
                "first_seen": rfc3339(alert.first_ns),
                "last_seen": rfc3339(alert.last_ns),
                "links": alert.links,
            },
        }
        event["payload"] = {k: v for k, v in payload.items() if v is not None}
        event["client"] = "logwarden"
        if notification.external_url:
            event["client_url"] = notification.external_url
            event["links"] = [{"href": notification.external_url, "text": "logwarden"}]
        return _fitted(event)

    def send(self, payload: bytes, key: str) -> None:
        self._http.post(payload)

    def close(self) -> None:
        self._http.close()


def _fitted(event: dict[str, Any]) -> bytes:
    """`event` encoded, the values of its payload but the summary (already short) cut
    until it is within `_EVENT_BYTES`."""
    body = _encode(event)
    payload = event["payload"]
    for limit in _CUT_CHARS:
        if len(body) <= _EVENT_BYTES:
            break
        event["payload"] = {**_clipped(payload, limit), "summary": payload["summary"]}
        event["payload"]["custom_details"]["truncated"] = (
            f"values cut to {limit} characters to fit the Events API's 512 KB"
        )
        body = _encode(event)
    return body


def _clipped(value: Any, limit: int) -> Any:
    """`value` with every string in it (in dicts and lists) cut to `limit` characters."""
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, dict):
        return {k: _clipped(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_clipped(v, limit) for v in value]
    return value
