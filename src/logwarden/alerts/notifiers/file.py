"""Alerts appended to a file as JSON lines, synced so an alert written survives a crash."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from logwarden.alerts.notifiers.base import SendError
from logwarden.records import Alert

__all__ = ["FileNotifier"]


class FileNotifier:
    kind = "file"
    #: payloads are JSON lines: several join into one send
    joins = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._encode = msgspec.json.Encoder().encode
        self._fd: int | None = None

    def render(self, alert: Alert) -> bytes:
        return self._encode(alert) + b"\n"

    def send(self, payload: bytes) -> None:
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            view = memoryview(payload)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fdatasync(self._fd)
        except OSError as exc:
            raise SendError(f"{self.path}: {exc.strerror or exc}", retry=True) from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
