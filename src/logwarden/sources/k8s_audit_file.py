"""Kubernetes audit log file: tails kube-apiserver's ``--audit-log-path`` through rotation.

A `log_file.LogFileSource` of the audit format (`normalize.k8s_audit.FORMAT`): each line
is one audit Event, or an EventList / JSON array, which yields one record per item (the
format's `decode` splits it; items that are not events are reported at their line). Lines
that are not audit events are reported to `Rejects` as ``path:line: reason`` and counted.
Position, resume and rotation are those of `log_file`; the position is saved in
``<state_dir>/k8s_audit_file.<source_id>.json``, the name it always had, so an existing
deployment resumes where it stood.
"""

from __future__ import annotations

from pathlib import Path

from logwarden.normalize.k8s_audit import FORMAT
from logwarden.rejects import Rejects
from logwarden.sources.log_file import LogFileSource

__all__ = ["K8sAuditFileSource"]


class K8sAuditFileSource(LogFileSource):
    """Tails one kube-apiserver audit log file (see the module doc and `LogFileSource`)."""

    kind = "k8s_audit_file"

    def __init__(
        self,
        source_id: str,
        path: str,
        state_dir: Path,
        rejects: Rejects,
        *,
        poll_interval_secs: float = 0.25,
        batch_events: int = 1024,
        start_at: str = "beginning",
    ) -> None:
        super().__init__(
            source_id,
            path,
            state_dir,
            rejects,
            fmt=FORMAT,
            poll_interval_secs=poll_interval_secs,
            batch_events=batch_events,
            start_at=start_at,
        )
