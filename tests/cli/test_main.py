"""The `logwarden` command itself: what every command does on Ctrl-C and on a failed output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import logwarden.cli
from logwarden.cli import main


def test_ctrl_c_while_a_command_loads_exits_130_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a command module whose import is interrupted, as Ctrl-C right after start is
    (tmp_path / "slow_start.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.setattr(logwarden.cli, "__path__", [*logwarden.cli.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "logwarden.cli.slow_start", raising=False)
    try:
        code = main(["slow-start"])
    except KeyboardInterrupt:
        pytest.fail("the interrupt escaped main() (a traceback)")
    assert code == 130
    assert capsys.readouterr().err == "logwarden: interrupted\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("buffered", [True, False])
def test_an_output_that_cannot_be_written_is_one_line_not_a_traceback(buffered: bool) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "" if buffered else "1"}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "logwarden", "config", "show"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    assert (done.returncode, done.stderr) == (1, "logwarden: No space left on device\n")
