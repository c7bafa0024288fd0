"""The audit policy evaluator against crafted policies, one per case of the apiserver's checker.

Each case is a small policy and requests whose outcome follows from
k8s.io/apiserver/pkg/audit/policy/checker.go (first match wins; users, userGroups, verbs,
resources with group/subresource/resourceNames, namespaces, nonResourceURLs with
wildcards, omitStages and omitManagedFields) and from its validation.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from logwarden.posture import scan
from logwarden.posture.checks.audit_policy import leaked
from logwarden.posture.model import K8sObject
from logwarden.posture.policy import Policy, Request, evaluate, read_policy
from logwarden.posture.requests import Leak
from logwarden.records import Finding

ALICE = ("alice", ("system:authenticated", "dev"))


def policy(text: str) -> Policy:
    data = yaml.safe_load(textwrap.dedent(text))
    obj = K8sObject(data=data, kind="Policy", api_version=data.get("apiVersion", ""))
    p = read_policy(obj)
    assert not p.errors, p.errors
    return p


def req(verb: str, resource: str = "", **kw: str) -> Request:
    user = kw.pop("user", ALICE[0])
    groups = tuple(kw.pop("groups", ",".join(ALICE[1])).split(",")) if user else ()
    return Request(verb=verb, user=user or None, groups=groups, resource=resource, **kw)


def level(p: Policy, r: Request) -> str:
    return evaluate(p, r).level


def test_first_matching_rule_wins_and_no_match_is_none() -> None:
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: None
          resources: [{group: "", resources: [secrets]}]
        - level: RequestResponse
          resources: [{group: ""}]
        """)
    assert level(p, req("get", "secrets", namespace="a", name="s")) == "None"
    assert level(p, req("get", "pods", namespace="a", name="p")) == "RequestResponse"
    decision = evaluate(p, req("get", "deployments", group="apps", namespace="a"))
    assert decision.level == "None" and decision.rule is None


def test_users_and_groups_and_failed_authentication() -> None:
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: None
          users: [system:kube-proxy]
        - level: Request
          userGroups: [system:serviceaccounts]
        - level: Metadata
        """)
    assert level(p, req("watch", "endpoints", user="system:kube-proxy", groups="x")) == "None"
    sa = req("get", "pods", user="system:serviceaccount:a:b", groups="system:serviceaccounts")
    assert level(p, sa) == "Request"
    assert level(p, req("get", "pods")) == "Metadata"
    # a failed authentication has no user: neither users nor userGroups rules match it
    assert level(p, Request(verb="get", resource="pods", namespace="a")) == "Metadata"


def test_verbs() -> None:
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: None
          verbs: [get, list, watch]
        - level: Request
        """)
    assert level(p, req("list", "pods")) == "None"
    assert level(p, req("delete", "pods", name="x")) == "Request"


def test_subresources_and_wildcards() -> None:
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: RequestResponse
          resources: [{group: "", resources: [pods]}]
        - level: Request
          resources: [{group: "", resources: ["*/exec"]}]
        - level: Metadata
          resources: [{group: "", resources: ["deployments/*"]}]
        - level: None
        """)
    # "pods" does not match pods/exec (as in RBAC)
    assert level(p, req("create", "pods", namespace="a")) == "RequestResponse"
    assert level(p, req("create", "pods", subresource="exec", name="x")) == "Request"
    assert level(p, req("create", "pods", subresource="attach", name="x")) == "None"
    # "resource/*" matches the resource itself and every subresource
    assert level(p, req("get", "deployments", name="d")) == "Metadata"
    assert level(p, req("update", "deployments", subresource="scale", name="d")) == "Metadata"
    p2 = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: Request
          resources: [{group: apps, resources: ["*"]}]
        """)
    assert level(p2, req("patch", "deployments", group="apps", subresource="status")) == "Request"
    assert level(p2, req("patch", "pods", subresource="status")) == "None"


def test_groups_must_match_exactly_and_empty_resources_mean_the_whole_group() -> None:
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: Request
          resources: [{group: "rbac.authorization.k8s.io"}]
        """)
    assert level(p, req("create", "roles", group="rbac.authorization.k8s.io")) == "Request"
    assert level(p, req("create", "roles", group="")) == "None"


def test_resource_names() -> None:
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: None
          resources: [{group: "", resources: [configmaps], resourceNames: [controller-leader]}]
        - level: Metadata
        """)
    assert level(p, req("update", "configmaps", name="controller-leader")) == "None"
    assert level(p, req("update", "configmaps", name="app-config")) == "Metadata"
    # a list has no name: resourceNames never match it
    assert level(p, req("list", "configmaps")) == "Metadata"


def test_namespaces_and_cluster_scope() -> None:
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: Request
          namespaces: [kube-system]
        - level: RequestResponse
          namespaces: [""]
        - level: Metadata
        """)
    assert level(p, req("get", "pods", namespace="kube-system", name="x")) == "Request"
    assert level(p, req("get", "nodes", name="n")) == "RequestResponse"  # cluster-scoped: ""
    assert level(p, req("get", "pods", namespace="default", name="x")) == "Metadata"
    # namespaces make it a resource rule: non-resource requests never match it
    assert level(p, req("get", path="/healthz")) == "Metadata"


def test_non_resource_urls_with_wildcards() -> None:
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: None
          nonResourceURLs: ["/healthz*", /version]
        - level: Request
          nonResourceURLs: ["*"]
        - level: Metadata
        """)
    assert level(p, req("get", path="/healthz")) == "None"
    assert level(p, req("get", path="/healthz/etcd")) == "None"
    assert level(p, req("get", path="/version")) == "None"
    assert level(p, req("get", path="/version/")) == "Request"  # exact, no wildcard
    assert level(p, req("get", path="/api")) == "Request"
    # non-resource rules never match resource requests
    assert level(p, req("get", "pods", name="x")) == "Metadata"


def test_omit_stages_are_the_union_of_policy_and_rule() -> None:
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [RequestReceived]
        rules:
        - level: Metadata
          verbs: [watch]
          omitStages: [ResponseStarted]
        - level: Metadata
        """)
    watch = evaluate(p, req("watch", "pods"))
    assert watch.omit_stages == frozenset({"RequestReceived", "ResponseStarted"})
    assert evaluate(p, req("get", "pods", name="x")).omit_stages == frozenset({"RequestReceived"})
    p2 = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitStages: [ResponseComplete]
        rules:
        - level: Metadata
          verbs: [get]
        """)
    # no rule matches: level None with the policy's own stages
    nothing = evaluate(p2, req("list", "pods"))
    assert nothing.level == "None" and nothing.omit_stages == frozenset({"ResponseComplete"})


def test_omit_managed_fields_rule_overrides_policy() -> None:
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        omitManagedFields: true
        rules:
        - level: Request
          verbs: [update]
          omitManagedFields: false
        - level: Request
        """)
    assert evaluate(p, req("update", "pods", name="x")).omit_managed_fields is False
    assert evaluate(p, req("patch", "pods", name="x")).omit_managed_fields is True
    assert evaluate(p, req("nosuchverb", "pods")).omit_managed_fields is True


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("- level: Verbose", "Unsupported value: 'Verbose'"),
        ("- resources: [{group: ''}]", "Required value"),
        ("- level: None\n  nonResourceURLs: [healthz]", "must begin with a '/' character"),
        ("- level: None\n  nonResourceURLs: ['/a*b']", "'*' must be the final character"),
        (
            "- level: None\n  nonResourceURLs: [/a]\n  namespaces: [x]",
            "both regular resources and non-resource URLs",
        ),
        (
            "- level: None\n  resources: [{group: '', resourceNames: [x]}]",
            "using resourceNames requires at least one resource",
        ),
        ("- level: None\n  omitStages: [Done]", "allowed stages are"),
        ("- level: None\n  resources: [{group: 'apps/v1'}]", "lowercase RFC 1123 subdomain"),
        # validateResources: validation.NameIsDNSSubdomain(groupResource.Group, false)
        ("- level: None\n  resources: [{group: '*'}]", "'*': must be a lowercase RFC 1123"),
        (
            "- level: None\n  resources: [{group: rbac_authorization.k8s.io}]",
            "'rbac_authorization.k8s.io': must be a lowercase RFC 1123 subdomain",
        ),
        ("- level: None\n  resources: [{group: 'apps.'}]", "'apps.': must be a lowercase RFC 1123"),
        ("- level: None\n  resources: [{group: '-apps'}]", "must be a lowercase RFC 1123"),
        (f"- level: None\n  resources: [{{group: {'a' * 254}}}]", "RFC 1123"),  # > 253
        # fields of the wrong type: the apiserver fails to decode the policy
        ("- level: None\n  resources: [{group: 1}]", "must be a string, not number"),
        (
            "- level: None\n  omitManagedFields: 'false'",
            "must be a boolean (true or false), not string 'false'",
        ),
        ("- level: None\n  omitManagedFields: 0", "must be a boolean (true or false), not number"),
    ],
)
def test_invalid_policies_are_rejected_like_the_apiserver(rules: str, message: str) -> None:
    text = f"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n{rules}\n"
    data = yaml.safe_load(text)
    p = read_policy(K8sObject(data=data, kind="Policy", api_version="audit.k8s.io/v1"))
    assert any(message in reason for _, reason in p.errors), p.errors


@pytest.mark.parametrize(
    ("rules", "path"),
    [
        ("- level: None\n  resources: [{group: '*'}]", ("rules", 0, "resources", 0, "group")),
        ("- level: None\n  resources: [{group: 1}]", ("rules", 0, "resources", 0, "group")),
        ("- level: None\n  omitManagedFields: 'no'", ("rules", 0, "omitManagedFields")),
    ],
)
def test_invalid_fields_are_named_by_their_path(rules: str, path: tuple[str | int, ...]) -> None:
    data = yaml.safe_load(f"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n{rules}\n")
    p = read_policy(K8sObject(data=data, kind="Policy", api_version="audit.k8s.io/v1"))
    assert [where for where, _ in p.errors] == [path]


def test_valid_groups_are_accepted() -> None:
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: None
          resources: [{group: ""}, {group: apps}, {group: rbac.authorization.k8s.io}]
        - level: None
          resources: [{group: x-1.example.io}]
        - level: None
          resources: [{group: null}]
        """)
    assert len(p.rules) == 3


def test_policy_level_omit_managed_fields_must_be_a_boolean() -> None:
    data = yaml.safe_load(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: 'false'\n"
        "rules:\n- level: Metadata\n"
    )
    p = read_policy(K8sObject(data=data, kind="Policy", api_version="audit.k8s.io/v1"))
    assert p.errors == [
        (("omitManagedFields",), "must be a boolean (true or false), not string 'false'")
    ]
    assert p.omit_managed_fields is False


def test_policy_without_rules_and_unknown_version_are_rejected() -> None:
    empty = read_policy(K8sObject(data={"rules": []}, kind="Policy", api_version="audit.k8s.io/v2"))
    reasons = [r for _, r in empty.errors]
    assert "loaded illegal policy with 0 rules" in reasons
    assert any("unknown group version" in r for r in reasons)


# A policy that logs every K05 event class at the level it needs and keeps secret-bearing
# bodies out; each case below puts one rule in front of it (or changes its stages) and
# names the classes the scan must then report, and under which check.
GOOD = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: {omit}
rules:
{first}- level: Metadata
  resources:
  - group: ""
    resources: [secrets, configmaps, serviceaccounts/token]
  - group: authentication.k8s.io
    resources: [tokenreviews]
- level: Request
"""
_NONE_FOR = "- level: None\n  resources: [{{group: {group}, resources: [{res}]}}]\n"


def scan_policy(tmp_path: Path, first: str = "", omit: str = "[RequestReceived]") -> list[Finding]:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD.format(first=first, omit=omit))
    result = scan([str(path)])
    assert result.inventory.rejects.count == 0
    return [f for f in result.findings if f.group == "audit-policy"]


def by_check(found: list[Finding]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in found:
        if f.id == "LW-POLICY-004":  # "Secret bodies (...) logged at ...": what leaks
            name = f.message.split(" logged at", 1)[0]
        else:  # "secrets read by a person [secrets-read-human] not logged: ...": the class
            name = f.message.split("[", 1)[1].split("]", 1)[0]
        out.setdefault(f.id, set()).add(name)
    return out


def test_the_good_policy_has_no_findings(tmp_path: Path) -> None:
    assert scan_policy(tmp_path) == []


@pytest.mark.parametrize(
    ("first", "omit", "expected"),
    [
        pytest.param(
            "",
            "[RequestReceived, ResponseStarted]",
            {"LW-POLICY-001": {"authn-failure"}},
            id="failed-authentication-only-emits-ResponseStarted",
        ),
        pytest.param(
            "- level: None\n  users: [system:anonymous]\n",
            "[RequestReceived]",
            {"LW-POLICY-001": {"anonymous"}},
            id="anonymous",
        ),
        pytest.param(
            # people's secret reads dropped; the None rule has no users, so it also drops
            # the anonymous list and the unauthenticated get of a secret (first match wins)
            "- level: Metadata\n  userGroups: [system:serviceaccounts]\n"
            "  resources: [{group: '', resources: [secrets]}]\n"
            + _NONE_FOR.format(group="''", res="secrets"),
            "[RequestReceived]",
            {"LW-POLICY-001": {"secrets-read-human", "anonymous", "authn-failure"}},
            id="secrets-read-by-people",
        ),
        pytest.param(
            "- level: None\n  userGroups: [system:serviceaccounts]\n"
            "  resources: [{group: '', resources: [secrets]}]\n",
            "[RequestReceived]",
            {"LW-POLICY-001": {"secrets-read-sa"}},
            id="secrets-read-by-service-accounts",
        ),
        pytest.param(
            _NONE_FOR.format(group="''", res="serviceaccounts/token"),
            "[RequestReceived]",
            {"LW-POLICY-001": {"token-request"}},
            id="token-request",
        ),
        pytest.param(
            _NONE_FOR.format(group="''", res="pods/exec, pods/attach, pods/portforward"),
            "[RequestReceived]",
            {"LW-POLICY-001": {"exec"}},
            id="exec-attach-portforward",
        ),
        pytest.param(
            "- level: None\n  verbs: [delete]\n  resources: [{group: apps}, {group: batch}]\n",
            "[RequestReceived]",
            {"LW-POLICY-001": {"workload-delete"}},
            id="workload-deletions",
        ),
        pytest.param(
            "- level: Metadata\n  resources: [{group: apps}]\n",
            "[RequestReceived]",
            {"LW-POLICY-002": {"workload-change"}},
            id="workload-changes-without-body",
        ),
        pytest.param(
            "- level: None\n  resources: [{group: rbac.authorization.k8s.io}]\n",
            "[RequestReceived]",
            {"LW-POLICY-001": {"rbac-change", "rbac-delete"}},
            id="rbac",
        ),
        pytest.param(
            _NONE_FOR.format(group="''", res="namespaces"),
            "[RequestReceived]",
            {"LW-POLICY-001": {"namespace-change"}},
            id="namespaces",
        ),
        pytest.param(
            # /api/v1/namespaces/x is in namespace x (the apiserver's RequestInfo), so a
            # cluster-scope rule never matches a request about an existing namespace
            "- level: None\n  verbs: [update, patch, delete]\n  namespaces: ['']\n"
            "  resources: [{group: '', resources: [namespaces]}]\n",
            "[RequestReceived]",
            {},
            id="namespace-requests-carry-their-own-name-as-namespace",
        ),
        pytest.param(
            "- level: None\n  resources: [{group: admissionregistration.k8s.io}]\n",
            "[RequestReceived]",
            {"LW-POLICY-001": {"webhook-change", "webhook-delete"}},
            id="webhooks",
        ),
        pytest.param(
            "- level: None\n  resources: [{group: apiextensions.k8s.io}]\n",
            "[RequestReceived]",
            {"LW-POLICY-001": {"crd-change", "crd-delete"}},
            id="crds",
        ),
        pytest.param(
            "- level: None\n  resources: [{group: events.k8s.io}]\n",
            "[RequestReceived]",
            {"LW-POLICY-001": {"event-delete"}},
            id="event-deletions-through-events.k8s.io",
        ),
        pytest.param(
            "- level: Metadata\n  omitStages: [ResponseStarted, ResponseComplete]\n"
            "  resources: [{group: '', resources: [pods/exec, pods/attach, pods/portforward]}]\n",
            "[]",
            {"LW-POLICY-003": {"exec"}},
            id="exec-without-outcome",
        ),
        pytest.param(
            "- level: RequestResponse\n  resources: [{group: '', resources: [secrets]}]\n",
            "[RequestReceived]",
            {
                "LW-POLICY-004": {
                    "Secret bodies (create/update/patch)",
                    "Secret bodies (get/list/deletecollection responses)",
                }
            },
            id="secret-bodies-leak",
        ),
        pytest.param(
            # handlers/watch.go streams events and never logs a response body
            "- level: RequestResponse\n  verbs: [watch]\n"
            "  resources: [{group: '', resources: [secrets, configmaps]}]\n",
            "[RequestReceived]",
            {},
            id="watch-responses-hold-no-body",
        ),
        pytest.param(
            # Store.DeleteCollection returns the deleted objects, logged as the response
            "- level: RequestResponse\n  verbs: [deletecollection]\n"
            "  resources: [{group: '', resources: [secrets, configmaps]}]\n",
            "[RequestReceived]",
            {
                "LW-POLICY-004": {
                    "Secret bodies (get/list/deletecollection responses)",
                    "ConfigMap bodies (get/list/deletecollection responses)",
                }
            },
            id="deletecollection-responses-leak",
        ),
        pytest.param(
            # a single delete returns a Status, not the object
            "- level: RequestResponse\n  verbs: [delete]\n"
            "  resources: [{group: '', resources: [secrets, configmaps]}]\n",
            "[RequestReceived]",
            {},
            id="delete-response-is-a-status",
        ),
        pytest.param(
            "- level: Request\n  resources: [{group: authentication.k8s.io}]\n",
            "[RequestReceived]",
            {"LW-POLICY-004": {"TokenReview bodies (the bearer token under review)"}},
            id="tokenreview-bodies-leak",
        ),
        pytest.param(
            # bodies are attached after RequestReceived: a rule that keeps only that stage
            # leaks nothing (but loses the outcome)
            "- level: RequestResponse\n  omitStages: [ResponseStarted, ResponseComplete]\n"
            "  verbs: [create, update, patch]\n"
            "  resources: [{group: '', resources: [secrets]}]\n",
            "[]",
            {},
            id="request-received-holds-no-body",
        ),
    ],
)
def test_each_simulation_case_is_reported_as_what_it_is(
    tmp_path: Path, first: str, omit: str, expected: dict[str, set[str]]
) -> None:
    assert by_check(scan_policy(tmp_path, first, omit)) == expected


def test_response_started_of_a_long_running_request_holds_no_response_body() -> None:
    # ResponseStarted is written before the response: only ResponseComplete has its body
    p = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: RequestResponse
          omitStages: [ResponseComplete]
        """)
    watch = Request("watch", "alice", ("system:authenticated",), "secrets", namespace="a")
    assert leaked(p, Leak("watch", "high", "RequestResponse", (watch,))) == []
    get = Request("get", "alice", ("system:authenticated",), "secrets", namespace="a", name="s")
    assert leaked(p, Leak("get", "high", "RequestResponse", (get,))) == []
    full = policy("""
        apiVersion: audit.k8s.io/v1
        kind: Policy
        rules:
        - level: RequestResponse
        """)
    assert [r for r, _ in leaked(full, Leak("get", "high", "RequestResponse", (get,)))] == [get]


def test_v1beta1_is_simulated_but_reported_as_refused_by_1_24(tmp_path: Path) -> None:
    # reader.go registers only audit.k8s.io/v1 since kubernetes PR #108092 (1.24)
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD.format(first="", omit="[RequestReceived]").replace("/v1\n", "/v1beta1\n"))
    found = [f for f in scan([str(path)]).findings if f.group == "audit-policy"]
    (removed,) = found  # otherwise the GOOD policy: simulated, no other finding
    assert (removed.id, removed.severity, removed.line) == ("LW-POLICY-006", "high", 1)
    assert "audit.k8s.io/v1beta1" in removed.message and "1.24" in removed.message
    assert scan_policy(tmp_path) == []  # the same policy in v1
