"""`logwarden config check|show` as a user runs them: output and exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from logwarden.cli import main
from logwarden.config import load, load_text
from logwarden.config.docs import EXAMPLE

BAD = """\
service:
  listen: "9095"
sources:
  audit:
    type: k8s_audit_webhook
    tls_cert_file: tls.crt
    tls_key_file: tls.key
receivers:
  hook: {type: webhook, url: "http://siem.example.com"}
"""


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.yaml"
    path.write_text(EXAMPLE)
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    return path


def test_check_a_good_file_prints_ok_and_exits_0(
    good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: OK\n"


def test_check_a_bad_file_prints_every_problem_and_exits_2(
    bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(bad)]) == 2
    assert capsys.readouterr().out.splitlines() == [
        f'{bad}:2: service.listen: expected host:port, got "9095"',
        f"{bad}:4: sources.audit: no client authentication: set client_ca_file (mTLS) or "
        "bearer_token_file, or allow_unauthenticated: true to accept anyone who can reach listen",
        f'{bad}:9: receivers.hook.url: expected an https:// URL, got "http://siem.example.com"',
        f"{bad}: 3 problems",
    ]


def test_check_several_files_reports_each_and_fails_if_any_is_bad(
    good: Path, bad: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.yaml"
    assert main(["config", "check", str(good), str(missing), str(bad)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{good}: OK"
    assert out[1:3] == [
        f"{missing}: cannot read: No such file or directory",
        f"{missing}: 1 problem",
    ]
    assert out[-1] == f"{bad}: 3 problems"


def test_show_without_a_file_prints_the_embedded_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    shown = yaml.safe_load(out)
    assert shown["service"]["listen"] == "127.0.0.1:9095"
    assert shown["sources"]["audit"]["type"] == "k8s_audit_webhook"
    assert shown["receivers"] == {
        "stdout": {"type": "stdout", "rate_limit_per_sec": 0.0, "burst": 10}
    }
    assert shown["alerts"]["api"]["listen"] == "127.0.0.1:9443"
    assert load_text(out) == load(None)


def test_show_a_file_writes_out_defaults_and_absolute_paths(
    good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "show", str(good)]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["detect"]["rules"][-1] == str(good.parent / "rules" / "local")
    assert shown["ledger"]["path"] == "/var/lib/logwarden/ledger"
    assert shown["sources"]["audit"]["max_body_bytes"] == 10485760


def test_show_a_bad_file_reports_on_stderr_and_exits_2(
    bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "show", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count(str(bad)) == 3


def test_the_installed_command_runs_config_check(bad: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "logwarden", "config", "check", str(bad)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert f"{bad}:2: service.listen" in done.stdout


def test_check_a_fifo_refuses_it_instead_of_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "logwarden", "config", "check", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == (
        f"{fifo}: not a regular file (a FIFO, socket or device): give a config file\n"
        f"{fifo}: 1 problem\n"
    )
