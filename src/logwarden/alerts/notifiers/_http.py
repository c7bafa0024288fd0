"""One HTTP POST per send, over a kept connection: what every HTTP notifier shares.

2xx is delivered. 408, 429 and 5xx, and a connection that fails, are worth retrying
(`SendError(retry=True)`, with the `Retry-After` the receiver sent, in seconds or as an
HTTP date, at most a day); any other status is a refusal of the payload itself
(`retry=False`). The connection is kept between sends and closed on any error; a kept
connection the server has closed meanwhile is reopened once within the same send.

`timeout_secs` bounds the whole send, not each read: a server that trickles its answer a
byte at a time fails the send when the time is up (a timer shuts the socket down).
Messages show the URL without its query and user info (they may hold tokens); a URL with
user info is refused, since http.client would not send it anyway.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import http.client
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping

from logwarden.alerts.notifiers.base import SendError

__all__ = ["MAX_RETRY_AFTER_SECS", "HttpPost", "retry_after_secs"]

_STALE = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)
#: the longest `Retry-After` taken (a far date would otherwise stall the receiver for good)
MAX_RETRY_AFTER_SECS = 86400.0


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
        host = parts.netloc.rpartition("@")[2]
        path = "/..." if secret_url else (parts.path or "/") + ("?..." if parts.query else "")
        shown = f"{parts.scheme}://{host}{path}"
        schemes = ("https", "http") if allow_http else ("https",)
        if parts.scheme not in schemes or not parts.hostname:
            wanted = " or ".join(f"{s}://HOST/..." for s in schemes)
            raise ValueError(f"url must be {wanted}: {shown}")
        if "@" in parts.netloc:
            raise ValueError(
                f"url must not hold credentials (USER:PASSWORD@HOST): {shown}; they would"
                " not be sent: use the receiver's auth options or headers"
            )
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.shown = shown
        self._context = ssl.create_default_context(cafile=ca_file) if self._tls else None
        self._headers = dict(headers or {})
        self._timeout = timeout_secs
        self._conn: http.client.HTTPConnection | None = None
        self._expired = False

    def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
        """POST `body` with the constructor's headers and `headers`; the response body."""
        sent = {**self._headers, **(headers or {})}
        fresh = self._conn is None
        self._expired = False
        timer = threading.Timer(self._timeout, self._expire)
        timer.daemon = True
        timer.start()
        try:
            try:
                response = self._exchange(body, sent)
            except _STALE:
                if fresh or self._expired:
                    raise
                self.close()
                response = self._exchange(body, sent)
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            reason = str(exc) or type(exc).__name__
            if self._expired:
                reason = f"no answer within {self._timeout:g} s"
            raise SendError(f"{self.shown}: {reason}", retry=True) from exc
        finally:
            timer.cancel()
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
        if self._conn.sock is None:
            self._conn.connect()
            if self._expired:  # the time ran out while connecting: the timer saw no socket
                raise TimeoutError
        self._conn.request("POST", self.target, body=body, headers=headers)
        return self._conn.getresponse()

    def _expire(self) -> None:
        """The send's time is up (the timer's thread): end whatever it waits for."""
        self._expired = True
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            # socket.socket's own shutdown: an SSLSocket's would drop its TLS state
            # under the reading thread
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def retry_after_secs(value: str | None, now: datetime.datetime | None = None) -> float | None:
    """`Retry-After` in seconds from now: delay-seconds (ASCII digits) or an HTTP date, at
    most `MAX_RETRY_AFTER_SECS`; None if absent or not understood."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECS)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        secs = (when - (now or datetime.datetime.now(datetime.UTC))).total_seconds()
    except (TypeError, ValueError):
        return None
    return min(max(0.0, secs), MAX_RETRY_AFTER_SECS)
