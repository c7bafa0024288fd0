"""The HTTP side of `logwarden run`: the audit webhooks and the alerts API (HTTPS), and the
operations endpoint.

Each `k8s_audit_webhook` source gets its own HTTPS listener (uvicorn, TLS 1.2 or newer);
with a client CA configured, a client without a certificate that CA signed is refused
during the TLS handshake, before any request exists. The operations listener (plain HTTP,
localhost by default) serves:

- ``/metrics``: Prometheus text format (`logwarden.metrics`);
- ``/healthz``: 200 while the process runs;
- ``/readyz``: 200 while the pipeline takes records, else 503 with the reason.

`Service.serve` runs every listener until `stop` is set, then closes the webhooks first
(requests in flight finish: they wait for the ledger), and returns; the caller drains the
pipeline, then calls `close_operations`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from logwarden._asgi import Receive, Scope, Send, reply
from logwarden.alerts.api import AlertsApi
from logwarden.metrics import CONTENT_TYPE, Metrics
from logwarden.sources.k8s_audit_webhook import K8sAuditWebhook

__all__ = ["Listener", "Service", "TlsFiles"]

log = logging.getLogger("logwarden.service")


@dataclass(frozen=True)
class TlsFiles:
    """The server's certificate and key, and the CA that client certificates must chain to."""

    cert: Path
    key: Path
    client_ca: Path | None = None


@dataclass(frozen=True)
class Listener:
    host: str
    port: int


#: how long a connection may go without a whole request head (after it opened, or after the
#: last response): a client that connects and stalls is closed (uvicorn has no such timer)
HEAD_SECS = 10.0


class _Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol that closes a connection whose request head does not
    come within `HEAD_SECS` (half-open connections would otherwise hold file descriptors
    until the service has none left for the apiserver)."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete and self._head_timer:
            self._head_timer.cancel()  # a request is in: its body has timers of its own
            self._head_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(HEAD_SECS, self._late)

    def _late(self) -> None:
        self._head_timer = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the service (several run in one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Service:
    """Every listener of `logwarden run`."""

    def __init__(self, operations: Listener, metrics: Metrics, ready: Callable[[], str | None]):
        """`ready` returns None when the pipeline takes records, else why not."""
        self._metrics = metrics
        self._ready = ready
        self._ops = _server(self._operations, operations, None)
        self._webhooks: list[tuple[Any, _Server]] = []

    def add_webhook(self, app: K8sAuditWebhook, listen: Listener, tls: TlsFiles) -> None:
        self._webhooks.append((app, _server(app, listen, tls)))

    def add_api(self, app: AlertsApi, listen: Listener, tls: TlsFiles) -> None:
        """The alerts API on its own HTTPS listener; it stops with the webhooks."""
        self._webhooks.append((app, _server(app, listen, tls)))

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; then close the webhooks (in-flight requests finish)."""
        tasks = [asyncio.create_task(self._ops.serve())]
        tasks += [asyncio.create_task(server.serve()) for _, server in self._webhooks]
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
        if stopped not in done:  # a listener ended on its own: it could not start
            stop.set()
        for _, server in self._webhooks:
            server.should_exit = True
        await asyncio.gather(*tasks[1:], return_exceptions=True)
        self._ops_task = tasks[0]
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    @property
    def started(self) -> bool:
        return self._ops.started and all(server.started for _, server in self._webhooks)

    async def close_operations(self) -> None:
        """Stop the operations listener (after the pipeline has drained)."""
        self._ops.should_exit = True
        task = getattr(self, "_ops_task", None)
        if task is not None:
            await task

    async def _operations(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/metrics":
            await _reply(send, 200, self._metrics.expose(), CONTENT_TYPE)
        elif path == "/healthz":
            await _reply(send, 200, b"ok\n")
        elif path == "/readyz":
            why = self._ready()
            if why is None and self.started:
                await _reply(send, 200, b"ready\n")
            else:
                await _reply(send, 503, f"not ready: {why or 'starting'}\n".encode())
        else:
            await _reply(send, 404, b"not found: /metrics, /healthz, /readyz\n")


def _server(app: Any, listen: Listener, tls: TlsFiles | None) -> _Server:
    options: dict[str, Any] = {}
    if tls is not None:
        options = {
            "ssl_certfile": str(tls.cert),
            "ssl_keyfile": str(tls.key),
            "ssl_context_factory": _tls12,
        }
        if tls.client_ca is not None:
            options["ssl_ca_certs"] = str(tls.client_ca)
            options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    config = uvicorn.Config(
        app,
        host=listen.host,
        port=listen.port,
        lifespan="off",
        interface="asgi3",
        proxy_headers=False,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=30,
        http=_Protocol,
        **options,
    )
    return _Server(config)


def _tls12(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def _reply(send: Send, status: int, body: bytes, ctype: str = "text/plain") -> None:
    await reply(send, status, body, ctype.encode())
