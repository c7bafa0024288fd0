"""Notifications as CloudEvents 1.0 over HTTP (https://cloudevents.io).

The event: `specversion` ``1.0``, `id` (the notification id: the idempotency key, which
a consumer uses with `source` to drop duplicates), `source` (configurable, default
``logwarden``), `type` ``io.logwarden.alert.firing`` or ``io.logwarden.alert.resolved``,
`time` (when the notification was made), `subject` (the group key, or the fingerprint of
the alert when there is no group), `datacontenttype` ``application/json`` and `data`, the
notification as JSON (the webhook notifier's body).

Structured mode (the default) posts the whole event as the body with `Content-Type:
application/cloudevents+json`. Binary mode posts `data` as the body with `Content-Type:
application/json` and the other attributes as `ce-` headers, percent-encoded as the HTTP
binding asks (space, `"`, `%` and characters outside printable ASCII).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import msgspec

from logwarden.alerts.model import Notification
from logwarden.alerts.notifiers._http import HttpPost
from logwarden.alerts.notifiers._text import rfc3339

__all__ = ["TYPE_PREFIX", "CloudEventsNotifier"]

TYPE_PREFIX = "io.logwarden.alert."
_STRUCTURED = "application/cloudevents+json"
#: printable ASCII except space, '"' and '%' stays as it is in a header (HTTP binding 3.1.3.2)
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "%')
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


class CloudEventsNotifier:
    kind: ClassVar[str] = "cloudevents"
    joins: ClassVar[bool] = False
    per_alert: ClassVar[bool] = False
    local: ClassVar[bool] = False

    def __init__(
        self,
        url: str,
        *,
        source: str = "logwarden",
        mode: Literal["structured", "binary"] = "structured",
        ca_file: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_secs: float = 10.0,
    ) -> None:
        if not source:
            raise ValueError("cloudevents: source must not be empty")
        self._source = source
        self._binary = mode == "binary"
        self._http = HttpPost(url, ca_file=ca_file, headers=headers, timeout_secs=timeout_secs)

    def render(self, notification: Notification) -> bytes:
        """The event in structured mode (binary mode takes it apart in `send`)."""
        alerts = notification.alerts
        subject = notification.group_key or (alerts[0].fingerprint if alerts else "")
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": notification.id,
            "source": self._source,
            "type": TYPE_PREFIX + notification.status,
            "time": rfc3339(notification.time_ns),
            "datacontenttype": "application/json",
            "data": notification,
        }
        if subject:
            event["subject"] = subject
        return _encode(event)

    def send(self, payload: bytes, key: str) -> None:
        if not self._binary:
            self._http.post(payload, {"Content-Type": _STRUCTURED})
            return
        event = _decode(payload)
        data = event.pop("data")
        headers = {"Content-Type": event.pop("datacontenttype")}
        for name, value in event.items():
            headers[f"ce-{name}"] = urllib.parse.quote(str(value), safe=_SAFE)
        self._http.post(_encode(data), headers)

    def close(self) -> None:
        self._http.close()
