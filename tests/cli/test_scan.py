"""`logwarden scan` as a user runs it: a real process, its formats, exit status and --fix."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES

HACKME = FIXTURES / "hackme"
MANIFESTS = FIXTURES / "posture" / "manifests"


def logwarden(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "logwarden", *args],
        capture_output=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def test_json_lists_findings_and_summary_on_stderr() -> None:
    done = logwarden("scan", "--format", "json", str(HACKME))
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout)
    assert len(findings) == 10
    assert {f["id"] for f in findings} >= {"LW-DISCARD-001", "LW-DISCARD-002", "LW-DISCARD-007"}
    for f in findings:
        assert {
            "id",
            "severity",
            "title",
            "file",
            "line",
            "object",
            "message",
            "remediation",
        } <= set(f)
    assert done.stderr.decode().startswith(
        "logwarden: 10 findings (8 high, 2 info) in 5 files, 0 input errors"
    )


def test_table_groups_by_severity() -> None:
    done = logwarden("scan", "--format", "table", "-v", str(HACKME / "nginx"))
    out = done.stdout.decode()
    assert done.returncode == 0
    assert out.index("HIGH (4)") < out.index("files scanned")
    assert "LW-DISCARD-001" in out and "access_log /dev/null main" in out
    assert "fix:" in out and "why:" in out  # --verbose shows both
    assert "INFO" not in out  # no workloads in nginx/ alone: no gaps reported


def test_fail_on_severity_exit_3() -> None:
    assert logwarden("scan", "-f", "json", "--fail-on", "high", str(HACKME)).returncode == 3
    fixed = str(HACKME / "k8s" / "fixed")
    assert logwarden("scan", "-f", "json", "--fail-on", "low", fixed).returncode == 0
    assert logwarden("scan", "-f", "json", "--fail-on", "info", fixed).returncode == 3


def test_sarif_output() -> None:
    done = logwarden("scan", "--format", "sarif", str(HACKME), cwd=FIXTURES)
    log = json.loads(done.stdout)
    assert log["version"] == "2.1.0"
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
        if "physicalLocation" in r["locations"][0]
    }
    assert "hackme/nginx/default.conf" in uris  # relative to the working directory


def test_input_errors_exit_1_and_usage_errors_exit_2(tmp_path: Path) -> None:
    bad = logwarden("scan", "-f", "json", str(MANIFESTS / "bad"))
    assert bad.returncode == 1
    assert "broken.yaml:6: not valid YAML or JSON" in bad.stderr.decode()
    assert "2 input errors" in bad.stderr.decode()
    assert logwarden("scan").returncode == 2
    assert logwarden("scan", "--context", "x", str(HACKME)).returncode == 2
    assert logwarden("scan", "--fail-on", "severe", str(HACKME)).returncode == 2
    missing = logwarden("scan", "--live", "--kubeconfig", str(tmp_path / "none"))
    assert missing.returncode == 1 and "kubeconfig" in missing.stderr.decode()


def test_fix_writes_to_a_separate_directory(tmp_path: Path) -> None:
    work = tmp_path / "app"
    shutil.copytree(HACKME, work)
    original = (work / "nginx" / "nginx.conf").read_text()
    done = logwarden("scan", "-f", "json", "--fix", "patches", "app", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "6 findings patched in 3 files" in done.stderr.decode()
    assert (work / "nginx" / "nginx.conf").read_text() == original
    patched = (tmp_path / "patches" / "app" / "nginx" / "nginx.conf").read_text()
    assert "access_log  /dev/stdout  main;" in patched
    assert "error_log  /dev/stderr  notice;" in patched
    assert (tmp_path / "patches" / "logwarden-fix.diff").read_text().count("+++ b/") == 3


def test_paths_that_look_like_rich_markup_are_printed_as_text(tmp_path: Path) -> None:
    odd = tmp_path / "a[" / "x]"  # the path says "[/x]": a closing tag to rich
    odd.mkdir(parents=True)
    (odd / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {containers: [{name: a, command: [sh, -c, 'run [/bold] > /dev/null']}]}\n"
    )
    (odd / "chart.yaml").write_text("x: {{ .Values.x }}\n")  # noted as a template
    done = logwarden("scan", "-f", "table", ".", cwd=tmp_path)  # short paths: not folded
    assert done.returncode == 0, done.stderr
    assert "a[/x]/pod.yaml:4" in done.stdout.decode()
    assert "a[/x]/chart.yaml: skipped: an unrendered template" in done.stderr.decode()
