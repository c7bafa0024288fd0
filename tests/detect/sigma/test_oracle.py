"""Differential test: logwarden's Sigma matches equal pySigma's SQLite backend's, rule by
rule, on real audit logs and on a generated workload, wherever the oracle can evaluate a
rule (it cannot where a field crosses an array; logwarden's own tests cover those)."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

from conftest import FIXTURES, TRACES, run_detect
from detect.sigma.events import write_events
from detect.sigma.oracle import sqlite_matches
from logwarden.detect.rulesets import builtin_path

SIGMAHQ = sorted(Path(builtin_path("sigma/rules/application/kubernetes/audit")).glob("*.yml"))
K05 = sorted(
    p for p in Path(builtin_path("builtin/k05")).glob("*.yml") if "correlation" not in p.read_text()
)


def real_events() -> list[dict[str, Any]]:
    lines = [
        line
        for path in [*sorted(TRACES.glob("*.json")), *sorted((FIXTURES / "audit").glob("*.log"))]
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    events = []
    for line in lines:
        event = json.loads(line)
        if isinstance(event, dict) and event.get("auditID"):
            events.append(event)
    return events


def generated_events(n: int, seed: int = 20261127) -> list[dict[str, Any]]:
    """Real trace events with the fields the rules read varied at random."""
    rnd = random.Random(seed)
    bases = [e for e in real_events() if e.get("stageTimestamp")]
    resources = [
        ("pods", "", None),
        ("pods", "", "exec"),
        ("pods", "", "attach"),
        ("pods", "", "portforward"),
        ("secrets", "", None),
        ("configmaps", "", None),
        ("events", "", None),
        ("deployments", "apps", None),
        ("deployments", "apps", "scale"),
        ("daemonsets", "apps", None),
        ("cronjobs", "batch", None),
        ("jobs", "batch", None),
        ("namespaces", "", None),
        ("serviceaccounts", "", None),
        ("rolebindings", "rbac.authorization.k8s.io", None),
        ("clusterrolebindings", "rbac.authorization.k8s.io", None),
        ("roles", "rbac.authorization.k8s.io", None),
        ("mutatingwebhookconfigurations", "admissionregistration.k8s.io", None),
        ("selfsubjectrulesreviews", "authorization.k8s.io", None),
    ]
    users = [
        "alice",
        "Bob",
        "system:anonymous",
        "system:kube-controller-manager",
        "system:serviceaccount:kube-system:replicaset-controller",
        "system:node:n1",
    ]
    names = ["fluent-bit", "falco", "web", "audit-policy", "nginx", "logging", "vector-agent"]
    out = []
    for i in range(n):
        event = copy.deepcopy(rnd.choice(bases))
        resource, group, sub = rnd.choice(resources)
        ref = {
            "resource": resource,
            "namespace": rnd.choice(["default", "kube-system", "logging"]),
            "name": rnd.choice(names),
            "apiVersion": "v1",
        }
        if group:
            ref["apiGroup"] = group
        if sub:
            ref["subresource"] = sub
        event["objectRef"] = ref
        event["verb"] = rnd.choice(
            [
                "get",
                "list",
                "watch",
                "create",
                "update",
                "patch",
                "delete",
                "deletecollection",
                "replace",
            ]
        )
        event["stage"] = rnd.choice(["ResponseComplete", "ResponseComplete", "ResponseStarted"])
        event["user"] = {"username": rnd.choice(users), "groups": ["system:authenticated"]}
        event["responseStatus"] = {"metadata": {}, "code": rnd.choice([200, 201, 401, 403, 404])}
        event["annotations"] = {"authorization.k8s.io/decision": rnd.choice(["allow", "forbid"])}
        event["requestURI"] = rnd.choice(
            [
                "/api/v1/x",
                "/healthz",
                "/api/v1/p/exec?command=%2fbin%2fsh",
                "/api/v1/p/exec?command=/usr/bin/curl",
                "/version",
            ]
        )
        event["userAgent"] = rnd.choice(
            ["kubectl/v1.29", "trufflehog/3", "Access_Matrix", "curl/8"]
        )
        if rnd.random() < 0.2:
            event["impersonatedUser"] = {"username": "carol"}
        else:
            event.pop("impersonatedUser", None)
        if rnd.random() < 0.3:
            event["requestObject"] = {
                "spec": {"replicas": rnd.choice([0, 1, 3])},
                "roleRef": {"name": rnd.choice(["cluster-admin", "view"])},
            }
        event["auditID"] = f"00000000-0000-4000-8000-{i:012d}"
        if rnd.random() < 0.25:  # Sigma compares case-insensitively: exercise it
            event["verb"] = event["verb"].upper()
            ref["resource"] = ref["resource"].title()
            ref["name"] = ref["name"].upper()
        out.append(event)
    return out


def compare(tmp_path: Path, rules: list[Path], events: list[dict[str, Any]]) -> tuple[int, int]:
    """Assert equality for every rule the oracle evaluates; return (evaluated, matches)."""
    oracle = sqlite_matches(rules, events)
    run = run_detect([write_events(tmp_path / "events.jsonl", events)], rules, match="all")
    assert run.events == len(events) and run.rejects.count == 0
    ours: dict[str, set[int]] = {title: set() for title in oracle}
    for alert in run.alerts:
        ours[alert.rule].add(alert.origin.seq - 1)
    evaluated = matched = 0
    for title, expected in oracle.items():
        if expected is None:
            continue
        evaluated += 1
        matched += len(expected)
        assert ours[title] == expected, (title, sorted(ours[title] ^ expected)[:10])
    return evaluated, matched


def test_sigmahq_rules_on_real_audit_logs(tmp_path: Path) -> None:
    evaluated, matched = compare(tmp_path, SIGMAHQ, real_events())
    assert evaluated >= 14 and matched > 100


def test_sigmahq_rules_on_a_generated_workload(tmp_path: Path) -> None:
    evaluated, matched = compare(tmp_path, SIGMAHQ, generated_events(3000))
    assert evaluated >= 14 and matched > 1000


def test_k05_pack_on_a_generated_workload(tmp_path: Path) -> None:
    evaluated, matched = compare(tmp_path, K05, generated_events(3000, seed=7))
    assert evaluated >= 14 and matched > 500
