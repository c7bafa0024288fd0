"""Notifications POSTed as JSON to an HTTPS endpoint, signed per Standard Webhooks.

The body is the `Notification` as JSON (`id`, `receiver`, `route`, `group_key`,
`group_labels`, `status`, `alerts` (each an `AlertState`), `time_ns`, `escalation`,
`level`, `round`, `external_url`), `Content-Type: application/json`.

With a secret (``whsec_<base64>``), each send carries the Standard Webhooks headers
(https://www.standardwebhooks.com): `webhook-id` (the notification id: the same on every
retry, so a receiver can drop what it already has), `webhook-timestamp` (unix seconds of
this attempt) and `webhook-signature`, ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
keyed with the secret's decoded bytes. The signature is made in `send`, since the
timestamp is the attempt's. Without a secret, `webhook-signature` is left out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import ClassVar

import msgspec

from logwarden.alerts.model import Notification
from logwarden.alerts.notifiers._http import HttpPost

__all__ = ["WebhookNotifier", "sign"]

_encode = msgspec.json.Encoder().encode


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks `webhook-signature` value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _secret_key(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret must be whsec_ followed by base64") from exc
    if not key:  # an empty HMAC key signs what anyone could sign
        raise ValueError("webhook secret must be whsec_ followed by base64, not empty")
    return key


class WebhookNotifier:
    kind: ClassVar[str] = "webhook"
    joins: ClassVar[bool] = False
    per_alert: ClassVar[bool] = False
    local: ClassVar[bool] = False

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        ca_file: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_secs: float = 10.0,
    ) -> None:
        self._key = _secret_key(secret) if secret is not None else None
        self._http = HttpPost(
            url,
            ca_file=ca_file,
            headers={**(headers or {}), "Content-Type": "application/json"},
            timeout_secs=timeout_secs,
        )

    def render(self, notification: Notification) -> bytes:
        return _encode(notification)

    def send(self, payload: bytes, key: str) -> None:
        now = int(time.time())
        headers = {"webhook-id": key, "webhook-timestamp": str(now)}
        if self._key is not None:
            headers["webhook-signature"] = sign(self._key, key, now, payload)
        self._http.post(payload, headers)

    def close(self) -> None:
        self._http.close()
