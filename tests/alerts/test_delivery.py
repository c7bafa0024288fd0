"""Delivery of alerts to real destinations: a file, and an HTTPS receiver (stdlib server)."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from logwarden.alerts.delivery import Delivery, Fanout
from logwarden.alerts.notifiers.file import FileNotifier
from logwarden.alerts.notifiers.webhook import WebhookNotifier
from logwarden.generate.pki import ensure_service_pki
from logwarden.metrics import Metrics
from logwarden.records import Alert, Origin


def alert(rule: str = "R", severity: str = "high") -> Alert:
    return Alert(
        rule=rule,
        priority="Error",
        severity=severity,
        time="2024-05-17T08:00:00.000000000Z",
        source="k8s_audit",
        output=f"{rule} happened",
        audit_id="a1",
        stage="ResponseComplete",
        tags=("k8s",),
        output_fields={"user": "alice"},
        rule_format="sigma",
        origin=Origin(instance="audit", seq=1, line=0),
        fingerprint="0123456789abcdef",
    )


class Receiver(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict[str, object]]] = []
    headers_seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.answers.pop(0) if self.answers else 200
        if status == 200:
            self.bodies.append(json.loads(body))
            self.headers_seen.append(self.headers.get("X-Team", ""))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def receiver(tmp: Path, answers: list[int]) -> Iterator[tuple[str, Path]]:
    pki = ensure_service_pki(tmp / "pki", ["127.0.0.1"])
    Receiver.answers, Receiver.bodies, Receiver.headers_seen = list(answers), [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/hooks/logwarden", pki.ca
    finally:
        server.shutdown()
        server.server_close()


def test_the_webhook_receives_each_alert_and_retries_server_errors(tmp_path: Path) -> None:
    metrics = Metrics()
    with receiver(tmp_path, [503, 200, 200]) as (url, ca):
        hook = WebhookNotifier(url, ca_file=str(ca), headers={"X-Team": "platform"})
        delivery = Delivery("hook", hook, metrics, backoff_secs=0.01)
        delivery.start()
        delivery.put(alert("First"))
        delivery.put(alert("Second"))
        delivery.close()
        assert [b["rule"] for b in Receiver.bodies] == ["First", "Second"]
        assert Receiver.headers_seen == ["platform", "platform"]
    assert delivery.delivered == 2 and delivery.failed == 0


def test_a_refused_alert_is_not_retried_but_counted(tmp_path: Path) -> None:
    metrics = Metrics()
    with receiver(tmp_path, [400, 200]) as (url, ca):
        delivery = Delivery("hook", WebhookNotifier(url, ca_file=str(ca)), metrics)
        delivery.start()
        delivery.put(alert("Refused"))
        delivery.put(alert("Taken"))
        delivery.close()
        assert [b["rule"] for b in Receiver.bodies] == ["Taken"]
    assert delivery.failed == 1
    assert 'logwarden_notify_failures_total{sink="hook"} 1.0' in metrics.expose().decode()


def test_an_untrusted_receiver_certificate_is_a_failure(tmp_path: Path) -> None:
    with receiver(tmp_path, []) as (url, _ca):
        delivery = Delivery("hook", WebhookNotifier(url), Metrics(), retries=1, backoff_secs=0.01)
        delivery.start()
        delivery.put(alert())
        delivery.close()
        assert Receiver.bodies == []
    assert delivery.failed == 1


def test_file_sink_appends_json_lines_and_filters_by_severity(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    fanout = Fanout([Delivery("file", FileNotifier(path), Metrics(), min_severity="medium")])
    fanout.start()
    for severity in ("critical", "high", "medium", "low", "info"):
        fanout(alert(severity, severity))
    fanout.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [a["rule"] for a in lines] == ["critical", "high", "medium"]
    assert lines[0]["output_fields"] == {"user": "alice"}
