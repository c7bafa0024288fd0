"""Notifications posted to Prometheus Alertmanager's API (`POST /api/v2/alerts`).

The body is a JSON array of postable alerts, one per tracked alert: `labels` (the alert's
labels: `alertname`, `rule`, `severity`, `fingerprint`, ...), `annotations` (the alert's,
with `count` and, once someone took it, `acknowledged_by`), `startsAt` (first seen),
`generatorURL` (the notification's `external_url`, if any) and, for a resolved alert,
`endsAt` (when it was resolved; its `startsAt` is then no later, as Alertmanager refuses an
alert that ends before it starts, which an event stamped ahead of logwarden's clock would
make). A firing alert carries no `endsAt`: Alertmanager then keeps it firing for its
`resolve_timeout`, so the alert manager re-sends open alerts more often than that.
Alertmanager identifies alerts by their labels, so a repeated post changes nothing; the
idempotency key is not sent. Alertmanager usually runs next to logwarden: http:// URLs
are accepted.
"""

from __future__ import annotations

import base64
from typing import ClassVar

import msgspec

from logwarden.alerts.model import AlertState, Notification
from logwarden.alerts.notifiers._http import HttpPost
from logwarden.alerts.notifiers._text import rfc3339

__all__ = ["AlertmanagerNotifier", "PostableAlert"]

_encode = msgspec.json.Encoder().encode


class PostableAlert(msgspec.Struct, omit_defaults=True, rename="camel"):
    """One alert as Alertmanager's API v2 takes it."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str | None = None
    generator_url: str | None = msgspec.field(default=None, name="generatorURL")


def postable(alert: AlertState, notification: Notification) -> PostableAlert:
    annotations = {**alert.annotations, "count": str(alert.count)}
    if alert.acknowledged_by:
        annotations["acknowledged_by"] = alert.acknowledged_by
    starts_ns, ends_ns = alert.first_ns, None
    if alert.status == "resolved":
        ends_ns = alert.resolved_ns or notification.time_ns
        starts_ns = min(starts_ns, ends_ns)
    return PostableAlert(
        labels={k: v for k, v in alert.labels.items() if v},
        annotations={k: v for k, v in annotations.items() if v},
        starts_at=rfc3339(starts_ns),
        ends_at=None if ends_ns is None else rfc3339(ends_ns),
        generator_url=notification.external_url,
    )


class AlertmanagerNotifier:
    kind: ClassVar[str] = "alertmanager"
    joins: ClassVar[bool] = False
    per_alert: ClassVar[bool] = False
    local: ClassVar[bool] = False

    def __init__(
        self,
        url: str,
        *,
        ca_file: str | None = None,
        username: str | None = None,
        password: str | None = None,
        bearer_token: str | None = None,
        timeout_secs: float = 10.0,
    ) -> None:
        """`url` is Alertmanager's base URL (``http://alertmanager:9093``); `username`
        with `password` is basic auth, `bearer_token` a token (not both)."""
        headers = {"Content-Type": "application/json"}
        if bearer_token is not None and username is not None:
            raise ValueError("alertmanager: set basic auth or a bearer token, not both")
        if (username is None) != (password is None):
            raise ValueError("alertmanager: basic auth needs both username and password")
        if username is not None and password is not None:
            pair = base64.b64encode(f"{username}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        elif bearer_token is not None:
            headers["Authorization"] = f"Bearer {bearer_token}"
        base = url.rstrip("/")
        self._http = HttpPost(
            f"{base}/api/v2/alerts",
            ca_file=ca_file,
            headers=headers,
            timeout_secs=timeout_secs,
            allow_http=True,
        )

    def render(self, notification: Notification) -> bytes:
        return _encode([postable(a, notification) for a in notification.alerts])

    def send(self, payload: bytes, key: str) -> None:
        self._http.post(payload)

    def close(self) -> None:
        self._http.close()
