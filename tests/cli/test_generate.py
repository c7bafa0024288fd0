"""`logwarden generate` as a user runs it: a real process, its help, output and exit status."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from logwarden.generate import audit_policy

TOKEN = "lw-cli-token-0123456789"


def logwarden(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logwarden", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def flat(text: str) -> str:
    """Help text with its line wrapping (which follows the terminal width) undone."""
    return " ".join(text.split())


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def test_top_level_help_lists_generate() -> None:
    done = logwarden("--help")
    assert done.returncode == 0
    assert "generate write the kube-apiserver audit policy and audit webhook kubeconfig" in flat(
        done.stdout
    )


def test_generate_help_names_its_actions_and_exit_status() -> None:
    done = logwarden("generate", "--help")
    assert done.returncode == 0, done.stderr
    out = flat(done.stdout)
    assert "usage: logwarden generate [-h] ACTION ..." in out
    assert "audit-policy the audit Policy for --audit-policy-file" in out
    assert "webhook-kubeconfig the kubeconfig for --audit-webhook-config-file" in out
    assert "audit-policy the audit Policy for kube-apiserver --audit-policy-file" in out
    assert "docs/generate.md" in out
    assert "0 when the file was written, 2 on usage errors" in out
    # only what exists is offered
    assert "deploy" not in out


def test_audit_policy_help_lists_its_options() -> None:
    done = logwarden("generate", "audit-policy", "--help")
    assert done.returncode == 0
    out = flat(done.stdout)
    for option in ("--logging-namespace NS", "--keep-system-reads", "--output FILE, -o FILE"):
        assert option in out
    assert "It omits the RequestReceived stage" in out
    assert "No other write and no failed authentication is dropped" in out


def test_webhook_kubeconfig_help_lists_its_options() -> None:
    done = logwarden("generate", "webhook-kubeconfig", "--help")
    assert done.returncode == 0
    for option in (
        "--url URL",
        "--ca FILE",
        "--client-cert FILE",
        "--client-key FILE",
        "--token-file FILE",
        "--output FILE, -o FILE",
    ):
        assert option in flat(done.stdout)
    assert "With --output the file is created mode 0600" in flat(done.stdout)


def test_audit_policy_to_stdout_and_to_a_file(tmp_path: Path) -> None:
    done = logwarden("generate", "audit-policy")
    assert done.returncode == 0, done.stderr
    assert done.stdout == audit_policy()
    out = tmp_path / "audit-policy.yaml"
    done = logwarden(
        "generate", "audit-policy", "--logging-namespace", "logging", "--output", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == f"logwarden: wrote {out}\n"
    assert out.read_text() == audit_policy(logging_namespaces=["logging"])


def test_scan_of_the_generated_policy_has_no_audit_policy_finding(tmp_path: Path) -> None:
    assert (
        logwarden("generate", "audit-policy", "-o", str(tmp_path / "policy.yaml")).returncode == 0
    )
    done = logwarden("scan", "--format", "json", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert [f for f in json.loads(done.stdout) if f["group"] == "audit-policy"] == []
    assert "0 input errors" in done.stderr


def test_bad_logging_namespace_exits_2() -> None:
    done = logwarden("generate", "audit-policy", "--logging-namespace", "Logging")
    assert done.returncode == 2
    assert done.stderr.startswith("logwarden: --logging-namespace 'Logging': not a namespace name")
    assert done.stdout == ""


def test_webhook_kubeconfig_to_a_private_file(tmp_path: Path, token: Path) -> None:
    out = tmp_path / "webhook.kubeconfig"
    done = logwarden(
        "generate",
        "webhook-kubeconfig",
        "--url",
        "https://logwarden.example:8443/audit",
        "--token-file",
        str(token),
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    data = yaml.safe_load(out.read_text())
    assert data["clusters"][0]["cluster"]["server"] == "https://logwarden.example:8443/audit"
    assert data["users"][0]["user"] == {"token": TOKEN}


def test_an_existing_output_file_is_made_private(tmp_path: Path, token: Path) -> None:
    out = tmp_path / "webhook.kubeconfig"
    out.write_text("stale content")
    out.chmod(0o644)
    args = ("--url", "https://l.example/audit", "--token-file", str(token), "-o", str(out))
    assert logwarden("generate", "webhook-kubeconfig", *args).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "stale content" not in out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: --url"),
        (("--url", "http://l.example/audit"), "logwarden: --url 'http://l.example/audit': must"),
        (("--url", "https://l.example/audit"), "logwarden: no credentials: give --client-cert"),
        (
            ("--url", "https://l.example/audit", "--client-cert", "{token}"),
            "logwarden: --client-cert needs --client-key",
        ),
        (
            ("--url", "https://l.example/audit", "--token-file", "{token}", "--ca", "{token}"),
            "logwarden: --ca {token}: not a PEM certificate",
        ),
    ],
    ids=["missing-url", "http-url", "no-credentials", "cert-without-key", "ca-not-pem"],
)
def test_webhook_kubeconfig_usage_errors_exit_2(
    token: Path, args: tuple[str, ...], message: str
) -> None:
    done = logwarden("generate", "webhook-kubeconfig", *(a.format(token=token) for a in args))
    assert done.returncode == 2
    assert message.format(token=token) in done.stderr
    assert done.stdout == ""


def test_generate_without_an_action_exits_2() -> None:
    done = logwarden("generate")
    assert done.returncode == 2
    assert "ACTION" in done.stderr
