"""Helpers of the audit file tail tests: real audit lines, and an audit tail polling fast.

Rotation, the steady writer and the fake ledger are shared with the other file tails: they
live in `tail_helpers` and are re-exported here.
"""

from __future__ import annotations

from pathlib import Path

from tail_helpers import (
    HeldSink,
    RotatingWriter,
    Sink,
    gzip_file,
    lumberjack_name,
    rotate,
    running,
    seqs_and_lines,
)

from logwarden.rejects import Rejects
from logwarden.sources.k8s_audit_file import K8sAuditFileSource

__all__ = [
    "AUDIT_LINES",
    "HeldSink",
    "RotatingWriter",
    "Sink",
    "gzip_file",
    "lumberjack_name",
    "make_source",
    "rotate",
    "running",
    "seqs_and_lines",
]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "audit"

#: 794 distinct real audit events, one per line (audit2rbac's demo logs, v1beta1 and v1).
AUDIT_LINES = [
    line
    for name in ("demo-full-v1beta1-2017.log", "demo.log")
    for line in (FIXTURES / name).read_bytes().splitlines()
    if line.strip()
]


def make_source(
    live: Path, state: Path, rejects: Rejects | None = None, **options: object
) -> K8sAuditFileSource:
    """A source over `live` polling fast, with its state in `state`."""
    options.setdefault("poll_interval_secs", 0.005)
    return K8sAuditFileSource(
        "apiserver",
        str(live),
        state,
        Rejects() if rejects is None else rejects,
        **options,  # type: ignore[arg-type]
    )
