"""What the notifier tests share: a local HTTP(S) receiver and notifications to send."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logwarden.alerts.model import AlertState, Link, Notification, Status
from logwarden.generate.pki import ensure_service_pki

NOW_NS = time.time_ns()


@dataclass
class Seen:
    """One request the receiver got."""

    path: str
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: close the connection after answering without saying so (a server's idle timeout)
    drop: bool = False
    #: seconds between the body's bytes (a server that trickles its answer)
    trickle: float = 0.0


class LocalReceiver:
    """A threaded HTTP/1.1 server on 127.0.0.1 (HTTPS when given a PKI directory).

    Each request is kept in `seen`; the answer is the first of `answers`, else what
    `check(seen)` returns, else 200. `url` is the base URL, `ca` the CA file to trust.
    `port` 0 takes a free port.
    """

    def __init__(self, pki_dir: Path | None, port: int = 0) -> None:
        self.seen: list[Seen] = []
        self.answers: list[Answer] = []
        self.check: Callable[[Seen], Answer] | None = None
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.ca: str | None = None
        scheme = "http"
        if pki_dir is not None:
            pki = ensure_service_pki(pki_dir, ["127.0.0.1"])
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(pki.server_cert, pki.server_key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.ca, scheme = str(pki.ca), "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, seen: Seen) -> Answer:
        self.seen.append(seen)
        if self.answers:
            return self.answers.pop(0)
        return self.check(seen) if self.check is not None else Answer()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                answer = receiver._answer(Seen(self.path, self.headers, body))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.close_connection = answer.drop
                if not answer.trickle:
                    self.wfile.write(answer.body)
                    return
                self.wfile.flush()
                for i in range(len(answer.body)):
                    time.sleep(answer.trickle)
                    try:
                        self.wfile.write(answer.body[i : i + 1])
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        self.close_connection = True
                        return

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


def alert_state(
    fingerprint: str = "f00d",
    rule: str = "Exec into pod",
    *,
    status: Status = "firing",
    severity: str = "high",
    count: int = 3,
    **labels: str,
) -> AlertState:
    labels = {
        "alertname": rule,
        "rule": rule,
        "severity": severity,
        "namespace": "prod",
        "user": "alice",
        "fingerprint": fingerprint,
        **labels,
    }
    return AlertState(
        fingerprint=fingerprint,
        labels=labels,
        annotations={"summary": f"{rule}: alice ran a shell in prod/web-0"},
        severity=severity,
        status=status,
        first_ns=NOW_NS - 60_000_000_000,
        last_ns=NOW_NS - 1_000_000_000,
        count=count,
        links=[Link(instance="audit", seq=7, time="2024-05-17T08:00:00Z", audit_id="a-1")],
        resolved_by="bob" if status == "resolved" else None,
        resolved_ns=NOW_NS if status == "resolved" else None,
    )


def notification(
    *alerts: AlertState, id: str = "n-0001", group_labels: dict[str, str] | None = None
) -> Notification:
    alerts = alerts or (alert_state(),)
    resolved = all(a.status == "resolved" for a in alerts)
    labels = {"alertname": alerts[0].rule} if group_labels is None else group_labels
    return Notification(
        id=id,
        receiver="oncall",
        route="root",
        group_key="{}:" + json.dumps(labels, sort_keys=True, ensure_ascii=False),
        group_labels=labels,
        status="resolved" if resolved else "firing",
        alerts=list(alerts),
        time_ns=NOW_NS,
        external_url="https://logwarden.example/alerts",
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
