"""What a detector is, for the pipeline: records in, alerts out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from logwarden.records import Alert, Record

__all__ = ["Detector"]


class Detector(Protocol):
    def process(self, record: Record) -> Sequence[Alert]:
        """Alerts raised by this one record (often none)."""

    def flush(self, now_ns: int) -> Sequence[Alert]:
        """Alerts due at `now_ns` from windowed state (none for stateless detectors)."""
