"""`make demo`: logwarden run on its embedded defaults, fed the bundled audit logs over HTTPS.

1. starts `logwarden run --data-dir .demo` (a fresh data directory: the service generates
   its ledger key, a CA, its server certificate and a client certificate there);
2. posts every event of demo/audit/ to https://127.0.0.1:8443/audit as EventList
   batches, presenting the generated client certificate, as kube-apiserver would;
3. waits until every event is stored and detected on, stops the service (SIGTERM: it
   drains) and shows the alerts it raised;
4. checks the ledger with `logwarden verify`.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

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


def show(alerts: list[dict[str, str]]) -> None:
    out.rule(f"{len(alerts)} alerts, by event time")
    style = {"critical": "bold white on red", "high": "bold red", "medium": "yellow"}
    for a in sorted(alerts, key=lambda a: a["time"]):
        text = a["output"]
        rest = text[len(a["rule"]) :] if text.startswith(a["rule"]) else ": " + text
        out.print(
            f"[dim]{a['time'][:19].replace('T', ' ')}[/dim] "
            f"[{style.get(a['severity'], 'cyan')}]{a['severity']:<8}[/] "
            f"[bold]{a['rule']}[/bold]{rest}"
            + (f" [dim]\\[rule by {a['author']}][/dim]" if a.get("author") else ""),
            soft_wrap=True,
            markup=True,
        )


def main() -> None:
    shutil.rmtree(DATA, ignore_errors=True)
    logwarden = [sys.executable, "-m", "logwarden"]
    out.rule("logwarden run (embedded defaults, data in .demo/)")
    proc = subprocess.Popen([*logwarden, "run", "--data-dir", str(DATA)], stdout=subprocess.PIPE)
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
    finally:
        proc.send_signal(signal.SIGTERM)
        alerts_out, _ = proc.communicate(timeout=60)
    show([json.loads(line) for line in alerts_out.splitlines() if line.strip()])
    out.rule("logwarden verify: was the record altered?")
    key = DATA / "ledger.key.pub"
    done = subprocess.run([*logwarden, "verify", "--key", str(key), str(DATA / "ledger")])
    sys.exit(done.returncode or proc.returncode)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
