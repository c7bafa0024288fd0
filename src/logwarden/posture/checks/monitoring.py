"""Check group 5, monitoring present: something reads the logs and raises alerts.

Counted as monitoring: logwarden or Falco running (any workload whose name or image
names them), Falco rules or alerting rules (`PrometheusRule` objects, or ConfigMaps
carrying Falco or Prometheus alerting rules), and Alertmanager. When none is in the
input it is reported as a gap (info), not a failure: monitoring is often deployed from
another repository. Alerting rules without any Alertmanager to receive them are
reported too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from logwarden.posture.checks.base import Check
from logwarden.posture.model import Inventory, Where, pod_specs
from logwarden.records import Finding

__all__ = ["CHECKS", "GROUP", "run"]

GROUP = "monitoring"

_DETECTOR = re.compile(r"falco|logwarden", re.IGNORECASE)
_ALERTMANAGER = re.compile(r"alertmanager", re.IGNORECASE)

NO_MONITORING = Check(
    "LW-MON-001",
    GROUP,
    "Nothing watches the logs",
    "info",
    "Logs nobody reads do not stop an attack: K05 asks that logs be monitored for "
    "suspicious activity and that alerts reach someone.",
    "Run a detector over the audit and container logs (logwarden, or Falco with its "
    "k8saudit plugin) and route its alerts (Alertmanager or logwarden's notifiers).",
)
NO_RECEIVER = Check(
    "LW-MON-002",
    GROUP,
    "Alerting rules with no Alertmanager",
    "low",
    "Alerting rules fire into nothing when no Alertmanager receives and routes them, so "
    "no one is told (K05: alerting thresholds not escalated).",
    "Deploy Alertmanager (or point Prometheus at one) with a route to the on-call team.",
)

CHECKS = (NO_MONITORING, NO_RECEIVER)


def _names_and_images(inv: Inventory) -> list[str]:
    out = []
    for obj, spec, _ in pod_specs(inv.objects):
        out.append(obj.name)
        out.extend(
            str(c.get("image", "")) for c in spec.get("containers") or [] if isinstance(c, dict)
        )
    return out


def _rule_configmaps(inv: Inventory) -> bool:
    for obj in inv.of_kind("ConfigMap"):
        data = obj.data.get("data")
        if isinstance(data, dict) and any(
            isinstance(v, str) and ("- rule:" in v or "alert:" in v) for v in data.values()
        ):
            return True
    return False


def run(inv: Inventory) -> Iterator[Finding]:
    if not inv.objects and inv.live is None:
        return
    names = _names_and_images(inv)
    detector = any(_DETECTOR.search(n) for n in names)
    alertmanager = any(_ALERTMANAGER.search(n) for n in names) or bool(
        inv.of_kind("Alertmanager", "AlertmanagerConfig")
    )
    prometheus_rules = inv.of_kind("PrometheusRule")
    rules = bool(prometheus_rules) or _rule_configmaps(inv)
    where = Where(object=f"cluster {inv.live.context}" if inv.live else "scanned input")
    if not (detector or alertmanager or rules):
        yield NO_MONITORING.at(
            where,
            "no logwarden, Falco, alerting rules or Alertmanager found"
            + ("" if inv.live else " in the scanned input (a gap if deployed from elsewhere)"),
            severity="low" if inv.live else "info",
        )
    elif prometheus_rules and not alertmanager and not detector:
        first = prometheus_rules[0]
        yield NO_RECEIVER.at(first.where(), f"{first.ref} has no Alertmanager to receive alerts")
