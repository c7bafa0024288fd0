"""Alerts POSTed as JSON to an HTTPS endpoint (any receiver that takes a JSON body).

One alert per request, `Content-Type: application/json`, the body the alert's JSON
(`detect --format jsonl`'s object). 2xx is delivered; 408, 429 and 5xx are retried by
delivery; other statuses are not (the receiver refuses the payload itself).
"""

from __future__ import annotations

import http.client
import ssl
import urllib.parse

import msgspec

from logwarden.alerts.notifiers.base import SendError
from logwarden.records import Alert

__all__ = ["WebhookNotifier"]

_RETRY = {408, 429}


class WebhookNotifier:
    kind = "webhook"

    def __init__(
        self,
        url: str,
        *,
        ca_file: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_secs: float = 5.0,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"webhook url must be https://HOST/...: {url}")
        self.url = url
        self._host = parts.hostname
        self._port = parts.port or 443
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._context = ssl.create_default_context(cafile=ca_file)
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._timeout = timeout_secs
        self._encode = msgspec.json.Encoder().encode
        self._conn: http.client.HTTPSConnection | None = None

    def render(self, alert: Alert) -> bytes:
        return self._encode(alert)

    def send(self, payload: bytes) -> None:
        try:
            conn = self._connection()
            conn.request("POST", self._target, body=payload, headers=self._headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SendError(f"{self.url}: {exc}", retry=True) from exc
        if not 200 <= response.status < 300:
            retry = response.status in _RETRY or response.status >= 500
            raise SendError(f"{self.url}: HTTP {response.status} {response.reason}", retry=retry)

    def _connection(self) -> http.client.HTTPSConnection:
        if self._conn is None:
            self._conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._context
            )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
