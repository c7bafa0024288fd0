"""A small Pub/Sub server for the REST methods a subscriber calls, over HTTP on 127.0.0.1,
for the unmocked google-auth client (Google's emulator comes only with the Cloud SDK).

It keeps the messages of its subscriptions and answers, as Pub/Sub's REST API v1 does:

- ``POST /v1/projects/P/subscriptions/S:pull`` (``maxMessages``): the oldest messages that
  are neither acknowledged nor out on a live lease, as ``receivedMessages`` (``ackId``, a
  new one per delivery, ``message {data (base64), messageId, publishTime}``,
  ``deliveryAttempt``); each leaves on a lease of the subscription's ack deadline, after
  which it is delivered again. With nothing to deliver, the pull waits up to `hold_secs`
  for a message (a real pull waits a bounded time too), then answers ``{}``;
- ``:acknowledge`` (``ackIds``): the messages of current ack ids are done (stale ids, of
  an earlier delivery, are ignored, as Pub/Sub does without exactly-once delivery);
  `drop_acks` answers 200 and forgets them (an acknowledgement lost on its way);
- ``:modifyAckDeadline`` (``ackIds``, ``ackDeadlineSeconds`` 0-600): a new lease from now
  (0: delivered again at once);
- authentication: every request needs a bearer token that is a JWT signed by the key of
  `write_service_account` (google-auth signs its own tokens with a service account key of
  a universe other than googleapis.com, so no token endpoint, and no lookup of the
  account's allowed locations at iamcredentials.googleapis.com, is involved): 401
  without; the ``scope`` claims seen are kept in `scopes`;
- errors in google.rpc's JSON form: 403 PERMISSION_DENIED for a subscription in `denied`,
  404 NOT_FOUND for an unknown one, and the statuses of `fail_next` in turn for the next
  requests (0 closes the connection without an answer).

Every Pub/Sub request is kept in `requests` as (method, body).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

EMAIL = "logwarden@example-project.iam.gserviceaccount.com"

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class Message:
    id: str
    data: str  # base64, as sent
    publish_time: str
    acked: bool = False
    lease_until: float = 0.0  # monotonic time; 0: never delivered
    ack_id: str = ""
    deliveries: int = 0


@dataclass
class Subscription:
    ack_deadline_secs: float
    messages: list[Message] = field(default_factory=list)


class FakePubSub:
    """See the module doc. Use `running_pubsub` to start one."""

    def __init__(self, *, hold_secs: float = 0.3) -> None:
        self.cond = threading.Condition()
        self.hold_secs = hold_secs
        self.subscriptions: dict[str, Subscription] = {}
        self.denied: set[str] = set()
        self.fail_next: list[int] = []
        self.drop_acks = False
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.scopes: list[str] = []  # the scope claim of each new token seen
        self.tokens: set[str] = set()  # the tokens accepted
        self.closed = False
        self.url = ""
        self._next_id = 1000

    # --- what tests do ------------------------------------------------------------------------

    def create(self, name: str, *, ack_deadline_secs: float = 10) -> str:
        with self.cond:
            self.subscriptions[name] = Subscription(ack_deadline_secs)
        return name

    def publish(self, name: str, data: bytes | None = None, *, raw_data: str = "") -> str:
        """Add a message (`data`, or `raw_data` as the base64 text); return its id."""
        with self.cond:
            self._next_id += 1
            message = Message(
                id=str(self._next_id),
                data=base64.b64encode(data).decode() if data is not None else raw_data,
                publish_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            )
            self.subscriptions[name].messages.append(message)
            self.cond.notify_all()
            return message.id

    def messages(self, name: str) -> list[Message]:
        with self.cond:
            return list(self.subscriptions[name].messages)

    def unacked(self, name: str) -> int:
        return sum(not m.acked for m in self.messages(name))

    def leased(self, name: str) -> int:
        """Messages out on a lease that has not expired."""
        now = time.monotonic()
        return sum(not m.acked and m.lease_until > now for m in self.messages(name))

    def calls(self, method: str) -> list[dict[str, Any]]:
        with self.cond:
            return [body for m, body in self.requests if m == method]

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    # --- the methods --------------------------------------------------------------------------

    def pull(self, sub: Subscription, body: dict[str, Any]) -> dict[str, Any]:
        limit = int(body.get("maxMessages") or 0)
        if limit < 1:
            raise _Error(400, "maxMessages must be positive")
        give_up = time.monotonic() + self.hold_secs
        with self.cond:
            while True:
                now = time.monotonic()
                ready = [m for m in sub.messages if not m.acked and m.lease_until <= now][:limit]
                if ready or now >= give_up or self.closed:
                    break
                self.cond.wait(min(0.02, give_up - now))
            out = []
            for m in ready:
                m.deliveries += 1
                m.ack_id = f"ack-{m.id}-{m.deliveries}"
                m.lease_until = now + sub.ack_deadline_secs
                out.append(
                    {
                        "ackId": m.ack_id,
                        "message": {
                            "data": m.data,
                            "messageId": m.id,
                            "publishTime": m.publish_time,
                        },
                        "deliveryAttempt": m.deliveries,
                    }
                )
        return {"receivedMessages": out} if out else {}

    def acknowledge(self, sub: Subscription, body: dict[str, Any]) -> dict[str, Any]:
        ids = set(body.get("ackIds") or [])
        if not ids:
            raise _Error(400, "ackIds must not be empty")
        with self.cond:
            if not self.drop_acks:
                for m in sub.messages:
                    if m.ack_id in ids:
                        m.acked = True
        return {}

    def modify(self, sub: Subscription, body: dict[str, Any]) -> dict[str, Any]:
        ids = set(body.get("ackIds") or [])
        seconds = body.get("ackDeadlineSeconds")
        if not ids or not isinstance(seconds, int) or not 0 <= seconds <= 600:
            raise _Error(400, "ackIds and ackDeadlineSeconds (0-600) are required")
        with self.cond:
            now = time.monotonic()
            for m in sub.messages:
                if m.ack_id in ids and not m.acked:
                    m.lease_until = now + seconds
            self.cond.notify_all()
        return {}


class _Error(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with fake.cond:
            failure = fake.fail_next.pop(0) if fake.fail_next else None
        if failure == 0:
            self.close_connection = True
            self.connection.close()
            return
        try:
            if failure is not None:
                raise _Error(failure, "injected failure")
            self._send(200, self._pubsub(fake, body))
        except _Error as exc:
            self._send(exc.code, _error(exc.code, str(exc)))

    def _pubsub(self, fake: FakePubSub, body: bytes) -> dict[str, Any]:
        _authenticate(fake, self.headers.get("Authorization", ""))
        if not self.path.startswith("/v1/") or ":" not in self.path:
            raise _Error(404, f"no such method: {self.path}")
        name, method = self.path[4:].rsplit(":", 1)
        request = json.loads(body or b"{}")
        with fake.cond:
            fake.requests.append((method, request))
            sub = fake.subscriptions.get(name)
        if sub is None:
            raise _Error(404, f"Resource not found (resource={name.rsplit('/', 1)[-1]}).")
        if name in fake.denied:
            raise _Error(403, "User not authorized to perform this action.")
        if method == "pull":
            return fake.pull(sub, request)
        if method == "acknowledge":
            return fake.acknowledge(sub, request)
        if method == "modifyAckDeadline":
            return fake.modify(sub, request)
        raise _Error(404, f"no such method: {method}")

    def _send(self, code: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _authenticate(fake: FakePubSub, header: str) -> None:
    """Check a self-signed JWT bearer token (RS256, by the key of the test account)."""
    token = header.removeprefix("Bearer ")
    if token in fake.tokens:
        return
    try:
        head, payload, signature = token.split(".")
        _PUBLIC[0].verify(
            _b64(signature),
            f"{head}.{payload}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        claims = json.loads(_b64(payload))
        assert json.loads(_b64(head))["alg"] == "RS256"
        assert claims["iss"] == claims["sub"] == EMAIL
        assert claims["exp"] > time.time()
    except (ValueError, AssertionError, KeyError, IndexError, InvalidSignature):
        raise _Error(401, "Request had invalid authentication credentials.") from None
    with fake.cond:
        fake.tokens.add(token)
        fake.scopes.append(str(claims.get("scope", "")))


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakePubSub


@contextmanager
def running_pubsub(**options: Any) -> Iterator[FakePubSub]:
    fake = FakePubSub(**options)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.close()
        server.shutdown()
        server.server_close()
        thread.join()


_KEY: list[bytes] = []
_PUBLIC: list[RSAPublicKey] = []


def write_service_account(path: Path) -> Path:
    """A service account key file of the universe ``logwarden.test`` (a new RSA key once
    per test process)."""
    if not _KEY:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _PUBLIC.append(key.public_key())
        _KEY.append(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    info = {
        "type": "service_account",
        "project_id": "example-project",
        "private_key_id": "0123456789abcdef",
        "private_key": _KEY[0].decode(),
        "client_email": EMAIL,
        "client_id": "100000000000000000001",
        "token_uri": "https://oauth2.logwarden.test/token",
        "universe_domain": "logwarden.test",
    }
    path.write_text(json.dumps(info))
    return path
