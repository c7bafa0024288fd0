"""Check group 7, managed clusters: the control-plane logs the cloud keeps for you.

EKS needs all five control-plane log types (api, audit, authenticator, controllerManager,
scheduler); AKS needs a diagnostic setting that exports kube-audit or kube-audit-admin
(or the `audit`/`allLogs` category groups); GKE needs logging on (`loggingService` not
``none``) with the system components and workloads collected. When a live cluster's
control plane is not visible (a managed cluster) and no cloud configuration was given,
the audit checks cannot be made from inside: that is reported as "needs cloud config",
not as a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

from logwarden.posture.apiserver import apiservers
from logwarden.posture.checks.base import Check
from logwarden.posture.model import CloudDoc, Inventory, Where
from logwarden.records import Finding

__all__ = ["CHECKS", "EKS_LOG_TYPES", "GROUP", "run"]

GROUP = "managed-clusters"

EKS_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
_EKS_SEVERITY = {"audit": "high", "authenticator": "high"}
_AKS_AUDIT = {"kube-audit", "kube-audit-admin", "audit", "allLogs"}

EKS = Check(
    "LW-CLOUD-001",
    GROUP,
    "EKS control-plane logs off",
    "high",
    "EKS writes control-plane logs to CloudWatch only for the enabled types: without "
    "audit there is no audit trail, without authenticator no record of failed IAM logins.",
    "Enable all five types: `aws eks update-cluster-config --logging "
    '\'{"clusterLogging":[{"types":["api","audit","authenticator",'
    '"controllerManager","scheduler"],"enabled":true}]}\'` (Terraform: '
    "enabled_cluster_log_types).",
)
AKS = Check(
    "LW-CLOUD-002",
    GROUP,
    "AKS audit logs not exported",
    "high",
    "AKS keeps the apiserver audit log only when a diagnostic setting exports kube-audit "
    "(or kube-audit-admin, which leaves out reads); otherwise it is discarded.",
    "Add a diagnostic setting on the cluster with the kube-audit-admin (or kube-audit) "
    "category to a Log Analytics workspace or storage account.",
)
GKE = Check(
    "LW-CLOUD-003",
    GROUP,
    "GKE logging off or partial",
    "high",
    "With logging disabled, or without SYSTEM_COMPONENTS and WORKLOADS, GKE sends neither "
    "system nor container logs to Cloud Logging.",
    "Set logging to SYSTEM_COMPONENTS and WORKLOADS (and APISERVER for control-plane "
    "logs): `gcloud container clusters update --logging=SYSTEM,WORKLOAD,API_SERVER`.",
)
NEEDS_CLOUD = Check(
    "LW-CLOUD-004",
    GROUP,
    "Needs cloud config: control plane not visible",
    "info",
    "On a managed cluster the apiserver's flags and audit policy are not visible through "
    "the Kubernetes API; its audit logging is configured in the cloud, so it cannot be "
    "judged from inside the cluster.",
    "Scan the cloud's description of the cluster too (`aws eks describe-cluster`, "
    "`az monitor diagnostic-settings list`, `gcloud container clusters describe "
    "--format=json`, or the Terraform that creates it).",
)

CHECKS = (EKS, AKS, GKE, NEEDS_CLOUD)


def run(inv: Inventory) -> Iterator[Finding]:
    for doc in inv.cloud:
        if doc.provider == "eks":
            yield from _eks(doc)
        elif doc.provider == "gke":
            yield from _gke(doc)
    yield from _aks(inv)
    if inv.live is not None and not apiservers(inv):
        provider = inv.live.provider
        if not any(d.provider.startswith(provider or "-") for d in inv.cloud):
            kind = f"a managed {provider.upper()} cluster" if provider else "this cluster"
            yield NEEDS_CLOUD.at(
                Where(object=f"cluster {inv.live.context}"),
                f"no kube-apiserver pod is visible in {kind}: audit logging needs the cloud "
                "configuration to be checked",
            )


def _eks(doc: CloudDoc) -> Iterator[Finding]:
    enabled = doc.facts["enabled_types"]
    missing = [t for t in EKS_LOG_TYPES if t not in enabled]
    if missing:
        severity = "high" if any(t in _EKS_SEVERITY for t in missing) else "medium"
        yield EKS.at(
            doc.where,
            f"EKS cluster {doc.name!r}: log types not enabled: {', '.join(missing)}",
            severity=severity,
        )


def _aks(inv: Inventory) -> Iterator[Finding]:
    settings = [d for d in inv.cloud if d.provider == "aks-diagnostics"]
    clusters = [d for d in inv.cloud if d.provider == "aks"]
    # a setting Terraform computes (noted by the input) may export kube-audit: not judged
    unknown = [s for s in settings if s.facts.get("unknown")]
    covered = {s.facts["cluster"] for s in settings if s.facts["categories"] & _AKS_AUDIT}
    covered |= {s.facts["cluster"] for s in unknown}
    for cluster in clusters:
        if cluster.name not in covered and not (len(clusters) == 1 and "" in covered):
            yield AKS.at(
                cluster.where,
                f"AKS cluster {cluster.name!r}: no diagnostic setting exports kube-audit or "
                "kube-audit-admin",
            )
    for setting in settings:
        if setting not in unknown and not setting.facts["categories"] & _AKS_AUDIT:
            cats = ", ".join(sorted(setting.facts["categories"])) or "none"
            yield AKS.at(
                setting.where,
                f"diagnostic setting {setting.name!r} exports {cats}, not kube-audit or "
                "kube-audit-admin",
                severity="medium" if setting.facts["cluster"] in covered else "high",
            )


def _gke(doc: CloudDoc) -> Iterator[Finding]:
    service = doc.facts.get("logging_service")
    components = doc.facts.get("components")
    if service == "none" or components == []:
        yield GKE.at(doc.where, f"GKE cluster {doc.name!r}: logging is disabled")
        return
    if isinstance(components, list):
        missing = [c for c in ("SYSTEM_COMPONENTS", "WORKLOADS") if c not in components]
        if missing:
            yield GKE.at(
                doc.where,
                f"GKE cluster {doc.name!r}: logging components missing: {', '.join(missing)}",
                severity="high" if "SYSTEM_COMPONENTS" in missing else "medium",
            )
