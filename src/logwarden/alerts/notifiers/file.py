"""Alerts appended to a file as JSON lines, synced so an alert written survives a crash.

The lines are the stdout notifier's (`stdout.json_lines`): one per alert, its
`AlertState` fields with `receiver`, `route`, `group_key`, `notification_id` and
`notification_status`.

A write that fails part way (a full disk) is taken back (the file is cut to where the
send began), so the retry does not append its lines to half a line. The file is
logwarden's alone: nothing else may append to it.
"""

from __future__ import annotations

import contextlib
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
            _append(self._fd, payload)
        except OSError as exc:
            self.close()
            raise SendError(f"{self.path}: {exc.strerror or exc}", retry=True) from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _append(fd: int, payload: bytes) -> None:
    """Write `payload` at the end of `fd` and sync it; on failure, cut off what was written."""
    start = os.fstat(fd).st_size
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fdatasync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        raise
