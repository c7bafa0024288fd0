"""The service's log lines: sentences, or one JSON object a line."""

from __future__ import annotations

import json
import logging

import pytest

from logwarden.runtime import configure_logging


def test_json_log_lines_carry_time_level_logger_and_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json")
    try:
        logging.getLogger("logwarden.run").info("source %r: audit webhook on %s", "audit", "x")
        line = json.loads(capsys.readouterr().err.strip())
        assert line["level"] == "info" and line["logger"] == "logwarden.run"
        assert line["message"] == "source 'audit': audit webhook on x"
        assert line["time"][:2] == "20"
        configure_logging("text")
        logging.getLogger("logwarden.run").warning("quoted 'id'")
        assert capsys.readouterr().err.rstrip().endswith("WARNING logwarden.run: quoted 'id'")
    finally:
        logging.getLogger("logwarden").handlers.clear()
        logging.getLogger("uvicorn.error").handlers.clear()
