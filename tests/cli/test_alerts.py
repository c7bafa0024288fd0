"""`logwarden alerts` refuses what its state file cannot keep, as a usage error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from logwarden.alerts.state import AlertStore


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory with the alert state `logwarden run` leaves (no alerts yet)."""
    store = AlertStore(tmp_path / "alerts.db")
    assert store.silences() == []
    store.close()
    return tmp_path


def alerts(data_dir: Path, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logwarden", "alerts", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "duration",
    ["99999999999w", "9999999999999999999", "3651d", "9" * 5000],
    ids=["weeks", "seconds", "days", "digits"],
)
def test_a_silence_over_10_years_is_refused(data_dir: Path, duration: str) -> None:
    done = alerts(data_dir, "silence", 'namespace="a"', "--comment", "x", "--duration", duration)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "--duration: '" in done.stderr and "at most 10 years (3650d)" in done.stderr
    assert AlertStore(data_dir / "alerts.db").silences() == []


def test_a_silence_of_10_years_is_kept(data_dir: Path) -> None:
    done = alerts(data_dir, "silence", 'namespace="a"', "--comment", "x", "--duration", "3650d")
    assert done.returncode == 0, done.stderr
    (silence,) = AlertStore(data_dir / "alerts.db").silences()
    assert silence.ends_ns - silence.starts_ns == 3650 * 86_400 * 10**9


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["silence", 'namespace="a"', "--comment", b"\xff"], "--comment"),
        (["silence", b'namespace="\xff"', "--comment", "x"], "MATCHER"),
        (["ack", "0000", "--by", b"\xff"], "--by"),
        (["resolve", b"\xff"], "FINGERPRINT"),
        (["expire", b"\xff"], "ID"),
    ],
)
def test_arguments_that_are_not_utf8_are_refused(
    data_dir: Path, args: list[str | bytes], named: str
) -> None:
    done = alerts(data_dir, *args)
    assert done.returncode == 2, done.stderr
    assert f"{named}: not valid UTF-8 text" in done.stderr
    assert "Traceback" not in done.stderr
