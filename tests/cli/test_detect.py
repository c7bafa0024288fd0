"""`logwarden detect` as a user runs it: a real process, its output contract and exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from conftest import FALCO, TRACES

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {
    "rule": str,
    "priority": str,
    "severity": str,
    "time": str,
    "source": str,
    "output": str,
    "audit_id": str,
    "stage": str,
    "tags": list,
}


def logwarden(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "logwarden", *args],
        input=input,
        capture_output=True,
        timeout=120,
        check=False,
    )


def jsonl(out: bytes) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_jsonl_contract_on_falco_traces() -> None:
    good = [p for p in sorted(TRACES.glob("*.json")) if p.name != "fal_01_003.json"]
    done = logwarden("detect", "--rules", "falco", "--format", "jsonl", *map(str, good))
    assert done.returncode == 0, done.stderr
    alerts = jsonl(done.stdout)
    assert len(alerts) == 46  # the HEAD rules on the 51 good trace events, first match
    for alert in alerts:
        for key, kind in REQUIRED.items():
            assert isinstance(alert[key], kind), (key, alert)
        assert alert["severity"] in {"critical", "high", "medium", "low", "info"}
        assert alert["source"] == "k8s_audit"
        assert alert["time"].endswith("Z")
        datetime.fromisoformat(alert["time"][:26] + "+00:00")
    by_rule = {a["rule"]: a for a in alerts}
    exec_alert = by_rule["Attach/Exec Pod"]
    assert exec_alert["priority"] == "Notice" and exec_alert["severity"] == "low"
    assert exec_alert["stage"] == "ResponseStarted"
    secret = by_rule["K8s Secret Created"]
    assert secret["output"].startswith("K8s Secret Created (user=minikube-user secret=")
    # the event's own time, with Falco's nine digits
    line = json.loads((TRACES / "create_secret.json").read_text().splitlines()[0])
    assert secret["audit_id"] == line["auditID"]
    assert secret["time"] == line["stageTimestamp"].replace("Z", "000Z")
    assert done.stderr.decode().startswith(
        "logwarden: 51 events from 46 files, 0 rejected, 46 alerts"
    )


def test_malformed_input_is_reported_counted_and_exits_1(tmp_path: Path) -> None:
    kept = tmp_path / "rejects.jsonl"
    done = logwarden(
        "detect",
        "--rules",
        "falco",
        "--format",
        "jsonl",
        "--rejects",
        str(kept),
        str(TRACES / "fal_01_003.json"),
        str(TRACES / "create_secret.json"),
    )
    assert done.returncode == 1
    err = done.stderr.decode()
    assert (
        "fal_01_003.json:1: not a Kubernetes audit event: Expected `str | null`, got `int`" in err
    )
    assert "1 rejected" in err
    assert [a["rule"] for a in jsonl(done.stdout)] == ["K8s Secret Created"]
    (kept_line,) = jsonl(kept.read_bytes())
    assert kept_line["raw"] == '{"kind": 0}'
    assert kept_line["where"].endswith("fal_01_003.json:1")


def test_table_format_prints_alerts_and_summary() -> None:
    done = logwarden(
        "detect",
        "-r",
        "falco",
        "--format",
        "table",
        str(TRACES / "create_configmap_sensitive_values.json"),
    )
    assert done.returncode == 0
    out = done.stdout.decode()
    assert "Create/Modify Configmap With Private Credentials: K8s configmap with private" in out
    assert "Alerts by rule" in out
    for label, value in [("events read", "6"), ("malformed input", "0"), ("alerts", "6")]:
        assert any(
            line.split() and line.startswith(label) and line.split()[-1] == value
            for line in out.splitlines()
        ), (label, out)
    assert "events per second" in out


def test_match_all_raises_every_matching_rule() -> None:
    trace = str(TRACES / "create_configmap_sensitive_values.json")
    first = jsonl(logwarden("detect", "-r", "falco", "-f", "jsonl", trace).stdout)
    every = jsonl(logwarden("detect", "-r", "falco", "-f", "jsonl", "--match", "all", trace).stdout)
    assert len(first) == 6 and len(every) == 12


def test_rules_name_path_and_override_file(tmp_path: Path) -> None:
    override = tmp_path / "quiet.yaml"
    override.write_text("- rule: K8s Secret Created\n  enabled: false\n")
    trace = str(TRACES / "create_secret.json")
    assert jsonl(logwarden("detect", "-f", "jsonl", "--rules", "falco", trace).stdout)
    done = logwarden("detect", "-f", "jsonl", "--rules", "falco", "--rules", str(override), trace)
    assert done.returncode == 0 and jsonl(done.stdout) == []
    head = FALCO / "falcosecurity-plugins@HEAD/plugins/k8saudit/rules/k8s_audit_rules.yaml"
    by_path = jsonl(logwarden("detect", "-f", "jsonl", "-r", str(head), trace).stdout)
    assert [a["rule"] for a in by_path] == ["K8s Secret Created"]


def test_usage_errors_exit_2() -> None:
    missing = logwarden("detect", "--rules", "no-such-set", str(TRACES / "create_secret.json"))
    assert missing.returncode == 2
    assert "no-such-set: no such rules file or directory" in missing.stderr.decode()
    assert logwarden("detect", "--match", "some").returncode == 2
    assert logwarden("frobnicate").returncode == 2


def test_bad_rules_file_exit_2_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "- rule: X\n  desc: d\n  condition: ka.verb in (a\n  output: o\n"
        "  priority: info\n  source: k8s_audit\n"
    )
    done = logwarden("detect", "--rules", str(bad), str(TRACES / "create_secret.json"))
    assert done.returncode == 2
    assert f"{bad}:3: rule 'X': condition: list is not closed" in done.stderr.decode()


def test_missing_input_file_exits_1() -> None:
    done = logwarden("detect", "-f", "jsonl", "/nonexistent/audit.log")
    assert done.returncode == 1
    assert "/nonexistent/audit.log: cannot read: no such file or directory" in done.stderr.decode()


def test_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    # far more alerts than a pipe holds, so logwarden writes after the reader has gone
    line = (TRACES / "create_secret.json").read_text().splitlines()[0]
    big = tmp_path / "audit.log"
    big.write_text((line + "\n") * 5000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "logwarden", "detect", "-f", "jsonl", "-r", "falco", str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "cannot read" not in err


def test_help_describes_commands_and_options() -> None:
    top = logwarden("--help").stdout.decode()
    assert "detect" in top and "K05" in top
    sub = logwarden("detect", "--help").stdout.decode()
    for option in ("--rules", "--format", "--match", "--rejects", "--no-progress"):
        assert option in sub


def test_the_demo_shows_real_alerts() -> None:
    done = logwarden(
        "detect", "--rules", "falco", "--format", "table", str(ROOT / "demo" / "audit")
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "Create Privileged Pod" in out and "Attach/Exec Pod" in out
    assert "malformed input" in out


def _stderr_on_a_terminal(*args: str) -> str:
    """Run logwarden with stderr on a pseudo-terminal; return what it wrote there."""
    import os
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "logwarden", *args], stdout=subprocess.DEVNULL, stderr=follower
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    return seen.decode(errors="replace")


def test_progress_bar_on_a_terminal_for_long_inputs(tmp_path: Path) -> None:
    line = (TRACES / "create_secret.json").read_bytes().splitlines()[0] + b"\n"
    big = tmp_path / "big.log"
    with big.open("wb") as fh:
        for _ in range((33 << 20) // len(line) + 1):  # just over the 32 MiB threshold
            fh.write(line)
    shown = _stderr_on_a_terminal("detect", "-f", "jsonl", str(big))
    assert "reading" in shown and "MB" in shown, shown[-500:]
    assert "events from 1 files" in shown
    quiet = _stderr_on_a_terminal("detect", "-f", "jsonl", "--no-progress", str(big))
    assert "events from 1 files" in quiet
    assert "reading" not in quiet


def test_the_table_summary_counts_correlation_alerts_too() -> None:
    burst = (
        ROOT / "src/logwarden/rules/builtin/k05/tests/k05_authorization_failure_burst.match.jsonl"
    )
    done = logwarden("detect", "-f", "table", "--no-progress", str(burst))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert "Kubernetes Authorization Failure Burst" in done.stdout.decode()


def failed_logins(seconds: range) -> list[str]:
    """401s from one address, one at each of `seconds` past 10:00:00 (real format)."""
    template = json.loads(
        (ROOT / "src/logwarden/rules/builtin/k05/tests/k05_failed_authentication.match.jsonl")
        .read_text()
        .splitlines()[0]
    )
    out = []
    for s in seconds:
        when = f"2026-11-27T10:00:{s:02d}.000000Z"
        event = dict(template, auditID=f"00000000-0000-4000-8000-{s:012d}")
        event.update(requestReceivedTimestamp=when, stageTimestamp=when, timestamp=when)
        out.append(json.dumps(event))
    return out


def test_logs_of_several_apiservers_are_merged_so_a_burst_split_across_them_is_seen(
    tmp_path: Path,
) -> None:
    # an HA control plane: the load balancer spreads one client's 12 failed logins in a
    # minute over two kube-apiservers, each writing its own audit log
    first, second = tmp_path / "apiserver-1.log", tmp_path / "apiserver-2.log"
    first.write_text("\n".join(failed_logins(range(0, 60, 10))) + "\n")
    second.write_text("\n".join(failed_logins(range(5, 60, 10))) + "\n")
    burst = "Kubernetes Failed Authentication Burst"
    for logs in ((first, second), (second, first), (tmp_path,)):
        done = logwarden("detect", "-f", "table", "--no-progress", *map(str, logs))
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        out = done.stdout.decode()
        assert burst in out, logs
        assert "too late for correlation" not in out, out
