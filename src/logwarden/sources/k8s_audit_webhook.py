"""The kube-apiserver audit webhook: audit events POSTed over HTTPS, as an ASGI app.

kube-apiserver (`--audit-webhook-config-file`, batch mode) POSTs an `EventList`; a bare
`Event` or a JSON array of events is taken too. The answer is 200 only once every event
of the body is durable in the ledger; the apiserver retries anything else, so:

- 401 when a bearer token is configured and the request does not carry it (client
  certificates are checked by TLS before a request exists, see `service`);
- 413 for a body over `max_body_bytes` (the apiserver's own batch limit is 10 MiB);
- 400 for a body that is not audit events, saying what is wrong (which item, which
  field); nothing of it is stored, and the body is counted and kept with the rejects;
- 429 when the pipeline is full (backpressure: the apiserver retries later), 503 when
  logwarden is stopping or the ledger failed;
- 404 / 405 for other paths and methods.

Records are numbered by the pipeline, which also drops events a retry sends again.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import msgspec

from logwarden._asgi import BodyStalled, Receive, Scope, Send, receive_part, reply
from logwarden.metrics import Metrics
from logwarden.normalize import k8s_audit
from logwarden.normalize.base import MalformedInput
from logwarden.records import Record, format_time_ns
from logwarden.rejects import Rejects
from logwarden.sources.base import Saturated

__all__ = ["K8sAuditWebhook", "Submit"]

#: Hands a batch to the pipeline without waiting for room: raises `Saturated` when full.
Submit = Callable[[str, Sequence[Record]], Future[int]]

_encode = msgspec.json.encode


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()):
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


class K8sAuditWebhook:
    """The ASGI app of one `k8s_audit_webhook` source."""

    def __init__(
        self,
        source_id: str,
        submit: Submit,
        rejects: Rejects,
        metrics: Metrics,
        *,
        path: str = "/audit",
        max_body_bytes: int = 10 << 20,
        bearer_token: str | None = None,
    ) -> None:
        self.source_id = source_id
        self.path = path
        self.max_body_bytes = max_body_bytes
        self._token = f"Bearer {bearer_token}".encode() if bearer_token else None
        self._submit = submit
        self._rejects = rejects
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            stored = await self._handle(scope, receive)
        except _Refused as exc:
            await _answer(send, exc.status, {"error": str(exc)}, exc.headers)
            self._metrics.requests.labels(self.source_id, str(exc.status)).inc()
            return
        await _answer(send, 200, {"stored": stored})
        self._metrics.requests.labels(self.source_id, "200").inc()

    async def _handle(self, scope: Scope, receive: Receive) -> int:
        headers = dict(scope["headers"])
        if self._token is not None and not hmac.compare_digest(  # first: a stranger learns
            headers.get(b"authorization", b""),
            self._token,  # nothing, not even the path
        ):
            raise _Refused(401, "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")])
        if scope["path"] != self.path:
            raise _Refused(404, f"no such path: {scope['path']} (audit events go to {self.path})")
        if scope["method"] != "POST":
            raise _Refused(405, "audit events are POSTed", [(b"allow", b"POST")])
        body = await self._body(headers, receive)
        peer = scope.get("client") or ("?", 0)
        client = f"{peer[0]}:{peer[1]}"
        records = self._records(body, client)
        try:
            future = self._submit(self.source_id, records)
        except Saturated as exc:
            status = 429 if exc.full else 503
            raise _Refused(status, str(exc), [(b"retry-after", b"1")]) from None
        try:
            return await asyncio.wrap_future(future)
        except Saturated as exc:
            raise _Refused(503, str(exc), [(b"retry-after", b"5")]) from None
        except MalformedInput as exc:  # found before storing (redaction could not read it)
            self._refuse_body(body, client, received=time.time_ns(), reason=str(exc))
            raise _Refused(400, f"not stored: {exc}") from None

    async def _body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _Refused(413, f"body of {int(declared)} bytes is over {self.max_body_bytes}")
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await receive_part(receive)
            except BodyStalled as exc:
                raise _Refused(408, str(exc)) from None
            if message["type"] == "http.disconnect":
                raise _Refused(400, "the client went away before the body ended")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _Refused(413, f"body over {self.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _records(self, body: bytes, client: str) -> list[Record]:
        """The records of a body, or 400 (and the body kept) if any part is not an event."""
        received = time.time_ns()
        try:
            decoded = k8s_audit.decode(body)
            items = [(body.strip(), decoded)] if not isinstance(decoded, list) else decoded
            records = []
            for raw, view in items:
                if isinstance(view, MalformedInput):  # says which item: `items[3]: ...`
                    raise view
                when = k8s_audit.event_time_ns(view)
                records.append(
                    Record(k8s_audit.SOURCE, self.source_id, 0, 0, received, when, raw, view)
                )
        except MalformedInput as exc:
            self._refuse_body(body, client, received, str(exc))
            raise _Refused(400, f"not audit events: {exc}") from None
        if not records:
            raise _Refused(400, "not audit events: the body holds no events")
        return records

    def _refuse_body(self, body: bytes, client: str, received: int, reason: str) -> None:
        """Count a refused body and keep it with why."""
        where = f"{self.source_id}: POST from {client} at {format_time_ns(received)}"
        self._rejects.report(where, reason, body)
        self._metrics.malformed.labels(self.source_id).inc()


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    await reply(send, status, _encode(body) + b"\n", b"application/json", headers)
