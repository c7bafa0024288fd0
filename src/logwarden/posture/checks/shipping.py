"""Check group 3, log shipping: an agent runs as a DaemonSet on every node.

An agent is a DaemonSet whose name or image names a known log shipper (fluent-bit,
fluentd, vector, promtail, Grafana agent/alloy, the OpenTelemetry collector, Datadog,
filebeat, Splunk, logwarden ...). It must tolerate the control-plane taints (or its
nodes' apiserver, etcd and controller logs are not shipped), mount the node's log
directory, and, on a live cluster, be ready on as many nodes as there are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from logwarden.posture.checks.base import Check
from logwarden.posture.model import Inventory, K8sObject, Where, pod_specs
from logwarden.records import Finding

__all__ = ["AGENT", "CHECKS", "GROUP", "agents", "run"]

GROUP = "log-shipping"

AGENT = re.compile(
    r"fluent-?bit|fluentd|timberio/vector|\bvector\b|promtail|grafana/agent|grafana/alloy|"
    r"\balloy\b|opentelemetry-collector|otel/|otelcol|datadog/agent|\bdatadog\b|filebeat|"
    r"splunk|newrelic-logging|logwarden|logstash|sumologic|elastic-agent",
    re.IGNORECASE,
)
_CONTROL_PLANE_TAINTS = {"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}
_NODE_LOG_DIRS = ("/var/log", "/var/lib/docker/containers")

NO_AGENT = Check(
    "LW-SHIP-001",
    GROUP,
    "No log-shipping agent",
    "info",
    "Container logs live on each node only until rotation or node loss; without an agent "
    "they are never centrally stored, searchable or protected from tampering (K05: logs "
    "not centrally stored).",
    "Run a log shipper (fluent-bit, vector, the OpenTelemetry collector, logwarden ...) as "
    "a DaemonSet that reads /var/log/pods and ships to central storage.",
)
NO_CONTROL_PLANE = Check(
    "LW-SHIP-002",
    GROUP,
    "Log agent skips control-plane nodes",
    "medium",
    "Without a toleration for the control-plane taint the agent does not run there, so "
    "the apiserver's, etcd's and the controllers' logs (and a file audit log) stay local.",
    "Add tolerations for node-role.kubernetes.io/control-plane:NoSchedule (or an "
    "`operator: Exists` toleration) to the agent's pod template.",
)
NO_LOG_MOUNT = Check(
    "LW-SHIP-003",
    GROUP,
    "Log agent cannot read node logs",
    "medium",
    "Container logs are files under /var/log/pods on each node; an agent without a "
    "hostPath mount of /var/log cannot read them.",
    "Mount the host's /var/log (read-only) into the agent container.",
)
NOT_EVERYWHERE = Check(
    "LW-SHIP-004",
    GROUP,
    "Log agent not running on every node",
    "high",
    "Pods on nodes without a ready agent log into a void: their logs are never shipped.",
    "Find why the agent's pods are missing or not ready on those nodes (taints, "
    "nodeSelector, resources, image pulls) and fix it.",
)

CHECKS = (NO_AGENT, NO_CONTROL_PLANE, NO_LOG_MOUNT, NOT_EVERYWHERE)


def _images(spec: dict[str, Any]) -> list[str]:
    return [
        str(c.get("image", ""))
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
        if isinstance(c, dict)
    ]


def agents(inv: Inventory) -> list[tuple[K8sObject, dict[str, Any], tuple[Any, ...]]]:
    """The log-shipping DaemonSets among the inputs, with their pod specs."""
    return [
        (obj, spec, base)
        for obj, spec, base in pod_specs(inv.of_kind("DaemonSet"))
        if AGENT.search(obj.name) or any(AGENT.search(i) for i in _images(spec))
    ]


def _has_workloads(inv: Inventory) -> bool:
    return any(True for _ in pod_specs(inv.objects))


def run(inv: Inventory) -> Iterator[Finding]:
    found = agents(inv)
    if not found:
        if inv.live is not None:
            yield NO_AGENT.at(
                Where(object=f"cluster {inv.live.context}"),
                "no log-shipping DaemonSet runs in the cluster",
                severity="high",
            )
        elif _has_workloads(inv):
            yield NO_AGENT.at(
                Where(object="scanned input"),
                "no log-shipping DaemonSet in the scanned input (a gap if it is deployed "
                "from elsewhere)",
            )
        return
    managed = inv.live is not None and inv.live.provider is not None
    for obj, spec, base in found:
        if not managed and not _tolerates_control_plane(spec):
            yield NO_CONTROL_PLANE.at(
                obj.where((*base, "tolerations") if "tolerations" in spec else base),
                f"{obj.ref} has no toleration for node-role.kubernetes.io/control-plane",
            )
        if not _mounts_node_logs(spec):
            yield NO_LOG_MOUNT.at(
                obj.where((*base, "volumes") if "volumes" in spec else base),
                f"{obj.ref} mounts no hostPath under /var/log",
            )
        if inv.live is not None:
            yield from _coverage(obj, inv)


def _tolerates_control_plane(spec: dict[str, Any]) -> bool:
    for tol in spec.get("tolerations") or []:
        if not isinstance(tol, dict):
            continue
        if tol.get("operator") == "Exists" and not tol.get("key"):
            return True
        if tol.get("key") in _CONTROL_PLANE_TAINTS and tol.get("effect") in (
            None,
            "",
            "NoSchedule",
        ):
            return True
    return False


def _mounts_node_logs(spec: dict[str, Any]) -> bool:
    for vol in spec.get("volumes") or []:
        if isinstance(vol, dict) and isinstance(vol.get("hostPath"), dict):
            path = str(vol["hostPath"].get("path", "")).rstrip("/") or "/"
            if path == "/" or any(
                path == d or path.startswith(d + "/") or d.startswith(path + "/")
                for d in _NODE_LOG_DIRS
            ):
                return True
    return False


def _coverage(obj: K8sObject, inv: Inventory) -> Iterator[Finding]:
    assert inv.live is not None
    status = obj.data.get("status") or {}
    desired = int(status.get("desiredNumberScheduled") or 0)
    ready = int(status.get("numberReady") or 0)
    nodes = [n for n in inv.live.nodes if not (n.get("spec") or {}).get("unschedulable")]
    if ready < desired:
        yield NOT_EVERYWHERE.at(
            obj.where(),
            f"{obj.ref}: {ready} of {desired} agent pods ready ({len(nodes)} schedulable nodes)",
        )
    elif desired < len(nodes):
        yield NOT_EVERYWHERE.at(
            obj.where(),
            f"{obj.ref}: scheduled on {desired} of {len(nodes)} schedulable nodes",
            severity="medium",
        )
