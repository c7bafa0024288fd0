"""The generated audit policy: a valid audit.k8s.io/v1 Policy that logs what K05 asks for.

The policy is judged by logwarden's own posture scanner, which evaluates a policy the way
the kube-apiserver's checker does (`logwarden.posture.policy`) over the requests K05 is
about (`logwarden.posture.requests`): the scan must find nothing, every K05 request class
must end at the level intended here, no secret-bearing body may be logged, and the noise
rules must drop what they are meant to drop and nothing else (failed authentications and
writes, checked over generated requests).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from logwarden.errors import UsageError
from logwarden.generate import audit_policy, policy_rules
from logwarden.generate.audit_policy import READ_VERBS, SYSTEM_GROUPS, SYSTEM_USERS, WRITE_VERBS
from logwarden.posture import scan
from logwarden.posture.model import K8sObject
from logwarden.posture.policy import LEVELS, STAGES, Policy, Request, evaluate, read_policy
from logwarden.posture.requests import EVENT_CLASSES, LEAKS, EventClass, Leak, stages_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "generate.md"

_RULE_KEYS = {
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
}
_POLICY_KEYS = {"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"}

#: the level each K05 request class of the posture scanner ends at, for every request of it
INTENDED = {
    "authn-failure": "Metadata",
    "anonymous": "Metadata",
    "secrets-read-human": "Metadata",
    "secrets-read-sa": "Metadata",
    "token-request": "Metadata",
    "exec": "Metadata",
    "workload-change": "Request",
    "workload-delete": "Request",
    "rbac-change": "RequestResponse",
    "rbac-delete": "RequestResponse",
    "namespace-change": "RequestResponse",
    "webhook-change": "Request",
    "webhook-delete": "Request",
    "crd-change": "Request",
    "crd-delete": "Request",
    "event-delete": "Metadata",
}

HUMAN = ("alice", ("system:authenticated", "developers"))
NODE = ("system:node:node-1", ("system:nodes", "system:authenticated"))
KUBE_SYSTEM_SA = (
    "system:serviceaccount:kube-system:deployment-controller",
    ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
)
APP_SA = (
    "system:serviceaccount:default:app",
    ("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"),
)
ANONYMOUS = ("system:anonymous", ("system:unauthenticated",))
CONTROL_PLANE = [(u, ("system:authenticated",)) for u in SYSTEM_USERS]
IDENTITIES = [HUMAN, NODE, KUBE_SYSTEM_SA, APP_SA, ANONYMOUS, *CONTROL_PLANE]


def load(text: str) -> Policy:
    data = yaml.safe_load(text)
    policy = read_policy(K8sObject(data=data, kind="Policy", api_version=data["apiVersion"]))
    assert policy.errors == []
    return policy


POLICY = load(audit_policy())


def req(
    who: tuple[str, tuple[str, ...]] | None, verb: str, resource: str = "", **kw: str
) -> Request:
    user, groups = who if who is not None else (None, ())
    return Request(verb=verb, user=user, groups=groups, resource=resource, **kw)


def level(r: Request, policy: Policy = POLICY) -> str:
    return evaluate(policy, r).level


# --- shape -----------------------------------------------------------------------------


def test_policy_is_a_valid_audit_k8s_io_v1_policy() -> None:
    data = yaml.safe_load(audit_policy())
    assert data["apiVersion"] == "audit.k8s.io/v1"
    assert data["kind"] == "Policy"
    assert set(data) <= _POLICY_KEYS
    assert data["omitStages"] == ["RequestReceived"]
    assert data["omitManagedFields"] is True
    assert isinstance(data["rules"], list) and data["rules"]
    for rule in data["rules"]:
        assert set(rule) <= _RULE_KEYS, rule
        assert rule["level"] in LEVELS
        for key in ("users", "userGroups", "verbs", "namespaces", "nonResourceURLs"):
            values = rule.get(key, [])
            assert isinstance(values, list) and all(isinstance(v, str) for v in values)
        for url in rule.get("nonResourceURLs", []):
            assert url.startswith("/") and "*" not in url[:-1]
        assert not (rule.get("nonResourceURLs") and rule.get("resources"))
        for gr in rule.get("resources", []):
            assert set(gr) <= {"group", "resources", "resourceNames"}
            assert isinstance(gr["group"], str) and gr["group"] == gr["group"].lower()
        assert set(rule.get("omitStages", [])) <= set(STAGES)
    # the text says what the rules say
    expected = msgspec.json.decode(msgspec.json.encode([r.rule for r in policy_rules()]))
    assert data["rules"] == expected


def test_every_rule_says_why_in_a_comment() -> None:
    lines = audit_policy().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("  - level:")]
    assert len(starts) == len(policy_rules())
    for n, (i, rule) in enumerate(zip(starts, policy_rules(), strict=True), 1):
        comment = lines[i - 1]
        assert comment.startswith("  # "), (i, comment)
        block: list[str] = []
        j = i - 1
        while lines[j].startswith("  # "):
            block.insert(0, lines[j][4:])
            j -= 1
        assert block[0].startswith(f"{n}. {rule.name}: ")
        assert len(" ".join(block)) > 40
    assert max(len(line) for line in lines) <= 100


def test_docs_explain_every_rule() -> None:
    text = DOCS.read_text()
    for rule in policy_rules(logging_namespaces=["logging"]):
        assert re.search(rf"^#+ .*`{re.escape(rule.name)}`", text, re.M), rule.name


# --- the posture scanner's verdict -------------------------------------------------------


@pytest.mark.parametrize(
    ("namespaces", "keep_reads"),
    [((), False), ((), True), (("logging", "falco"), False)],
    ids=["default", "keep-system-reads", "logging-namespaces"],
)
def test_scan_finds_nothing_in_the_policy(
    tmp_path: Path, namespaces: tuple[str, ...], keep_reads: bool
) -> None:
    text = audit_policy(logging_namespaces=namespaces, keep_system_reads=keep_reads)
    (tmp_path / "audit-policy.yaml").write_text(text)
    result = scan([str(tmp_path)])
    assert result.inventory.rejects.count == 0
    assert len(result.inventory.of_kind("Policy")) == 1
    assert [f for f in result.findings if f.group == "audit-policy"] == []


def test_a_logging_namespace_of_kube_system_is_reported_as_a_configmap_leak(
    tmp_path: Path,
) -> None:
    # the trade-off --logging-namespace makes, shown by the scanner: ConfigMap bodies in it
    (tmp_path / "audit-policy.yaml").write_text(audit_policy(logging_namespaces=["kube-system"]))
    found = [f for f in scan([str(tmp_path)]).findings if f.group == "audit-policy"]
    assert [(f.id, f.severity) for f in found] == [("LW-POLICY-004", "medium")]
    assert found[0].message.startswith("ConfigMap bodies (create/update/patch) logged at Request")


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.id)
def test_each_k05_request_class_ends_at_the_intended_level(cls: EventClass) -> None:
    assert set(INTENDED) == {c.id for c in EVENT_CLASSES}
    for r in cls.requests:
        decision = evaluate(POLICY, r)
        assert decision.level == INTENDED[cls.id], (r, decision)
        kept = stages_of(r) - decision.omit_stages
        assert "RequestReceived" in decision.omit_stages
        assert kept & {"ResponseStarted", "ResponseComplete"}, r


@pytest.mark.parametrize("leak", LEAKS, ids=lambda leak: leak.what)
def test_no_secret_bearing_body_is_logged(leak: Leak) -> None:
    least = LEVELS.index(leak.level)
    for r in leak.requests:
        assert LEVELS.index(level(r)) < least, r
        assert level(r) == "Metadata", r


def test_secrets_configmaps_and_tokens_are_metadata_for_everyone() -> None:
    for who in IDENTITIES:
        for verb in (*READ_VERBS, *WRITE_VERBS):
            assert level(req(who, verb, "secrets", namespace="kube-system")) == "Metadata"
            assert level(req(who, verb, "configmaps", namespace="default")) == "Metadata"
        token = req(who, "create", "serviceaccounts", subresource="token", namespace="a")
        assert level(token) == "Metadata"
        review = req(who, "create", "tokenreviews", group="authentication.k8s.io")
        assert level(review) == "Metadata"


def test_exec_attach_port_forward_and_proxies_are_logged_for_everyone() -> None:
    for who in IDENTITIES:
        for verb in ("create", "get"):
            for sub in ("exec", "attach", "portforward", "proxy"):
                assert level(req(who, verb, "pods", subresource=sub, namespace="a")) == "Metadata"
            assert level(req(who, verb, "nodes", subresource="proxy", name="n")) == "Metadata"
            assert level(req(who, verb, "services", subresource="proxy", namespace="a")) == (
                "Metadata"
            )


def test_workloads_changes_carry_their_body_even_from_system_identities() -> None:
    for who in IDENTITIES:
        assert level(req(who, "create", "pods", namespace="kube-system")) == "Request"
        assert level(req(who, "patch", "deployments", group="apps", name="d")) == "Request"
        ephemeral = req(who, "patch", "pods", subresource="ephemeralcontainers", name="p")
        assert level(ephemeral) == "Request"
        assert level(req(who, "update", "cronjobs", group="batch", name="c")) == "Request"
        binding = req(who, "create", "clusterrolebindings", group="rbac.authorization.k8s.io")
        assert level(binding) == "RequestResponse"
        csr = req(who, "update", "certificatesigningrequests", group="certificates.k8s.io")
        assert level(csr) == "Request"


# --- noise: dropped, and only noise --------------------------------------------------------


def test_noisy_system_reads_and_probes_are_dropped() -> None:
    proxy = (SYSTEM_USERS[0], ("system:authenticated",))
    assert proxy[0] == "system:kube-proxy"
    assert level(req(proxy, "watch", "endpoints")) == "None"
    assert level(req(proxy, "list", "endpointslices", group="discovery.k8s.io")) == "None"
    assert level(req(NODE, "get", "nodes", name="node-1")) == "None"
    assert level(req(NODE, "watch", "pods")) == "None"
    assert level(req(KUBE_SYSTEM_SA, "list", "replicasets", group="apps")) == "None"
    kcm = ("system:kube-controller-manager", ("system:authenticated",))
    assert level(req(kcm, "watch", "deployments", group="apps")) == "None"
    for who in (HUMAN, ANONYMOUS, NODE):
        assert level(req(who, "get", path="/healthz")) == "None"
        assert level(req(who, "get", path="/readyz/etcd")) == "None"
        assert level(req(who, "get", path="/livez")) == "None"
    for path in ("/api", "/api/v1", "/apis", "/apis/apps/v1", "/openapi/v2", "/version"):
        assert level(req(HUMAN, "get", path=path)) == "None"
    assert level(req(NODE, "create", "events", namespace="a")) == "None"
    assert level(req(kcm, "patch", "events", group="events.k8s.io")) == "None"


def test_what_the_noise_rules_must_not_hide() -> None:
    # anonymous discovery is reconnaissance; failed authentication of a probe is an attack
    assert level(req(ANONYMOUS, "get", path="/version")) == "Metadata"
    assert level(req(ANONYMOUS, "get", path="/apis")) == "Metadata"
    assert level(req(None, "get", path="/healthz")) == "Metadata"
    assert level(req(None, "get", path="/version")) == "Metadata"
    # a system identity's writes and sensitive reads
    assert level(req(NODE, "get", "secrets", namespace="a", name="s")) == "Metadata"
    assert level(req(KUBE_SYSTEM_SA, "delete", "pods", namespace="a", name="p")) == "Request"
    assert level(req(NODE, "delete", "events", namespace="a")) == "Metadata"
    assert level(req(HUMAN, "create", "events", namespace="a")) == "Metadata"
    # high-volume writes are kept, without their body
    assert level(req(NODE, "patch", "pods", subresource="status", name="p")) == "Metadata"
    assert level(req(NODE, "update", "leases", group="coordination.k8s.io", name="n")) == (
        "Metadata"
    )
    # an unlisted read by a person or a workload
    assert level(req(APP_SA, "list", "pods", namespace="default")) == "Metadata"
    assert level(req(HUMAN, "get", "widgets", group="example.com", name="w")) == "Metadata"


def test_none_rules_name_who_they_drop_and_drop_only_reads_or_events() -> None:
    for commented in policy_rules():
        rule = commented.rule
        if rule.level != "None":
            continue
        # a failed authentication has no user and no group: it never matches these
        assert rule.users or rule.user_groups, commented.name
        events_only = rule.resources and all(gr.resources == ("events",) for gr in rule.resources)
        assert set(rule.verbs) <= set(READ_VERBS) or (
            events_only and set(rule.verbs) <= {"create", "update", "patch"}
        ), commented.name


_RESOURCES = [
    ("", "pods", ""),
    ("", "pods", "exec"),
    ("", "pods", "log"),
    ("", "secrets", ""),
    ("", "configmaps", ""),
    ("", "nodes", "proxy"),
    ("", "services", ""),
    ("", "serviceaccounts", "token"),
    ("", "events", ""),
    ("", "namespaces", ""),
    ("apps", "deployments", "scale"),
    ("batch", "jobs", "status"),
    ("rbac.authorization.k8s.io", "clusterroles", ""),
    ("coordination.k8s.io", "leases", ""),
    ("events.k8s.io", "events", ""),
    ("example.com", "widgets", ""),
]
_PATHS = ["/healthz", "/livez", "/readyz", "/version", "/api", "/apis/apps/v1", "/metrics", "/x"]
_SYSTEM_EVENT_WRITERS = set(SYSTEM_USERS)


@st.composite
def requests(draw: st.DrawFn, *, who: Sequence[tuple[str, tuple[str, ...]] | None]) -> Request:
    ident = draw(st.sampled_from(who))
    verb = draw(st.sampled_from([*READ_VERBS, *WRITE_VERBS]))
    if draw(st.booleans()):
        return req(ident, verb, path=draw(st.sampled_from(_PATHS)))
    group, resource, sub = draw(st.sampled_from(_RESOURCES))
    ns = draw(st.sampled_from(["", "default", "kube-system"]))
    return req(ident, verb, resource, group=group, subresource=sub, namespace=ns, name="x")


@settings(max_examples=400, deadline=None)
@given(requests(who=[None]))
def test_failed_authentication_is_always_logged(r: Request) -> None:
    decision = evaluate(POLICY, r)
    assert decision.level != "None"
    assert stages_of(r) - decision.omit_stages == {"ResponseStarted"}


@settings(max_examples=600, deadline=None)
@given(requests(who=IDENTITIES))
def test_no_write_is_dropped_except_system_components_events(r: Request) -> None:
    if r.verb not in WRITE_VERBS:
        return
    system = r.user in _SYSTEM_EVENT_WRITERS or bool(set(r.groups) & set(SYSTEM_GROUPS))
    if system and r.resource == "events" and r.verb in ("create", "update", "patch"):
        assert level(r) == "None"
    else:
        assert level(r) != "None", r


# --- options -----------------------------------------------------------------------------


def test_logging_namespaces_log_configmap_changes_with_their_body() -> None:
    policy = load(audit_policy(logging_namespaces=["logging"]))
    assert level(req(HUMAN, "patch", "configmaps", namespace="logging"), policy) == "Request"
    assert level(req(HUMAN, "get", "configmaps", namespace="logging"), policy) == "Metadata"
    assert level(req(HUMAN, "patch", "configmaps", namespace="default"), policy) == "Metadata"
    assert level(req(HUMAN, "patch", "secrets", namespace="logging"), policy) == "Metadata"


def test_namespace_names_yaml_would_misread_are_quoted() -> None:
    names = ["y", "n", "no", "on", "true", "123", "1e3", "0x1f", "null"]
    text = audit_policy(logging_namespaces=names)
    (rule,) = [r for r in yaml.safe_load(text)["rules"] if "namespaces" in r]
    assert rule["namespaces"] == names
    for name in names:
        assert f'"{name}"' in text


@pytest.mark.parametrize("bad", ["", "Logging", "-logging", "a" * 64, "kube_system", "a b"])
def test_logging_namespace_must_be_a_namespace_name(bad: str) -> None:
    with pytest.raises(UsageError, match="--logging-namespace"):
        audit_policy(logging_namespaces=[bad])


def test_keep_system_reads_logs_them_at_metadata() -> None:
    policy = load(audit_policy(keep_system_reads=True))
    proxy = ("system:kube-proxy", ("system:authenticated",))
    assert level(req(proxy, "watch", "endpoints"), policy) == "Metadata"
    assert level(req(NODE, "get", "nodes", name="node-1"), policy) == "Metadata"
    assert len(policy.rules) == len(POLICY.rules) - 2
