"""The three reference audit policies get the verdicts they deserve (scan's audit-policy group).

Verdicts, derived by hand from each file and the apiserver's checker:

* GCE configure-helper policy: rule 10 logs no core `events` (level None), so Event
  deletions through the core API are not audited at all (high); everything else that
  K05 asks for is logged, bodies of workloads and RBAC at RequestResponse; secrets,
  configmaps, serviceaccounts/token and tokenreviews stay at Metadata (no leak).
  (Deletions through events.k8s.io fall to the last rule and are logged at Metadata.)
* the docs' minimal policy: one rule, everything at Metadata. Nothing is dropped and no
  body is logged, so there are no "not logged" and no leak findings; the classes that
  need a body to be judged (workload, RBAC, webhook and CRD changes) are below level.
* the docs' example policy: logs everything (catch-all Metadata), but the body of
  ConfigMap changes in kube-system at Request (rule 4: a leak, medium), and apps/*,
  RBAC, webhooks and CRDs only at Metadata (below level).
"""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES
from logwarden.posture import scan
from logwarden.posture.checks import audit_policy
from logwarden.posture.inputs import collect
from logwarden.posture.model import Inventory
from logwarden.posture.policy import Request, evaluate, read_policy
from logwarden.records import Finding

POLICIES = FIXTURES / "posture" / "policies"


def findings(name: str) -> list[Finding]:
    return [f for f in scan([str(POLICIES / name)]).findings if f.group == "audit-policy"]


def load(name: str):  # type: ignore[no-untyped-def]
    inv = collect([str(POLICIES / name)], Inventory())
    (obj,) = inv.of_kind("Policy")
    return read_policy(obj)


def classes(found: list[Finding], check_id: str) -> set[str]:
    return {f.message.split("[", 1)[1].split("]", 1)[0] for f in found if f.id == check_id}


def test_gce_policy_drops_all_core_event_deletions() -> None:
    found = findings("gce-configure-helper-audit-policy.yaml")
    assert classes(found, "LW-POLICY-001") == {"event-delete"}
    (dropped,) = [f for f in found if f.id == "LW-POLICY-001"]
    assert dropped.severity == "high"
    assert dropped.line == 78  # the `- level: None` rule for core events
    assert "decided by rule 10 (level None)" in dropped.message
    assert not [f for f in found if f.id in ("LW-POLICY-002", "LW-POLICY-003", "LW-POLICY-004")]
    policy = load("gce-configure-helper-audit-policy.yaml")
    for verb in ("delete", "deletecollection", "create", "get"):
        core = Request(verb=verb, user="alice", groups=("g",), resource="events", namespace="a")
        assert evaluate(policy, core).level == "None"
    new_api = Request(
        verb="delete", user="alice", groups=("g",), resource="events", group="events.k8s.io"
    )
    assert evaluate(policy, new_api).level == "Metadata"
    # custom resources of groups it does not list: Metadata only
    cr = Request(verb="create", user="alice", groups=("g",), resource="widgets", group="x.io")
    assert evaluate(policy, cr).level == "Metadata"


def test_minimal_policy_logs_everything_at_metadata() -> None:
    found = findings("k8s-docs-minimal-audit-policy.yaml")
    assert classes(found, "LW-POLICY-001") == set()
    assert not [f for f in found if f.id in ("LW-POLICY-003", "LW-POLICY-004")]
    assert classes(found, "LW-POLICY-002") == {
        "workload-change",
        "rbac-change",
        "webhook-change",
        "crd-change",
    }
    assert all("logged at Metadata, needs Request" in f.message for f in found)
    policy = load("k8s-docs-minimal-audit-policy.yaml")
    for r in (
        Request(verb="get", path="/api"),  # failed authentication
        Request(verb="get", user="system:anonymous", groups=("system:unauthenticated",), path="/"),
        Request(verb="create", user="u", groups=(), resource="secrets", namespace="a"),
        Request(verb="delete", user="u", groups=(), resource="events", namespace="a", name="e"),
    ):
        d = evaluate(policy, r)
        assert d.level == "Metadata" and d.omit_stages == frozenset()


def test_docs_policy_leaks_kube_system_configmaps_and_misses_bodies() -> None:
    found = findings("k8s-docs-audit-policy.yaml")
    assert classes(found, "LW-POLICY-001") == set()
    (leak,) = [f for f in found if f.id == "LW-POLICY-004"]
    assert leak.severity == "medium"
    assert leak.message.startswith("ConfigMap bodies (create/update/patch) logged at Request")
    assert "in kube-system" in leak.message and leak.line == 46
    assert classes(found, "LW-POLICY-002") == {
        "workload-change",
        "rbac-change",
        "webhook-change",
        "crd-change",
    }
    (workloads,) = [f for f in found if "[workload-change]" in f.message]
    # core pods are at RequestResponse (rule 1); apps and batch fall to the catch-all
    assert "alice create deployments.apps in default" in workloads.message
    assert "pods" not in workloads.message.split("needs Request:")[1].split(";")[0]


def test_every_reference_policy_is_valid(tmp_path: Path) -> None:
    for name in sorted(p.name for p in POLICIES.glob("*.yaml")):
        assert not load(name).errors, name
    # and the same file with a typo is refused, with the line of the bad field
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (POLICIES / "k8s-docs-minimal-audit-policy.yaml")
        .read_text()
        .replace("level: Metadata", "level: Metadate")
    )
    (invalid,) = [f for f in scan([str(bad)]).findings if f.group == "audit-policy"]
    assert invalid.id == "LW-POLICY-005" and invalid.line == 8
    assert invalid.message == "rules[0].level: Unsupported value: 'Metadate'"
    assert audit_policy.INVALID.severity == "high"
