"""The alert stage's thread: a failure in the manager is logged and never keeps the stage
from closing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from test_manager import alert

from logwarden.alerts.setup import alert_stage
from logwarden.alerts.stage import AlertStage
from logwarden.alerts.state import AlertStore
from logwarden.config import load_text


class FailingManager:
    """A manager (our own interface) whose every occurrence fails, as a bug would."""

    def load(self, now_ns: int) -> None:
        pass

    def receive(self, alert: Any, now_ns: int) -> None:
        raise RuntimeError("a bug in the manager")

    def next_due_ns(self) -> int:
        return 1 << 62

    def command(self, command: Any, now_ns: int) -> str:
        return ""

    def refresh_silences(self, now_ns: int) -> None:
        pass

    def tick(self, now_ns: int) -> list[Any]:
        return []

    def drain(self, now_ns: int) -> list[Any]:
        return []

    def save(self) -> None:
        pass


class NoDispatcher:
    def start(self) -> None:
        pass

    def submit(self, notifications: Any, now_ns: int) -> None:
        pass

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}


def test_a_failing_manager_is_logged_and_the_stage_still_closes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def build(store: AlertStore, health: Any) -> Any:
        return FailingManager(), NoDispatcher()

    stage = AlertStage(tmp_path / "alerts.db", build)
    stage.start()
    for _ in range(3):
        stage(alert())
    closing = threading.Thread(target=stage.close)
    closing.start()
    closing.join(10)
    assert not closing.is_alive(), "close() hung after the manager failed"
    assert isinstance(stage.error, RuntimeError)
    assert "the alert manager failed" in caplog.text


def test_how_far_detection_got_is_saved_after_the_alerts_it_covers(tmp_path: Path) -> None:
    config = load_text(
        f"data_dir: {tmp_path}\nreceivers: {{file: {{type: file, path: {tmp_path}/a.jsonl}}}}\n"
    )
    stage = alert_stage(config)
    assert stage.detected_through() is None  # no state file yet
    stage.start()
    stage(alert(user="alice"))
    stage.through(41)
    stage(alert(user="bob"))  # after the mark: not covered by it
    stage.through(42)
    stage.close()
    store = AlertStore(stage.state_file)
    assert store.detected_through() == 42
    assert {a.labels["user"] for a in store.alerts()} == {"alice", "bob"}
    store.close()
    again = alert_stage(config)
    assert again.detected_through() == 42  # read before the stage starts, as `run` does
