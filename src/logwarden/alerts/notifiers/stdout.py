"""Alerts as JSON lines on standard output (the contract of `detect --format jsonl`)."""

from __future__ import annotations

import sys
from typing import BinaryIO

import msgspec

from logwarden.records import Alert

__all__ = ["StdoutNotifier"]


class StdoutNotifier:
    kind = "stdout"
    #: payloads are JSON lines: several join into one send
    joins = True

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream or sys.stdout.buffer
        self._encode = msgspec.json.Encoder().encode

    def render(self, alert: Alert) -> bytes:
        return self._encode(alert) + b"\n"

    def send(self, payload: bytes) -> None:
        self._stream.write(payload)
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
