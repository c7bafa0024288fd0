"""SigmaHQ's 16 Kubernetes audit rules, unchanged, through logwarden's field mapping:
each loads, fires on a real-format event it describes and stays silent on a near miss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import run_detect
from detect.sigma.events import demo, edit, trace, write_events
from logwarden.detect.rulesets import builtin_path, load_rules

AUDIT = Path(builtin_path("sigma/rules/application/kubernetes/audit"))

_exec = trace("exec_pod.json")
_pod = trace("create_nginx_pod_sensitive_mount.json")
_crb = trace("create_clusterrolebinding.json")
_secret = trace("create_secret.json")
_denied = demo(lambda e: e.get("responseStatus", {}).get("code") == 403)
_webhook = edit(
    trace("create_configmap.json"),
    objectRef={
        "resource": "mutatingwebhookconfigurations",
        "apiGroup": "admissionregistration.k8s.io",
        "apiVersion": "v1",
        "name": "inject",
    },
)
_cronjob = edit(
    trace("create_deployment.json"), objectRef__resource="cronjobs", objectRef__apiGroup="batch"
)
_caps = edit(_pod)
_caps["requestObject"]["spec"]["containers"][0]["securityContext"] = {
    "capabilities": {"add": ["SYS_ADMIN"]}
}
_review = edit(
    trace("create_serviceaccount.json"),
    objectRef={
        "resource": "selfsubjectrulesreviews",
        "apiGroup": "authorization.k8s.io",
        "apiVersion": "v1",
    },
)
_scanner = edit(_exec, requestURI="/api/v1/namespaces/default/pods/x/exec?command=%2fbin%2fsh")

# rule file -> (positive event, near miss)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "kubernetes_audit_change_admission_controller.yml": (_webhook, edit(_webhook, verb="get")),
    "kubernetes_audit_cronjob_modification.yml": (
        _cronjob,
        edit(_cronjob, objectRef__apiGroup="apps"),
    ),
    "kubernetes_audit_deployment_deleted.yml": (
        trace("delete_deployment.json"),
        trace("create_deployment.json"),
    ),
    "kubernetes_audit_events_deleted.yml": (
        edit(trace("delete_configmap.json"), objectRef__resource="events"),
        trace("delete_configmap.json"),
    ),
    "kubernetes_audit_exec_into_container.yml": (
        _exec,
        edit(_exec, objectRef__subresource="attach"),
    ),
    "kubernetes_audit_hostpath_mount.yml": (_pod, trace("create_nginx_pod_unsensitive_mount.json")),
    "kubernetes_audit_pod_in_system_namespace.yml": (
        trace("create_pod_kube_system_namespace.json"),
        trace("create_nginx_pod_unprivileged.json"),
    ),
    "kubernetes_audit_potential_enumeration_activity.yml": (
        _scanner,
        edit(_scanner, annotations={"authorization.k8s.io/decision": "forbid"}),
    ),
    "kubernetes_audit_privileged_pod_creation.yml": (
        _caps,
        trace("create_nginx_pod_unprivileged.json"),
    ),
    "kubernetes_audit_rbac_permisions_listing.yml": (_review, edit(_review, verb="get")),
    "kubernetes_audit_rolebinding_modification.yml": (_crb, edit(_crb, verb="list")),
    "kubernetes_audit_secrets_enumeration.yml": (
        edit(_secret, verb="list"),
        edit(_secret, verb="get"),
    ),
    "kubernetes_audit_secrets_modified_or_deleted.yml": (_secret, edit(_secret, verb="get")),
    "kubernetes_audit_serviceaccount_creation.yml": (
        trace("create_serviceaccount.json"),
        trace("delete_serviceaccount.json"),
    ),
    "kubernetes_audit_sidecar_injection.yml": (
        edit(trace("delete_deployment.json"), verb="patch", objectRef__apiGroup="apps"),
        edit(trace("delete_deployment.json"), objectRef__apiGroup="apps"),
    ),
    "kubernetes_audit_unauthorized_unauthenticated_actions.yml": (
        _denied,
        edit(_denied, responseStatus__code=404),
    ),
}


def test_every_audit_rule_is_covered_and_loads() -> None:
    files = sorted(p.name for p in AUDIT.glob("*.yml"))
    assert files == sorted(CASES)
    rules = load_rules([str(AUDIT)])
    assert len(rules.rules) == 16
    assert {r.source for r in rules.rules} == {"k8s_audit"}


@pytest.mark.parametrize("rule_file", sorted(CASES))
def test_rule_fires_on_its_event_and_not_on_a_near_miss(rule_file: str, tmp_path: Path) -> None:
    positive, near_miss = CASES[rule_file]
    rule = AUDIT / rule_file
    (title,) = [r.name for r in load_rules([str(rule)]).rules]
    hits = run_detect([write_events(tmp_path / "pos.jsonl", [positive])], [rule], match="all")
    assert [a.rule for a in hits.alerts] == [title]
    misses = run_detect([write_events(tmp_path / "neg.jsonl", [near_miss])], [rule], match="all")
    assert misses.alerts == [] and misses.events == 1


def test_the_pipeline_maps_what_sigmahq_names_wrongly(tmp_path: Path) -> None:
    """apiGroup, hostPath and capabilities are not fields of an audit event: the rules work
    only through the shipped pipeline, which maps them onto real paths."""
    rules = load_rules([str(AUDIT / "kubernetes_audit_hostpath_mount.yml")])
    alert = run_detect(
        [write_events(tmp_path / "e.jsonl", [_pod])],
        [AUDIT / "kubernetes_audit_hostpath_mount.yml"],
    ).alerts[0]
    assert alert.output_fields["requestObject.spec.volumes.hostPath.path"] == ["/etc"]
    assert rules.rules[0].format == "sigma"
