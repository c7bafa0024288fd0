"""What a check is: a stable id, a group, a title, a default severity, why and how to fix.

A check group is a module of `logwarden.posture.checks` with `GROUP` (its name), `CHECKS`
(its `Check`s) and `run(inventory) -> Iterator[Finding]`. A `Check` makes its findings
with `Check.at(where, message)`, so the id, title, why and fix are written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from logwarden.posture.model import Where
from logwarden.records import SEVERITIES, Finding

__all__ = ["Check", "severity_rank"]

_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """0 for critical ... 4 for info: lower is more severe."""
    return _RANK[severity]


@dataclass(frozen=True)
class Check:
    id: str
    group: str
    title: str
    severity: str
    why: str
    remediation: str

    def at(
        self,
        where: Where,
        message: str,
        *,
        severity: str | None = None,
        remediation: str | None = None,
    ) -> Finding:
        sev = severity or self.severity
        assert sev in _RANK, sev
        return Finding(
            id=self.id,
            severity=sev,
            title=self.title,
            file=where.file,
            line=where.line,
            object=where.object,
            message=message,
            why=self.why,
            remediation=remediation or self.remediation,
            group=self.group,
        )
