"""Every K05 source in one `logwarden run`, from its config: the audit webhook, Kubernetes
Events watched through a local apiserver, kubelet's container logs, the journal read
with journalctl, GKE audit entries and ingress-nginx and Hubble logs from files. Each
source's records reach the ledger and raise their alerts, malformed input is counted by
source on /metrics, and a restart reads nothing twice."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from logwarden.ledger.tail import recent_entries
from service_helpers import all_demo_lines, event_list, running
from sources.fake_apiserver import running_apiserver, write_kubeconfig
from sources.test_journald_source import JOURNAL_REMOTE, JOURNALCTL, export, write_journal
from sources.test_k8s_events import failed_mount, oom_killing

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "sources"

needs_journal = pytest.mark.skipif(
    not JOURNAL_REMOTE.exists() or JOURNALCTL is None,
    reason="needs Debian packages systemd-journal-remote and systemd",
)


def counts(data: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for entry in recent_entries(data / "ledger", 100_000):
        found[entry.instance] = found.get(entry.instance, 0) + 1
    return found


def wait_for(what: str, check: Any, secs: float = 30.0) -> Any:
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {check()}")


@needs_journal
def test_every_source_runs_from_config_and_raises_its_alerts(tmp_path: Path) -> None:
    journals = tmp_path / "journal"
    journals.mkdir()
    write_journal(journals / "system.journal", export(1, 12, "sshd.service"))  # failed passwords
    ingress = tmp_path / "ingress.log"
    # a year ago: windows close on wall time once events stop (a future time waits for it)
    probes = (DEMO / "ingress.log").read_bytes().replace(b"/Nov/2026:", b"/Nov/2025:")
    ingress.write_bytes(probes + b"this is not an access line\n")
    with running_apiserver(tmp_path) as api:
        api.put(failed_mount())
        api.put(oom_killing())
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api)
        sources = f"""\
  events: {{type: k8s_events, kubeconfig: {kubeconfig}}}
  pods: {{type: container_logs, root: {DEMO / "pods"}, start_at: beginning}}
  node: {{type: journald, directory: {journals}, start_at: beginning}}
  gke: {{type: log_file, path: {DEMO / "gke-audit.jsonl"}, format: gke_audit}}
  ingress: {{type: log_file, path: {ingress}, format: ingress_nginx, poll_interval_secs: 0.1}}
  flows: {{type: log_file, path: {DEMO / "hubble.jsonl"}, format: hubble_flow}}
"""
        with running(tmp_path, sources=sources) as svc:
            assert svc.post(event_list(all_demo_lines()))[0] == 200
            expected = {"audit", "events", "pods", "node", "gke", "ingress", "flows"}

            def alerted() -> set[str]:
                return {a["links"][-1]["instance"] for a in svc.alerts() if a["links"]}

            try:
                wait_for("an alert from every source", lambda: expected <= alerted())
            except AssertionError:
                raise AssertionError(f"alerts only from {sorted(alerted())}") from None
            stored = counts(svc.data)
            _, metrics = svc.ops("/metrics")
        for source in ("events", "pods", "node", "gke", "ingress", "flows"):
            assert f'logwarden_events_received_total{{source="{source}"}}' in metrics
        assert 'logwarden_events_malformed_total{source="ingress"} 1.0' in metrics
        assert stored["events"] == 2 and stored["node"] == 12 and stored["ingress"] == 35
        rules = {a["rule"] for a in svc.alerts()}
        assert {
            "Kubernetes Pod Failed To Mount A Secret",
            "Node SSH Password Guessing",
            "Web Client Error Burst From One Client",
            "Cilium Flow Dropped By Network Policy",
        } <= rules, rules

        with running(tmp_path, sources=sources) as again:  # a restart reads nothing twice
            time.sleep(2)
            assert counts(again.data) == stored
    rejects = (tmp_path / "data" / "rejects.jsonl").read_text().splitlines()
    rejected = [json.loads(line) for line in rejects]
    assert any(r["where"].startswith(f"{ingress}:36") for r in rejected), rejected
