"""Benchmark: `logwarden run` ingesting audit events over HTTPS, with every rule set loaded.

    python bench/ingest.py [--events N] [--clients C] [--batch B] [--runs R]

Generates N audit events with the shared workload generator (../shared/bench/gen_audit.py,
deterministic, cached in bench/.data/), each given a unique auditID, and cuts them into
EventList bodies of B events (default 400, kube-apiserver's batch size). Then, R times,
each against a fresh service:

* starts `logwarden run` in its own process: webhook with mutual TLS (its generated
  certificates), `fsync: always`, rules `builtin`, `falco` and `sigma` (everything
  shipped), alerts to a file sink;
* C client threads post the bodies as kube-apiserver does (HTTPS, client certificate,
  keep-alive; a 429 or 503 is retried after 50 ms);
* a watcher reads the alerts file as it grows and notes when each alert appears.

It prints, per run and as medians: sustained events/s (first POST to last 200), p50 and
p99 of the time from the POST of a batch to the appearance of the alert of each of its
events that matched a rule, peak RSS of the service, the 429s seen, and whether every
event was received and none dropped (`/metrics`). Targets of issue 6: at least 50,000
events/s sustained with TLS and every rule set loaded, p99 to alert under 1 s, RSS under
300 MB, zero drops.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from workload import CACHE, workload


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bodies(n: int, batch: int) -> tuple[list[bytes], list[list[str]]]:
    """EventList bodies of the workload's first n events, each with a unique auditID."""
    out: list[bytes] = []
    ids: list[list[str]] = []
    items: list[bytes] = []
    batch_ids: list[str] = []
    with open(workload(max(n, 1000)), "rb") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            event = json.loads(line)
            event["auditID"] = f"bench-{i:09d}"
            items.append(json.dumps(event, separators=(",", ":")).encode())
            batch_ids.append(event["auditID"])
            if len(items) == batch:
                out.append(_event_list(items))
                ids.append(batch_ids)
                items, batch_ids = [], []
    if items:
        out.append(_event_list(items))
        ids.append(batch_ids)
    return out, ids


def _event_list(items: list[bytes]) -> bytes:
    return (
        b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + b",".join(items) + b"]}"
    )


class Service:
    def __init__(self, root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        self.root = root
        self.peak = 0  # KiB, see peak_rss_kib
        self.port, self.ops = free_port(), free_port()
        self.alerts = root / "alerts.jsonl"
        config = root / "logwarden.yaml"
        config.write_text(
            f"data_dir: {root / 'data'}\n"
            f"service: {{listen: '127.0.0.1:{self.ops}'}}\n"
            f"sources: {{audit: {{type: k8s_audit_webhook, listen: '127.0.0.1:{self.port}'}}}}\n"
            "detect: {rules: [builtin, falco, sigma]}\n"
            f"receivers: {{file: {{type: file, path: {self.alerts}}}}}\n"
        )
        with open(root / "run.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logwarden", "run", "--config", str(config)],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 120
        while self.get("/readyz")[0] != 200:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"logwarden run did not start: {(root / 'run.log').read_text()[-2000:]}")
            time.sleep(0.1)
        tls = root / "data" / "tls"
        self.context = ssl.create_default_context(cafile=str(tls / "ca.pem"))
        self.context.load_cert_chain(tls / "client.pem", tls / "client.key")

    def get(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.ops, timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        except OSError:
            return 0, ""
        finally:
            conn.close()

    def metric(self, name: str) -> float:
        """The sum of every series of `name` (the queues of both stages, say)."""
        total = 0.0
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith(name):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def peak_rss_kib(self) -> int:
        """The service's peak resident set so far: the VmHWM of its process plus that of its
        detection worker. Not the rusage of wait4: that also counts the pages of this
        process the child had between fork and exec."""
        total = 0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmHWM:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        self.peak = max(self.peak, total)
        return self.peak

    def stop(self) -> int:
        """SIGTERM, wait for the drain; returns the peak RSS in KiB, drain included."""
        self.peak_rss_kib()
        self.proc.send_signal(signal.SIGTERM)
        while self.proc.poll() is None:
            self.peak_rss_kib()
            time.sleep(0.01)
        return self.peak


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return found


class Watcher(threading.Thread):
    """Notes when each alert's line appears in the alerts file."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.path.exists() and not self.stop.is_set():
            time.sleep(0.01)
        with open(self.path, "rb") as fh:
            rest = b""
            while True:
                chunk = fh.read()
                now = time.perf_counter()
                if chunk:
                    lines = (rest + chunk).split(b"\n")
                    rest = lines.pop()
                    for line in lines:
                        # the line's first "audit_id" key is the alert's own (the file
                        # receiver writes it before the labels and links; inside strings
                        # the quotes are escaped): cheaper than decoding every line here,
                        # in the process that also runs the clients
                        at = line.find(b'"audit_id":"')
                        if at >= 0:
                            start = at + 12
                            audit_id = line[start : line.index(b'"', start)].decode()
                            self.seen.setdefault(audit_id, now)
                elif self.stop.is_set():
                    return
                else:
                    time.sleep(0.005)


def post_all(svc: Service, work: list[bytes], clients: int) -> tuple[list[float], int, float]:
    """Post every body; returns each batch's POST start time, the 429/503 count, seconds."""
    started = [0.0] * len(work)
    refused = [0]
    lock = threading.Lock()
    nxt = [0]

    def client() -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", svc.port, context=svc.context, timeout=60)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(work):
                conn.close()
                return
            started[i] = time.perf_counter()
            while True:
                conn.request("POST", "/audit", body=work[i])
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    break
                with lock:
                    refused[0] += 1
                time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return started, refused[0], time.perf_counter() - t0


def one_run(work: list[bytes], ids: list[list[str]], clients: int, root: Path) -> dict[str, float]:
    svc = Service(root)
    watcher = Watcher(svc.alerts)
    watcher.start()
    pids = {"service": svc.proc.pid, "worker": _children(svc.proc.pid)[0], "bench": os.getpid()}
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started, refused, seconds = post_all(svc, work, clients)
    total = sum(len(b) for b in ids)
    deadline = time.monotonic() + 300
    while (
        svc.metric("logwarden_queue_events")
        or svc.metric("logwarden_events_received_total") < total
    ):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
    received = svc.metric("logwarden_events_received_total")
    dropped = svc.metric("logwarden_events_dropped_total")
    rss = svc.stop()
    watcher.stop.set()
    watcher.join()
    latencies = sorted(
        watcher.seen[a] - started[b]
        for b, batch in enumerate(ids)
        for a in batch
        if a in watcher.seen
    )
    return {
        "rate": total / seconds,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
        "alerted": len(latencies),
        "rss_mb": rss / 1024,
        "refused": refused,
        "complete": float(received == total and dropped == 0),
        **{f"cpu_{name}": secs for name, secs in cpu.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=400_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work, ids = bodies(args.events, args.batch)
    print(
        f"ingest (issue 6): {args.events:,} events in {len(work):,} EventList bodies of "
        f"{args.batch}, {args.clients} HTTPS clients, every rule set loaded, fsync always"
    )
    results = []
    for run in range(args.runs):
        r = one_run(work, ids, args.clients, CACHE / "ingest-bench")
        results.append(r)
        print(
            f"  run {run + 1}: {r['rate']:,.0f} events/s, "
            f"POST to alert p50 {r['p50'] * 1000:.0f} ms p99 {r['p99'] * 1000:.0f} ms "
            f"({r['alerted']:,.0f} alerted events), "
            f"peak RSS {r['rss_mb']:.0f} MB, {r['refused']:.0f} x 429/503, "
            f"{'all received, 0 dropped' if r['complete'] else 'INCOMPLETE'}; "
            f"CPU s: service {r['cpu_service']:.1f}, detect worker {r['cpu_worker']:.1f}, "
            f"this bench (clients, watcher) {r['cpu_bench']:.1f}"
        )
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(
        f"  median: {med['rate']:,.0f} events/s, p50 {med['p50'] * 1000:.0f} ms, "
        f"p99 {med['p99'] * 1000:.0f} ms, peak RSS {med['rss_mb']:.0f} MB"
    )
    ok = (
        med["rate"] >= 50_000
        and med["p99"] < 1.0
        and med["rss_mb"] < 300
        and all(r["complete"] for r in results)
    )
    print(
        "  target (>= 50,000 events/s, p99 < 1 s, RSS < 300 MB, zero drops): "
        + ("met" if ok else "NOT met")
    )


if __name__ == "__main__":
    main()
