"""logwarden's own K05 rule pack: complete metadata, and every rule passes its tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from logwarden.detect.rulesets import builtin_path, load_rules
from logwarden.detect.ruletests import run_rule_tests

PACK = Path(builtin_path("builtin"))
FILES = sorted(PACK.rglob("k05_*.yml"))

# what the pack must cover (issue 3), by rule name
REQUIRED = {
    "k05_failed_authentication_burst",  # bursts of 401 by source IP
    "k05_authorization_failure_burst",  # bursts of 403 by user
    "k05_secret_read_by_human",
    "k05_secret_enumeration_across_namespaces",
    "k05_exec_attach_portforward",
    "k05_workload_changed_by_human",
    "k05_rbac_changed_by_human",
    "k05_namespace_changed_by_human",
    "k05_binding_to_cluster_admin",
    "k05_binding_to_anonymous",  # grants to system:anonymous / system:unauthenticated
    "k05_wildcard_role",
    "k05_rbac_escalation_verbs",
    "k05_anonymous_allowed",
    "k05_impersonation",
    "k05_events_deleted",
    "k05_logging_workload_deleted",
    "k05_logging_workload_scaled_to_zero",
    "k05_logging_config_changed",
    "k05_logging_access_removed",
    # Kubernetes Events
    "k05_event_backoff_storm",  # CrashLoopBackOff / image pull back-off per namespace
    "k05_event_secret_mount_failed",
    "k05_event_admission_denied",
    "k05_event_oom_killed",
    "k05_event_node_not_ready",
    "k05_event_pod_security_violation",
    "k05_event_pod_evicted",
    # container logs
    "k05_container_fatal_log",
    "k05_container_error_burst",  # error lines per pod
    # journald on nodes
    "k05_node_ssh_failed_password_burst",  # per node (the address is in the message text)
    "k05_node_su_sudo_failure",
    "k05_node_runtime_error",
    "k05_node_runtime_restarted",
    "k05_node_logging_stopped",
    # web access logs (ingress-nginx, nginx, Envoy)
    "k05_web_client_error_burst",  # 4xx per client
    "k05_web_server_error_burst",  # 5xx per client
    # Cilium Hubble flows
    "k05_hubble_policy_drop",
    "k05_hubble_drop_burst",  # drops per pod
    "k05_hubble_egress_unusual_port",
    "k05_hubble_egress_destinations_burst",  # distinct outside addresses per namespace
}


def test_the_pack_covers_k05() -> None:
    names = {yaml.safe_load(p.read_text())["name"] for p in FILES}
    assert names >= REQUIRED


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_rule_has_complete_metadata(path: Path) -> None:
    rule = yaml.safe_load(path.read_text())
    for key in ("title", "id", "name", "description", "level", "tags", "references"):
        assert rule.get(key), key
    assert any(t.startswith("attack.t") for t in rule["tags"]), "a MITRE ATT&CK technique"
    assert rule["level"] in {"informational", "low", "medium", "high", "critical"}
    if "correlation" not in rule:
        assert rule.get("falsepositives"), "false-positive notes"


def test_every_rule_passes_its_positive_and_negative_tests() -> None:
    results = run_rule_tests([str(PACK)], require=True)
    assert len(results) == 2 * len(FILES)
    failed = [f"{r.rule_file} {r.kind}: {r.detail}" for r in results if not r.passed]
    assert not failed


def test_the_pack_is_the_default_and_loads_with_falco_and_sigma() -> None:
    rules = load_rules(["builtin", "falco", "sigma"])
    formats = {r.format for r in rules.rules}
    assert formats == {"falco", "sigma"}
    assert len(rules.correlations) == 10
    # one name per rule and source (a web rule is compiled once per access log source)
    assert len({(r.source, r.name) for r in rules.rules}) == len(rules.rules)


def test_docs_describe_every_rule_of_the_pack() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text()
    for path in FILES:
        rule = yaml.safe_load(path.read_text())
        assert f"`{rule['name']}` | {rule['title']} | {rule['level']} |" in doc, rule["name"]
