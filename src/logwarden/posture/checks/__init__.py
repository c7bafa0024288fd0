"""The scan's checks: one module per check group, each with `GROUP`, `CHECKS` and `run`.

Groups, in the order of the K05 issue: audit logging on, audit policy coverage (by
simulation), log shipping, discarded logs, monitoring, kubelet/Events/RBAC, managed
clusters.
"""

from __future__ import annotations

from types import ModuleType

from logwarden.posture.checks import (
    audit_logging,
    audit_policy,
    discard,
    events,
    managed,
    monitoring,
    shipping,
)
from logwarden.posture.checks.base import Check, severity_rank
from logwarden.posture.model import Inventory
from logwarden.records import Finding

__all__ = ["ALL_CHECKS", "GROUPS", "Check", "run_all", "severity_rank"]

GROUPS: tuple[ModuleType, ...] = (
    audit_logging,
    audit_policy,
    shipping,
    discard,
    monitoring,
    events,
    managed,
)

ALL_CHECKS: dict[str, Check] = {c.id: c for g in GROUPS for c in g.CHECKS}


def _key(f: Finding) -> tuple[int, str, int, str, str]:
    return (severity_rank(f.severity), f.file or "", f.line or 0, f.id, f.message)


def run_all(inv: Inventory) -> list[Finding]:
    """Every finding of every group, most severe first, then by file and line."""
    findings: list[Finding] = []
    for group in GROUPS:
        findings.extend(group.run(inv))
    return sorted(findings, key=_key)
