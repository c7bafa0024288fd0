"""Peer check: Checkov's audit-logging checks on the same manifests, all reported by logwarden.

Checkov (PyPI `checkov`) runs once per session, in its own virtual environment: it pins
`packaging<24` (pytest 9 needs >= 24) and ships `bc-python-hcl2`, which installs the same
`hcl2` module as python-hcl2, so it cannot share logwarden's environment. The environment
is made on first use under ~/.cache/logwarden (or taken from $LOGWARDEN_CHECKOV, the path
of a `checkov` executable).

What the four checks mean (checkov/kubernetes/checks/resource/k8s/ApiServerAuditLog*.py):
they look only at containers whose `command` list has an element exactly
"kube-apiserver", and only at `command` (never `args`). CKV_K8S_91 fails without an
element starting with --audit-log-path; CKV_K8S_92/93/94 fail unless --audit-log-maxage
>= 30, --audit-log-maxbackup >= 10, --audit-log-maxsize >= 100 is in `command`, absent
flags failing too. logwarden reads command and args, treats 0 as unlimited and a webhook
as a backend; where Checkov's verdict rests on that (webhook-args.yaml: flags in args,
webhook backend; unlimited.yaml: 0 = unlimited) logwarden still reports the container,
at info severity, with the reason. Each Checkov failure must be matched by a logwarden
finding on the same file and object whose check id is one of those mapped below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES
from logwarden.posture import scan

CHECKOV_VERSION = "3.3.30"
CHECKS = ("CKV_K8S_91", "CKV_K8S_92", "CKV_K8S_93", "CKV_K8S_94")
ROOTS = [FIXTURES / "posture" / "manifests", FIXTURES / "hackme"]
# audit off (no policy / no backend) and webhook-only cover all four; each retention flag
# maps to its own check, and to "retention unbounded" (0 or unset means unlimited)
_OFF = {"LW-AUDIT-001", "LW-AUDIT-002", "LW-AUDIT-007"}
COVERED_BY = {
    "CKV_K8S_91": _OFF,
    "CKV_K8S_92": _OFF | {"LW-AUDIT-003", "LW-AUDIT-006"},
    "CKV_K8S_93": _OFF | {"LW-AUDIT-004", "LW-AUDIT-006"},
    "CKV_K8S_94": _OFF | {"LW-AUDIT-005", "LW-AUDIT-006"},
}


def checkov_executable() -> Path:
    if os.environ.get("LOGWARDEN_CHECKOV"):
        return Path(os.environ["LOGWARDEN_CHECKOV"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "logwarden" / f"checkov-{CHECKOV_VERSION}"
    exe = venv / "bin" / "checkov"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"checkov=={CHECKOV_VERSION}"],
            check=True,
            timeout=1200,
        )
    return exe


@pytest.fixture(scope="session")
def checkov_failures() -> set[tuple[str, str, str]]:
    """(check id, absolute file, object) of every Checkov failure, from one Checkov run."""
    out: set[tuple[str, str, str]] = set()
    for root in ROOTS:
        done = subprocess.run(
            [
                str(checkov_executable()),
                "--directory",
                str(root),
                "--framework",
                "kubernetes",
                "--check",
                ",".join(CHECKS),
                "--output",
                "json",
                "--skip-download",
            ],
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert done.returncode in (0, 1), done.stderr.decode()[-2000:]
        reports = json.loads(done.stdout)
        for report in reports if isinstance(reports, list) else [reports]:
            for item in report.get("results", {}).get("failed_checks", []):
                kind, ns, name = item["resource"].split(".", 2)
                obj = f"{kind}/{ns}/{name}"
                out.add((item["check_id"], str(root) + item["file_path"], obj))
    return out


def test_every_checkov_audit_log_finding_is_reported_by_logwarden(
    checkov_failures: set[tuple[str, str, str]],
) -> None:
    assert len(checkov_failures) == 14  # so the peer really found something to compare
    assert {c for c, _, _ in checkov_failures} == set(CHECKS)
    ours = scan([str(r) for r in ROOTS]).findings
    by_place: dict[tuple[str, str], set[str]] = {}
    for f in ours:
        if f.file and f.object:
            by_place.setdefault((f.file, f.object), set()).add(f.id)
    missing = [
        (check, file, obj)
        for check, file, obj in sorted(checkov_failures)
        if not by_place.get((file, obj), set()) & COVERED_BY[check]
    ]
    assert missing == []


def test_logwarden_also_finds_what_checkov_cannot_see(
    checkov_failures: set[tuple[str, str, str]],
) -> None:
    ours = scan([str(FIXTURES / "posture" / "manifests" / "kubeadm")]).findings
    # a kubeadm ClusterConfiguration with a policy but no backend: Checkov has no check for it
    assert "LW-AUDIT-002" in {f.id for f in ours}
    assert not [c for c in checkov_failures if "kubeadm/" in c[1]]
