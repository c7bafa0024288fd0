"""Alerts appended to a file as JSON lines, synced so an alert written survives a crash.

The lines are the stdout notifier's (`stdout.json_lines`): one per alert, its
`AlertState` fields with `receiver`, `route`, `group_key`, `notification_id` and
`notification_status`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from logwarden.alerts.model import Notification
from logwarden.alerts.notifiers.base import SendError
from logwarden.alerts.notifiers.stdout import json_lines

__all__ = ["FileNotifier"]


class FileNotifier:
    kind: ClassVar[str] = "file"
    #: payloads are JSON lines: several join into one send
    joins: ClassVar[bool] = True
    per_alert: ClassVar[bool] = False
    #: written here, durably: the dispatcher writes it at once when nothing waits for it
    local: ClassVar[bool] = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def render(self, notification: Notification) -> bytes:
        return json_lines(notification)

    def send(self, payload: bytes, key: str) -> None:
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            view = memoryview(payload)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fdatasync(self._fd)
        except OSError as exc:
            self.close()
            raise SendError(f"{self.path}: {exc.strerror or exc}", retry=True) from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
