"""`logwarden scan`: find inadequate logging (OWASP K05) before an attacker does.

    inputs/   files (manifests, policies, kubelet and kubeadm config, nginx, Dockerfiles,
              docker-compose, daemon.json, Terraform, cloud JSON) and a live cluster
    policy    the kube-apiserver's audit policy checker, re-implemented exactly
    requests  the requests that matter for K05, and the bodies that must not be logged
    checks/   one module per check group
    report    table and JSON; sarif: SARIF 2.1.0; fix: suggested patches

`scan(paths, live=...)` returns a `Scan`: the findings, most severe first, and the
inventory they were found in (with its counted input errors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from logwarden.posture.checks import ALL_CHECKS, run_all
from logwarden.posture.inputs import collect
from logwarden.posture.model import Inventory
from logwarden.records import Finding
from logwarden.rejects import Rejects

__all__ = ["ALL_CHECKS", "Live", "Scan", "scan"]


@dataclass(frozen=True)
class Live:
    """Where the live cluster is: a kubeconfig file (None: as kubectl) and a context."""

    kubeconfig: str | None = None
    context: str | None = None


@dataclass
class Scan:
    findings: list[Finding]
    inventory: Inventory


def scan(paths: Sequence[str], live: Live | None = None, rejects: Rejects | None = None) -> Scan:
    """Read `paths` (and the live cluster) and run every check."""
    inv = Inventory(rejects=rejects or Rejects())
    collect(paths, inv)
    if live is not None:
        from logwarden.posture.inputs.live import collect_live

        collect_live(inv, live.kubeconfig, live.context)
    return Scan(run_all(inv), inv)
