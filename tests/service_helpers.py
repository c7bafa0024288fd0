"""Running the real service in a test: `logwarden run`'s Runtime on free loopback ports,
and an HTTPS client that posts audit events to it the way kube-apiserver does."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logwarden.config import load_text
from logwarden.runtime import Runtime

DEMO = Path(__file__).parent.parent / "demo" / "audit"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def event_list(lines: list[bytes]) -> bytes:
    """An audit.k8s.io/v1 EventList of the given JSON lines (the webhook's batch body)."""
    items = b",".join(line.strip() for line in lines)
    return b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + items + b"]}"


def demo_lines() -> list[bytes]:
    """Real audit events: audit2rbac's demo log (v1beta1, 757 events)."""
    path = DEMO / "audit2rbac-demo-full-v1beta1-2017.log"
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def all_demo_lines() -> list[bytes]:
    """Every audit event of demo/audit (what `make demo` posts): 1,000-odd real events."""
    found = []
    for path in sorted(DEMO.rglob("*")):
        if path.suffix in (".log", ".json"):
            found += [ln.strip() for ln in path.read_bytes().splitlines() if ln.strip()[:1] == b"{"]
    return found


@dataclass
class Running:
    runtime: Runtime
    data: Path
    webhook_port: int
    ops_port: int
    alerts_file: Path
    api_port: int = 0

    @property
    def api_token(self) -> str:
        return (self.data / "api.token").read_text().strip()

    def api(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        """A request to the alerts API (HTTPS, the service's CA, the bearer token)."""
        context = ssl.create_default_context(cafile=str(self.tls / "ca.pem"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.api_port, context=context, timeout=30)
        headers = {"Authorization": f"Bearer {self.api_token if token is None else token}"}
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    @property
    def tls(self) -> Path:
        return self.data / "tls"

    def client_context(self, *, cert: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.tls / "ca.pem"))
        if cert:
            context.load_cert_chain(self.tls / "client.pem", self.tls / "client.key")
        return context

    def post(
        self,
        body: bytes,
        *,
        context: ssl.SSLContext | None = None,
        headers: dict[str, str] | None = None,
        path: str = "/audit",
        method: str = "POST",
    ) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.webhook_port, context=context or self.client_context(), timeout=30
        )
        try:
            conn.request(
                method,
                path,
                body=body,
                headers={"Content-Type": "application/json", **(headers or {})},
            )
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    def ops(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.ops_port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def alerts(self) -> list[dict[str, Any]]:
        if not self.alerts_file.exists():
            return []
        return [json.loads(line) for line in self.alerts_file.read_text().splitlines()]


@contextmanager
def running(
    tmp: Path,
    extra: str = "",
    source: str = "",
    sources: str = "",
    receivers: str = "",
    alerts: str = "",
) -> Iterator[Running]:
    """The service with a file sink, its webhook source "audit" (plus `source` lines under
    it, and `sources`: more sources), `receivers` (more receivers), `alerts` (lines under
    `alerts:`) and `extra` top-level config; stopped (drained) on exit."""
    webhook, ops, api = free_port(), free_port(), free_port()
    alerts_file = tmp / "alerts.jsonl"
    text = (
        f"data_dir: {tmp / 'data'}\n"
        f"service: {{listen: '127.0.0.1:{ops}'}}\n"
        "sources:\n"
        "  audit:\n"
        "    type: k8s_audit_webhook\n"
        f"    listen: '127.0.0.1:{webhook}'\n"
        f"{source}"
        f"{sources}"
        "receivers:\n"
        "  file:\n"
        "    type: file\n"
        f"    path: {alerts_file}\n"
        f"{receivers}"
        "alerts:\n"
        f"  api: {{listen: '127.0.0.1:{api}'}}\n"
        f"{alerts}"
        f"{extra}"
    )
    runtime = Runtime(load_text(text, "test.yaml", str(tmp)))
    thread = threading.Thread(target=runtime.run, name="logwarden-run")
    thread.start()
    try:
        assert runtime.started.wait(30), "the service did not start"
        yield Running(runtime, tmp / "data", webhook, ops, alerts_file, api)
    finally:
        runtime.stop()
        thread.join(60)
        assert not thread.is_alive(), "the service did not stop"
