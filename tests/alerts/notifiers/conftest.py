"""Fixtures of the notifier tests: local HTTPS (and plain HTTP) receivers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .notifier_helpers import LocalReceiver


@pytest.fixture
def https_receiver(tmp_path: Path) -> Iterator[LocalReceiver]:
    """An HTTPS server on 127.0.0.1 with a certificate from a CA of its own (`.ca`)."""
    receiver = LocalReceiver(tmp_path / "pki")
    yield receiver
    receiver.close()


@pytest.fixture
def http_receiver() -> Iterator[LocalReceiver]:
    """A plain HTTP server on 127.0.0.1."""
    receiver = LocalReceiver(None)
    yield receiver
    receiver.close()
