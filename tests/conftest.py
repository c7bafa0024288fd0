"""Shared test helpers: fixture paths and a small in-process detect runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from logwarden.detect.engine import Engine
from logwarden.detect.rulesets import load_rules
from logwarden.normalize import k8s_audit
from logwarden.records import Alert, Record
from logwarden.rejects import Rejects
from logwarden.sources.files import FileSource

FIXTURES = Path(__file__).parent / "fixtures"
FALCO = FIXTURES / "falco"
TRACES = FALCO / "falcosecurity-falco@0.34.1" / "test" / "trace_files" / "k8s_audit"


@dataclass
class Run:
    alerts: list[Alert] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    rejects: Rejects = field(default_factory=Rejects)
    events: int = 0


def run_detect(
    inputs: list[str | Path], rules: list[str | Path], match: str = "first", **engine: Any
) -> Run:
    """Load `rules`, read `inputs` and collect every alert, as `logwarden detect` does
    (without suppression)."""
    loaded = load_rules([str(r) for r in rules])
    detector = Engine(loaded.rules, correlations=loaded.correlations, match=match, **engine)
    run = Run()
    source = FileSource([str(i) for i in inputs], k8s_audit.FORMAT, run.rejects)

    def emit(record: Record) -> None:
        run.records.append(record)
        run.alerts.extend(detector.process(record))

    source.run(emit)
    run.alerts.extend(detector.flush())
    run.events = source.events
    return run


@pytest.fixture
def traces() -> Path:
    return TRACES
