"""Check group 6, kubelet and Events: event rate limits, Event TTL, and RBAC tampering.

`eventRecordQPS` in a KubeletConfiguration file (and kubeadm's `event-qps`) is the
kubelet's limit on Events created per second; 0 means unlimited there, so 0 is never
reported; unset means the default of 50. `--event-ttl` on the apiserver is how long
Events are kept (default 1h). RBAC is read from the Roles, ClusterRoles and their
bindings in the inputs: non-admin subjects that may delete Events, read pods/log, or
change the workloads and configuration of the logging namespaces are reported. Admins are
`system:masters`, the control plane's own `system:` users and groups and kube-system's
service accounts; `system:authenticated`, `system:unauthenticated` and
`system:serviceaccounts[:ns]` stand for everyone and are never admins. Only roles present
in the inputs are judged (the built-in `admin`, `edit` and `view` are not, in files).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from logwarden.posture.apiserver import apiservers, kubelet_settings
from logwarden.posture.checks.base import Check
from logwarden.posture.checks.shipping import agents
from logwarden.posture.model import Inventory, K8sObject
from logwarden.records import Finding

__all__ = ["CHECKS", "GROUP", "run"]

GROUP = "kubelet-events-rbac"

EVENT_QPS = Check(
    "LW-EVENTS-001",
    GROUP,
    "Kubelet drops Events",
    "low",
    "The kubelet creates at most eventRecordQPS Events per second and drops the rest: a "
    "burst (crash loops, failed mounts, an attack) loses exactly the Events that matter.",
    "Set eventRecordQPS: 0 (unlimited, in the kubelet config file) or leave it at the "
    "default 50, with eventBurst at least as large.",
)
EVENT_TTL = Check(
    "LW-EVENTS-002",
    GROUP,
    "Events expire quickly",
    "medium",
    "--event-ttl is how long the apiserver keeps Events; after it they are gone unless "
    "something exported them (K05: Kubernetes Events as a log source).",
    "Keep --event-ttl at 1h or more, and ship Events off the cluster (an event exporter or "
    "logwarden's k8s_events source).",
)
DELETE_EVENTS = Check(
    "LW-EVENTS-003",
    GROUP,
    "Non-admin may delete Events",
    "high",
    "Whoever can delete Events can erase the trace of what they did (a failed scheduling, "
    "a pulled image, a killed pod): tampering with a log source.",
    "Remove delete/deletecollection on events from the role, or bind it only to admins.",
)
READ_POD_LOGS = Check(
    "LW-EVENTS-004",
    GROUP,
    "Non-admin may read pod logs",
    "low",
    "pods/log gives the content of application logs, which often carries tokens and "
    "personal data; wide access to it turns logs into an exfiltration path.",
    "Grant pods/log only to the people who operate those workloads, per namespace.",
)
LOGGING_WORKLOADS = Check(
    "LW-EVENTS-005",
    GROUP,
    "Non-admin may change the logging stack",
    "high",
    "Whoever can change or delete the log agent's DaemonSet, pods or ConfigMaps can turn "
    "logging off silently (K05: logging infrastructure disabled).",
    "Keep write access to the logging namespaces for the platform admins only.",
)

CHECKS = (EVENT_QPS, EVENT_TTL, DELETE_EVENTS, READ_POD_LOGS, LOGGING_WORKLOADS)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_LOGGING_NS = re.compile(
    r"logging|monitoring|observability|falco|fluent|loki|elastic|logwarden|vector|otel"
)
_WRITE = {"create", "update", "patch", "delete", "deletecollection", "*"}
_LOGGING_RESOURCES = {"daemonsets", "deployments", "statefulsets", "pods", "configmaps", "*"}


def _seconds(text: str) -> float | None:
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def run(inv: Inventory) -> Iterator[Finding]:
    for obj, key, value, path in kubelet_settings(inv):
        if key != "eventRecordQPS":
            continue
        try:
            qps = float(value)
        except (TypeError, ValueError):
            continue
        if 0 < qps < 50:
            yield EVENT_QPS.at(
                obj.where(path),
                f"eventRecordQPS: {value}: Events beyond {value}/s are dropped",
                severity="medium" if qps < 5 else "low",
            )
    for server in apiservers(inv):
        ttl = server.flags.get("event-ttl")
        seconds = _seconds(ttl) if ttl else None
        if seconds is not None and seconds < 3600:
            yield EVENT_TTL.at(
                server.where("event-ttl"), f"--event-ttl={ttl}: Events are deleted after {ttl}"
            )
    yield from _rbac(inv)


def _grants(rules: Any, groups: set[str], resources: set[str], verbs: set[str]) -> bool:
    for rule in rules or []:
        if not isinstance(rule, dict):
            continue
        if not ({str(g) for g in rule.get("apiGroups") or []} & (groups | {"*"})):
            continue
        if not ({str(r) for r in rule.get("resources") or []} & (resources | {"*"})):
            continue
        if {str(v) for v in rule.get("verbs") or []} & (verbs | {"*"}):
            return True
    return False


#: built-in groups that stand for many people or workloads: never admins
_EVERYONE = {
    "system:authenticated",
    "system:unauthenticated",
    "system:anonymous",
    "system:serviceaccounts",
}


def _is_admin(kind: Any, name: str, namespace: str) -> bool:
    """Cluster admins and the control plane's own identities (users, groups and service
    accounts of kube-system); everyone else, including `system:authenticated`, is not."""
    if name in _EVERYONE:
        return False
    if name.startswith("system:serviceaccounts:"):  # every service account of a namespace
        return name == "system:serviceaccounts:kube-system"
    if name.startswith("system:serviceaccount:"):
        return name.startswith("system:serviceaccount:kube-system:")
    if kind == "ServiceAccount":
        return namespace == "kube-system"
    return name.startswith("system:")  # system:masters, system:kube-scheduler, nodes ...


def _non_admin(subjects: Any, binding_ns: str) -> list[str]:
    out = []
    for s in subjects or []:
        if not isinstance(s, dict):
            continue
        kind, name = s.get("kind"), str(s.get("name", ""))
        if not _is_admin(kind, name, str(s.get("namespace") or binding_ns)):
            out.append(f"{kind} {name}")
    return out


def _rbac(inv: Inventory) -> Iterator[Finding]:
    roles: dict[tuple[str, str, str], K8sObject] = {
        (o.kind, o.namespace if o.kind == "Role" else "", o.name): o
        for o in inv.of_kind("Role", "ClusterRole")
    }
    logging_ns = {o.namespace for o, _, _ in agents(inv)}
    for binding in inv.of_kind("RoleBinding", "ClusterRoleBinding"):
        ref = binding.data.get("roleRef") or {}  # a mapping: see inputs.shapes
        rkind, rname = str(ref.get("kind", "")), str(ref.get("name", ""))
        if rname == "cluster-admin" or rname.startswith("system:"):
            continue
        role = roles.get((rkind, binding.namespace if rkind == "Role" else "", rname))
        if role is None:
            continue
        who = _non_admin(binding.data.get("subjects"), binding.namespace)
        if not who:
            continue
        rules = role.data.get("rules")
        scope = f"in {binding.namespace}" if binding.kind == "RoleBinding" else "cluster-wide"
        subject = ", ".join(who)
        where = binding.where(("subjects",))
        if _grants(rules, {"", "events.k8s.io"}, {"events"}, {"delete", "deletecollection"}):
            yield DELETE_EVENTS.at(where, f"{subject} may delete Events {scope} ({role.ref})")
        if _grants(rules, {""}, {"pods/log", "pods/*"}, {"get"}):
            yield READ_POD_LOGS.at(where, f"{subject} may read pod logs {scope} ({role.ref})")
        in_logging = binding.kind == "ClusterRoleBinding" or (
            binding.namespace in logging_ns or bool(_LOGGING_NS.search(binding.namespace))
        )
        if in_logging and _grants(rules, {"", "apps"}, _LOGGING_RESOURCES, _WRITE):
            target = scope if binding.kind == "RoleBinding" else "in every namespace"
            yield LOGGING_WORKLOADS.at(
                where,
                f"{subject} may change workloads or ConfigMaps {target}, including the "
                f"logging stack ({role.ref})",
            )
