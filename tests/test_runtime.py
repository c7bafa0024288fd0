"""`logwarden run` as a process: kill -9 under load loses nothing acknowledged, stores
nothing twice; a source that goes quiet raises an alert that clears when it comes back."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from logwarden.ledger.keys import load_verifiers
from logwarden.ledger.tail import recent_entries
from logwarden.ledger.verify import verify_ledger
from service_helpers import demo_lines, event_list, free_port, running


def unique_batches(n: int, size: int) -> list[list[bytes]]:
    """n batches of real events, each event given an auditID of its own."""
    lines = demo_lines()
    out = []
    for b in range(n):
        batch = []
        for i in range(size):
            event = json.loads(lines[(b * size + i) % len(lines)])
            event["auditID"] = f"crash-{b:04d}-{i:04d}"
            batch.append(json.dumps(event).encode())
        out.append(batch)
    return out


def _state(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


class Service:
    """`logwarden run` in a child process, started again after each kill."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port, self.ops, api = free_port(), free_port(), free_port()
        self.config = tmp / "logwarden.yaml"
        self.config.write_text(
            f"data_dir: {tmp / 'data'}\n"
            f"service: {{listen: '127.0.0.1:{self.ops}'}}\n"
            f"alerts: {{api: {{listen: '127.0.0.1:{api}'}}}}\n"
            f"sources: {{audit: {{type: k8s_audit_webhook, listen: '127.0.0.1:{self.port}'}}}}\n"
            f"receivers: {{file: {{type: file, path: {tmp / 'alerts.jsonl'}}}}}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.tmp / "run.log", "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logwarden", "run", "--config", str(self.config)],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", self.ops, timeout=1)
            try:
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            assert self.proc.poll() is None, (self.tmp / "run.log").read_text()[-3000:]
            time.sleep(0.05)
        raise AssertionError("logwarden run did not become ready")

    def kill(self) -> None:
        """kill -9 the service; its detection worker must end on its own (it must not
        live on, holding the alert state and the outbox)."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + 10
        for pid in children.split():
            while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
                assert time.monotonic() < deadline, f"the worker {pid} outlived its parent"
                time.sleep(0.05)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


class Sender(threading.Thread):
    """Posts each batch until it gets a 200, as kube-apiserver retries."""

    def __init__(self, svc: Service, batches: list[list[bytes]]) -> None:
        super().__init__(daemon=True)
        self.svc = svc
        self.batches = batches
        self.acked: list[int] = []
        self.tls = svc.tmp / "data" / "tls"

    def run(self) -> None:
        context = ssl.create_default_context(cafile=str(self.tls / "ca.pem"))
        context.load_cert_chain(self.tls / "client.pem", self.tls / "client.key")
        for n, batch in enumerate(self.batches):
            body = event_list(batch)
            while True:
                conn = http.client.HTTPSConnection(
                    "127.0.0.1", self.svc.port, context=context, timeout=10
                )
                try:
                    conn.request("POST", "/audit", body=body)
                    if conn.getresponse().status == 200:
                        self.acked.append(n)
                        break
                except (OSError, http.client.HTTPException):
                    pass  # the service is down: try again, as the apiserver does
                finally:
                    conn.close()
                time.sleep(0.02)


def test_kill_9_under_load_loses_no_acknowledged_event_and_stores_none_twice(
    tmp_path: Path,
) -> None:
    svc = Service(tmp_path)
    svc.start()
    batches = unique_batches(240, 100)
    sender = Sender(svc, batches)
    sender.start()
    kills = 0
    for target in (40, 90, 140, 190):  # kill -9 while batches are in flight, four times
        while len(sender.acked) < target:
            time.sleep(0.01)
        svc.kill()
        kills += 1
        svc.start()
    sender.join(120)
    assert not sender.is_alive(), "the sender did not finish"
    assert svc.stop() == 0
    assert kills == 4 and len(sender.acked) == len(batches)
    ids = [json.loads(e.raw)["auditID"] for e in recent_entries(tmp_path / "data" / "ledger", 1000)]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    expected = {f"crash-{b:04d}-{i:04d}" for b in sender.acked for i in range(100)}
    assert set(ids) == expected, "an acknowledged event is missing"
    keys = load_verifiers([str(tmp_path / "data" / "ledger.key.pub")])
    report = verify_ledger(tmp_path / "data" / "ledger", keys=keys, jobs=1)
    assert report.ok, [str(p) for p in report.problems]


def _metric(svc: Service, name: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", svc.ops, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_a_dead_detection_worker_stops_the_service_and_the_restart_detects_what_it_missed(
    tmp_path: Path,
) -> None:
    svc = Service(tmp_path)
    svc.start()
    assert svc.proc is not None
    (worker,) = Path(f"/proc/{svc.proc.pid}/task/{svc.proc.pid}/children").read_text().split()
    os.kill(int(worker), signal.SIGSTOP)  # frozen: what it is sent now is stored, not detected
    sender = Sender(svc, unique_batches(1, 100))
    sender.run()
    assert sender.acked == [0]
    os.kill(int(worker), signal.SIGKILL)
    assert svc.proc.wait(60) == 1  # it stops by itself, so that a supervisor restarts it
    log = (tmp_path / "run.log").read_text()
    assert "the detection worker process ended (killed by signal 9)" in log
    alerts = tmp_path / "alerts.jsonl"
    assert not alerts.exists() or "crash-0000-" not in alerts.read_text()
    svc.start()  # the restart detects on the 100 stored records first
    deadline = time.monotonic() + 30
    while not alerts.exists() or "crash-0000-" not in alerts.read_text():
        assert time.monotonic() < deadline, "the stored records were not detected on"
        time.sleep(0.1)
    assert _metric(svc, "logwarden_events_replayed_total") == 100
    assert svc.stop() == 0


def test_a_quiet_source_raises_an_alert_that_clears_when_it_sends_again(tmp_path: Path) -> None:
    batch = event_list(demo_lines()[:2])
    stopped_rule = "Log Source Stopped Sending"

    def stopped() -> list[dict[str, Any]]:
        return [a for a in svc.alerts() if a["rule"] == stopped_rule]

    with running(
        tmp_path,
        source="    silence_after_secs: 1\n",
        alerts="  route: {group_interval: 1s}\n",
    ) as svc:
        assert svc.post(batch)[0] == 200
        deadline = time.monotonic() + 20
        while not stopped():
            assert time.monotonic() < deadline, "no silence alert"
            time.sleep(0.1)
        _, metrics = svc.ops("/metrics")
        assert 'logwarden_source_silent{source="audit"} 1.0' in metrics
        assert svc.post(event_list(demo_lines()[2:4]))[0] == 200
        while stopped()[-1]["status"] != "resolved":
            assert time.monotonic() < deadline, "the silence alert did not clear"
            time.sleep(0.1)
    first, cleared = stopped()
    assert (first["severity"], first["status"], first["labels"]["source_id"]) == (
        "high",
        "firing",
        "audit",
    )
    assert first["output"].startswith("audit events stopped arriving from audit")
    assert cleared["resolved_by"] == "logwarden" and cleared["fingerprint"] == first["fingerprint"]


def test_an_audit_log_file_is_followed_and_resumed_after_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = demo_lines()
    log.write_bytes(b"\n".join(lines[:300]) + b"\n")
    source = f"  file:\n    type: k8s_audit_file\n    path: {log}\n    poll_interval_secs: 0.05\n"

    def stored_count(data: Path) -> int:
        return sum(1 for e in recent_entries(data / "ledger", 1000) if e.instance == "file")

    with running(tmp_path, sources=source) as svc:
        deadline = time.monotonic() + 20
        while 'logwarden_events_received_total{source="file"} 300.0' not in svc.ops("/metrics")[1]:
            assert time.monotonic() < deadline, "the file was not read"
            time.sleep(0.05)
    assert stored_count(svc.data) == 300
    with open(log, "ab") as fh:  # written while logwarden was down
        fh.write(b"\n".join(lines[300:500]) + b"\n")
    with running(tmp_path, sources=source) as svc:
        deadline = time.monotonic() + 20
        while 'logwarden_events_received_total{source="file"} 200.0' not in svc.ops("/metrics")[1]:
            assert time.monotonic() < deadline, "the new lines were not read"
            time.sleep(0.05)
    entries = [e for e in recent_entries(svc.data / "ledger", 1000) if e.instance == "file"]
    assert [e.seq for e in entries] == list(range(1, 501))
    assert [e.raw for e in entries] == [line.strip() for line in lines[:500]]


def test_readiness_fails_when_a_source_cannot_resume(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"\n".join(demo_lines()[:20]) + b"\n")
    source = f"  file:\n    type: k8s_audit_file\n    path: {log}\n    poll_interval_secs: 0.05\n"
    with running(tmp_path, sources=source) as svc:
        deadline = time.monotonic() + 20
        while 'logwarden_events_received_total{source="file"} 20.0' not in svc.ops("/metrics")[1]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    # the ledger is lost, the file source's position is not: it must not guess
    shutil.rmtree(tmp_path / "data" / "ledger")
    with running(tmp_path, sources=source) as svc:
        deadline = time.monotonic() + 20
        while svc.ops("/readyz")[0] == 200:
            assert time.monotonic() < deadline, "still ready"
            time.sleep(0.05)
        status, text = svc.ops("/readyz")
        assert (
            status == 503 and "source 'file' stopped" in text and "missing from the ledger" in text
        )
        assert svc.post(event_list(demo_lines()[:2]))[0] == 200  # the webhook still works


def test_the_data_directory_is_the_owner_s_alone(tmp_path: Path) -> None:
    fresh, shared = tmp_path / "fresh", tmp_path / "shared"
    (shared / "data").mkdir(parents=True)
    (shared / "data").chmod(0o755)  # made open to others before the service starts
    for top in (fresh, shared):
        with running(top) as svc:
            status, _ = svc.post(event_list(demo_lines()[:1]))
            assert status == 200
            assert os.stat(svc.data).st_mode & 0o777 == 0o700, top
