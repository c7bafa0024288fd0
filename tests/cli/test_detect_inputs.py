"""`detect --input`: every K05 source's real samples are read, cloud audit entries run the
audit rules, and SigmaHQ's web rules run unchanged on access logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FIXTURES
from logwarden.cli import main

SAMPLES = {
    "k8s_event": [
        "k8s_events/k8s-openapi-test-eventsv1-event-kind-2023.json",
        "k8s_events/knative-docs-corev1-events-gke-2018.jsonl",
    ],
    "container_log": [
        "container_logs/kueue-issue-4140-kind-ci-cri.log",
        "container_logs/kubelet-cri-design-doc-example.log",
        "container_logs/fluentbit-dockerjson-stderr_stdout_text.log",
    ],
    "journald": [
        "journald/beats-journal1.EXCERPT.export",
        "journald/beats-journalctl-corner-cases.EXCERPT.json",
        "journald/beats-journalctl-sample-journal-event.json",
    ],
    "aks_audit": ["cloud/aks"],
    "eks_audit": ["cloud/eks"],
    "gke_audit": ["cloud/gke"],
    "ingress_nginx": ["network/ingress_nginx"],
    "nginx_access": ["network/nginx"],
    "envoy_access": ["network/envoy"],
    "hubble_flow": ["network/hubble"],
}


def detect(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, str]], str]:
    code = main(["detect", "--format", "jsonl", "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_every_source_reads_its_real_samples_without_rejects(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    paths = [str(FIXTURES / p) for p in SAMPLES[fmt]]
    code, _, err = detect(capsys, "--input", fmt, "--rules", "builtin", *paths)
    summary = err.strip().splitlines()[-1]
    assert code == 0, err
    assert " 0 rejected" in summary and not summary.startswith("logwarden: 0 events"), summary


def test_a_gke_exec_raises_the_audit_rule_for_exec(capsys: pytest.CaptureFixture[str]) -> None:
    _, alerts, _ = detect(capsys, "--input", "gke_audit", str(FIXTURES / "cloud" / "gke"))
    rules = {a["rule"] for a in alerts}
    assert "Kubernetes Exec, Attach Or Port-Forward Into A Pod" in rules
    assert {a["source"] for a in alerts} == {"k8s_audit"}  # run as the derived audit Event


def test_sigmahq_web_rules_run_on_access_logs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        '10.0.0.9 - - [27/Nov/2026:08:00:00 +0000] "GET /index.php?id=1%27%20UNION%20SELECT'
        '%20password%20FROM%20users-- HTTP/1.1" 200 153 "-" "sqlmap/1.7.2#stable"\n'
        '10.0.0.8 - - [27/Nov/2026:08:00:01 +0000] "GET /index.html HTTP/1.1" 200 153 "-" '
        '"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"\n'
    )
    _, alerts, _ = detect(
        capsys, "--input", "nginx_access", "--rules", "sigma", "--match", "all", str(log)
    )
    rules = {a["rule"] for a in alerts}
    assert {"SQL Injection Strings In URI", "Hack Tool User Agent"} <= rules
    assert {a["source"] for a in alerts} == {"nginx_access"}
    assert all("10.0.0.8" not in json.dumps(a) for a in alerts)  # the plain request is quiet
