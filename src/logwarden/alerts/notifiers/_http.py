"""One HTTP POST per send, over a kept connection: what every HTTP notifier shares.

2xx is delivered. 408, 429 and 5xx, and a connection that fails, are worth retrying
(`SendError(retry=True)`, with the `Retry-After` the receiver sent, in seconds or as an
HTTP date); any other status is a refusal of the payload itself (`retry=False`). The
connection is kept between sends and closed on any error; a kept connection the server
has closed meanwhile is reopened once within the same send.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import ssl
import urllib.parse
from collections.abc import Mapping

from logwarden.alerts.notifiers.base import SendError

__all__ = ["HttpPost", "retry_after_secs"]

_STALE = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


class HttpPost:
    """POSTs to `url`. `allow_http` admits http:// (services that run next to logwarden);
    `secret_url` keeps the URL's path out of messages (a Slack webhook's token)."""

    def __init__(
        self,
        url: str,
        *,
        ca_file: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_secs: float = 10.0,
        allow_http: bool = False,
        secret_url: bool = False,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        schemes = ("https", "http") if allow_http else ("https",)
        if parts.scheme not in schemes or not parts.hostname:
            shown = f"{parts.scheme}://{parts.hostname}/..." if secret_url else url
            wanted = " or ".join(f"{s}://HOST/..." for s in schemes)
            raise ValueError(f"url must be {wanted}: {shown}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.shown = f"{parts.scheme}://{parts.netloc}" + ("/..." if secret_url else self.target)
        self._context = ssl.create_default_context(cafile=ca_file) if self._tls else None
        self._headers = dict(headers or {})
        self._timeout = timeout_secs
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """POST `body` with the constructor's headers and `headers`; the response body."""
        sent = {**self._headers, **(headers or {})}
        fresh = self._conn is None
        try:
            try:
                response = self._exchange(body, sent)
            except _STALE:
                if fresh:
                    raise
                self.close()
                response = self._exchange(body, sent)
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SendError(f"{self.shown}: {str(exc) or type(exc).__name__}", retry=True) from exc
        status = response.status
        if 200 <= status < 300:
            return answer
        self.close()
        retry = status in (408, 429) or status >= 500
        after = retry_after_secs(response.getheader("Retry-After")) if retry else None
        text = answer[:200].decode("utf-8", "replace").strip()
        detail = f": {text}" if text else ""
        raise SendError(
            f"{self.shown}: HTTP {status} {response.reason}{detail}",
            retry=retry,
            retry_after_secs=after,
        )

    def _exchange(self, body: bytes, headers: dict[str, str]) -> http.client.HTTPResponse:
        if self._conn is None:
            self._conn = (
                http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._context
                )
                if self._tls
                else http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            )
        self._conn.request("POST", self.target, body=body, headers=headers)
        return self._conn.getresponse()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def retry_after_secs(value: str | None, now: datetime.datetime | None = None) -> float | None:
    """`Retry-After` in seconds from now: delay-seconds or an HTTP date; None if absent or
    not understood."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    now = now or datetime.datetime.now(datetime.UTC)
    return max(0.0, (when - now).total_seconds())
