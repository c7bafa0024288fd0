"""`make demo`: logwarden run on its embedded defaults, fed the bundled audit logs over HTTPS,
with an escalation to an on-call receiver that the demo plays itself.

1. starts `logwarden run` with demo/logwarden.yaml: the embedded defaults (a fresh data
   directory .demo: the service generates its ledger key, a CA, its server certificate
   and a client certificate there) plus a route that sends high and critical alerts
   through the "oncall" escalation: the console first, the pager 5 s later unless
   someone acknowledges; the pager is an HTTPS receiver in this script that checks the
   Standard Webhooks signature of every post;
2. posts every event of demo/audit/ to https://127.0.0.1:8443/audit as EventList
   batches, presenting the generated client certificate, as kube-apiserver would;
3. waits until every event is stored and detected on, waits for the escalation to page,
   acknowledges one paged alert with `logwarden alerts ack` and shows the pager hearing
   of it;
4. stops the service (SIGTERM: it drains), shows the alerts it raised, and checks the
   ledger with `logwarden verify`.
"""

from __future__ import annotations

import base64
import hmac
import http.client
import http.server
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from logwarden.generate.pki import ensure_service_pki

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".demo"
LOGS = ROOT / "demo" / "audit"
WEBHOOK = ("127.0.0.1", 8443)
OPS = ("127.0.0.1", 9095)
out = Console(highlight=False)


def events() -> list[bytes]:
    """Every audit event of the bundled logs (JSON lines, or one event per file)."""
    found = []
    for path in sorted(LOGS.rglob("*")):
        if path.suffix not in (".log", ".json"):
            continue
        for line in path.read_bytes().splitlines():
            if line.strip().startswith(b"{"):
                found.append(line.strip())
    return found


def ops(path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(*OPS, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("logwarden run stopped; see its messages above")
        try:
            if ops("/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("logwarden run did not become ready in 60 s")


def post_all(lines: list[bytes]) -> int:
    tls = DATA / "tls"
    context = ssl.create_default_context(cafile=str(tls / "ca.pem"))
    context.load_cert_chain(tls / "client.pem", tls / "client.key")
    conn = http.client.HTTPSConnection(*WEBHOOK, context=context, timeout=30)
    stored = 0
    try:
        for i in range(0, len(lines), 400):
            body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
            body += b",".join(lines[i : i + 400]) + b"]}"
            conn.request("POST", "/audit", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                sys.exit(f"the webhook answered {response.status}: {answer}")
            stored += answer["stored"]
    finally:
        conn.close()
    return stored


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_detected(received: int) -> None:
    """Until the detect stage's queue is empty with every record received (drained)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = ops("/metrics")[1]
        idle = metric(text, "logwarden_queue_events") == 0
        if idle and metric(text, "logwarden_events_received_total") >= received:
            return
        time.sleep(0.2)


class Pager:
    """The on-call receiver: an HTTPS server that checks each post's Standard Webhooks
    signature (as the spec says a consumer must) and keeps what it was sent."""

    def __init__(self, directory: Path) -> None:
        pki = ensure_service_pki(directory, ["127.0.0.1"])
        key = secrets.token_bytes(32)
        (directory / "secret").write_text(f"whsec_{base64.b64encode(key).decode()}\n")
        (directory / "ca.pem").write_bytes(pki.ca.read_bytes())
        self.pages: list[dict[str, object]] = []
        pager = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}."
                mac = hmac.new(key, signed.encode() + body, "sha256").digest()
                good = "v1," + base64.b64encode(mac).decode()
                ok = good in self.headers.get("webhook-signature", "").split()
                if ok:
                    pager.pages.append(json.loads(body))
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pki.server_cert, pki.server_key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, secs: float = 30) -> None:
        deadline = time.monotonic() + secs
        while len(self.pages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        if len(self.pages) < count:
            sys.exit(f"the pager got {len(self.pages)} page(s), expected {count}")


def escalate(pager: Pager, config: Path, logwarden: list[str]) -> None:
    """Wait for the escalation to page, acknowledge the first paged alert, show it."""
    out.rule("escalation: high and critical alerts, unacknowledged for 5 s, page on-call")
    pager.wait(1)
    time.sleep(1.0)  # the other alerts paged in the same step
    for page in pager.pages:
        paged_alert: dict[str, Any] = page["alerts"][0]  # type: ignore[index]
        name = paged_alert["labels"]["alertname"]
        summary = paged_alert["annotations"]["summary"].removeprefix(name)
        out.print(
            f"[bold red]paged[/] (level {page['level']}, signature verified): "
            f"[bold]{name}[/bold]{summary}",
            soft_wrap=True,
        )
    first = pager.pages[0]["alerts"][0]  # type: ignore[index]
    paged = len(pager.pages)
    command = [*logwarden, "alerts", "ack", first["fingerprint"], "--by", "demo"]
    out.print(f"\n$ logwarden alerts ack {first['fingerprint']} --by demo")
    done = subprocess.run([*command, "--config", str(config)], capture_output=True, text=True)
    out.print(done.stdout.strip() or done.stderr.strip())
    pager.wait(paged + 1)
    ack = pager.pages[paged]["alerts"][0]  # type: ignore[index]
    out.print(
        f"the pager heard: {ack['labels']['alertname']} is [bold]{ack['status']}[/] "
        f"by {ack['acknowledged_by']}; its escalation stopped, the others go on\n"
    )


#: the demo's sources (demo/logwarden.yaml), by the K05 source each stands for
SOURCES = {
    "audit": "Kubernetes audit logs (the webhook)",
    "events": "Kubernetes Events",
    "pods": "container and application logs",
    "node": "OS logs (journald)",
    "gke": "cloud provider audit logs (GKE)",
    "ingress": "network logs (ingress-nginx)",
    "flows": "network logs (Cilium Hubble)",
}


def show(alerts: list[dict[str, Any]]) -> None:
    newest = {a["fingerprint"]: a for a in alerts}  # one line per alert, as last notified
    by_source: dict[str, list[dict[str, Any]]] = {}
    for a in newest.values():
        source = a["links"][-1]["instance"] if a["links"] else "logwarden"
        by_source.setdefault(source, []).append(a)
    out.rule(f"{len(newest)} alerts from {len(by_source)} sources")
    style = {"critical": "bold white on red", "high": "bold red", "medium": "yellow"}
    for source in [*SOURCES, *sorted(set(by_source) - set(SOURCES))]:
        found = sorted(by_source.get(source, []), key=lambda a: a["time"])
        out.print(f"\n[bold]{SOURCES.get(source, source)}[/bold] ({source}): {len(found)}")
        for a in found:
            text = a["output"]
            rest = text[len(a["rule"]) :] if text.startswith(a["rule"]) else ": " + text
            out.print(
                f"  [dim]{a['time'][:19].replace('T', ' ')}[/dim] "
                f"[{style.get(a['severity'], 'cyan')}]{a['severity']:<8}[/] "
                f"[bold]{a['rule']}[/bold]{rest}"
                + (
                    f" [dim]\\[rule by {a['annotations']['author']}][/dim]"
                    if a["annotations"].get("author")
                    else ""
                ),
                soft_wrap=True,
                markup=True,
            )
    missing = [s for s in SOURCES if s not in by_source]
    if missing:
        sys.exit(f"no alert from {', '.join(missing)}")


def main() -> None:
    shutil.rmtree(DATA, ignore_errors=True)
    (DATA / "pager").mkdir(parents=True)
    pager = Pager(DATA / "pager")
    config = DATA / "logwarden.yaml"
    template = (ROOT / "demo" / "logwarden.yaml").read_text()
    text = template.replace("{data}", str(DATA)).replace("{pager_port}", str(pager.port))
    config.write_text(text.replace("{root}", str(ROOT)))
    logwarden = [sys.executable, "-m", "logwarden"]
    out.rule("logwarden run (embedded defaults and demo/logwarden.yaml, data in .demo/)")
    proc = subprocess.Popen([*logwarden, "run", "--config", str(config)], stdout=subprocess.PIPE)
    printed: list[bytes] = []  # the console receiver's lines, read as they come
    reader = threading.Thread(target=lambda: printed.extend(iter(proc.stdout.readline, b"")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_ready(proc)
        lines = events()
        started = time.monotonic()
        stored = post_all(lines)
        out.print(
            f"\nposted {len(lines)} real audit events from demo/audit/ to "
            f"https://{WEBHOOK[0]}:{WEBHOOK[1]}/audit with the client certificate "
            f".demo/tls/client.pem: {stored} stored (the rest repeat events already stored), "
            f"in {time.monotonic() - started:.2f} s\n"
        )
        wait_detected(stored)
        out.print(
            "the other five K05 sources read their files in demo/sources/ (demo/sources/README.md)"
        )
        escalate(pager, config, logwarden)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join()
    show([json.loads(line) for line in printed if line.strip()])
    out.rule("logwarden verify: was the record altered?")
    key = DATA / "ledger.key.pub"
    done = subprocess.run([*logwarden, "verify", "--key", str(key), str(DATA / "ledger")])
    sys.exit(done.returncode or proc.returncode)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
