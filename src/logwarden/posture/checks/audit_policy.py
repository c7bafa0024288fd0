"""Check group 2, audit policy coverage, by simulation rather than by name matching.

Every audit `Policy` in the inputs is evaluated the way the kube-apiserver evaluates it
(`logwarden.posture.policy`) over the requests of `logwarden.posture.requests`. A K05
event class is reported when one of its requests is not logged (level None, or every
stage it emits omitted), is logged only at RequestReceived (the outcome, allowed or
denied, is never written), or is logged below the level that makes it useful. The other
direction is reported too: secrets in audit logs (Secret, TokenReview, TokenRequest and
ConfigMap bodies at Request or RequestResponse).
"""

from __future__ import annotations

from collections.abc import Iterator

from logwarden.posture.checks.base import Check
from logwarden.posture.inputs.shapes import field_name
from logwarden.posture.model import Inventory, K8sObject, Where
from logwarden.posture.policy import LEVELS, Decision, Policy, Request, evaluate, read_policy
from logwarden.posture.requests import EVENT_CLASSES, LEAKS, EventClass, Leak, stages_of
from logwarden.records import Finding

__all__ = ["CHECKS", "GROUP", "describe", "leaked", "run", "verdicts"]

GROUP = "audit-policy"
_RESPONSE = {"ResponseStarted", "ResponseComplete"}
_BODY_STAGES = {"ResponseStarted", "ResponseComplete", "Panic"}

NOT_LOGGED = Check(
    "LW-POLICY-001",
    GROUP,
    "K05 event class not audited",
    "high",
    "The apiserver evaluates the policy rule by rule and the first match decides: these "
    "requests end at a rule with level None (or no rule at all, or a rule that omits every "
    "stage they emit), so an attacker doing exactly this leaves no audit event.",
    "Add a rule above the one that drops these requests, logging them at the level shown "
    "(or narrow the None rule to the users, verbs and resources it was meant for).",
)
BELOW_LEVEL = Check(
    "LW-POLICY-002",
    GROUP,
    "K05 event class audited below the level needed",
    "medium",
    "At Metadata the event tells who changed which object, not how: a workload made "
    "privileged, a role given '*' or a binding to cluster-admin look like any other "
    "update, and detection rules that read the request body cannot fire.",
    "Log these requests at Request (or RequestResponse) in a rule placed before the one "
    "that matches them now; keep Secrets, ConfigMaps and TokenReviews at Metadata.",
)
NO_OUTCOME = Check(
    "LW-POLICY-003",
    GROUP,
    "K05 event class audited without its outcome",
    "medium",
    "The deciding rule omits every response stage, so only RequestReceived is written: "
    "the log shows the attempt but never whether it was allowed, denied or failed.",
    "Omit RequestReceived rather than ResponseComplete/ResponseStarted; failed "
    "authentications are written only at ResponseStarted.",
)
LEAK = Check(
    "LW-POLICY-004",
    GROUP,
    "Secrets written into the audit log",
    "high",
    "At Request or RequestResponse the audit event holds the request or response body: "
    "Secret data, the bearer token of a TokenReview or a freshly minted service account "
    "token end up in every copy of the audit log, readable by whoever can read logs.",
    "Log secrets, configmaps, serviceaccounts/token and tokenreviews at Metadata in a rule "
    "placed before the broader Request/RequestResponse rules.",
)
INVALID = Check(
    "LW-POLICY-005",
    GROUP,
    "Audit policy the apiserver refuses",
    "high",
    "The kube-apiserver validates the policy at start-up and exits on any error: with this "
    "file the control plane does not come up, or audit stays off where it is optional.",
    "Fix the field named in the message (see the audit.k8s.io/v1 Policy reference).",
)

REMOVED_VERSION = Check(
    "LW-POLICY-006",
    GROUP,
    "Audit policy in a version kube-apiserver 1.24+ refuses",
    "high",
    "audit.k8s.io/v1beta1 is no longer read since Kubernetes 1.24 (kubernetes PR #108092): "
    "on any supported release, or after an upgrade, the apiserver refuses the policy and "
    "does not start. The policy is still simulated, as an older apiserver reads it.",
    "Change apiVersion to audit.k8s.io/v1; the fields are the same.",
)

CHECKS = (NOT_LOGGED, BELOW_LEVEL, NO_OUTCOME, LEAK, INVALID, REMOVED_VERSION)
#: versions older apiservers read and 1.24+ refuse (reader.go registers only v1)
_REMOVED_VERSIONS = {"audit.k8s.io/v1beta1"}


def describe(req: Request) -> str:
    """A request in a few words: who, verb, what, where."""
    who = "an unauthenticated client" if req.user is None else req.user
    if not req.is_resource:
        return f"{who} {req.verb} {req.path}"
    what = req.resource + (f"/{req.subresource}" if req.subresource else "")
    if req.group:
        what += f".{req.group}"
    if req.name:
        what += f" {req.name}"
    where = f" in {req.namespace}" if req.namespace else ""
    return f"{who} {req.verb} {what}{where}"


def verdicts(policy: Policy, cls: EventClass) -> dict[str, list[tuple[Request, Decision]]]:
    """The requests of `cls` that fail, by how: not-logged, no-outcome, below-level."""
    out: dict[str, list[tuple[Request, Decision]]] = {
        "not-logged": [],
        "no-outcome": [],
        "below-level": [],
    }
    needed = LEVELS.index(cls.needed)
    for req in cls.requests:
        decision = evaluate(policy, req)
        kept = stages_of(req) - decision.omit_stages
        if decision.level == "None" or not kept:
            out["not-logged"].append((req, decision))
        elif not kept & _RESPONSE:
            out["no-outcome"].append((req, decision))
        elif LEVELS.index(decision.level) < needed:
            out["below-level"].append((req, decision))
    return out


def _where(obj: K8sObject, decision: Decision) -> Where:
    if decision.rule is None:
        return obj.where(("rules",))
    return obj.where(("rules", decision.rule.index))


def _rule_text(decision: Decision) -> str:
    if decision.rule is None:
        return "no rule matches (level None)"
    omitted = sorted(decision.omit_stages)
    text = f"rule {decision.rule.index + 1} (level {decision.rule.level}"
    text += f", omitStages {omitted})" if omitted else ")"
    return text


def _examples(failed: list[tuple[Request, Decision]]) -> str:
    shown = "; ".join(describe(r) for r, _ in failed[:3])
    more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
    return shown + more


def run(inv: Inventory) -> Iterator[Finding]:
    for obj in inv.of_kind("Policy"):
        if not obj.api_version.startswith("audit.k8s.io/"):
            continue
        policy = read_policy(obj)
        if policy.errors:
            for path, reason in policy.errors:
                yield INVALID.at(obj.where(path), f"{field_name(path)}: {reason}")
            continue
        if obj.api_version in _REMOVED_VERSIONS:
            yield REMOVED_VERSION.at(
                obj.where(("apiVersion",)),
                f"apiVersion: {obj.api_version} is refused by kube-apiserver 1.24 and later "
                "(only audit.k8s.io/v1 is read); simulated as an older apiserver reads it",
            )
        yield from _coverage(obj, policy)
        yield from _leaks(obj, policy)


def _coverage(obj: K8sObject, policy: Policy) -> Iterator[Finding]:
    for cls in EVENT_CLASSES:
        result = verdicts(policy, cls)
        if result["not-logged"]:
            failed = result["not-logged"]
            yield NOT_LOGGED.at(
                _where(obj, failed[0][1]),
                f"{cls.title} [{cls.id}] not logged: {_examples(failed)}; decided by "
                f"{_rule_text(failed[0][1])}",
                severity=cls.severity,
            )
        if result["no-outcome"]:
            failed = result["no-outcome"]
            yield NO_OUTCOME.at(
                _where(obj, failed[0][1]),
                f"{cls.title} [{cls.id}] logged only at RequestReceived: {_examples(failed)}; "
                f"decided by {_rule_text(failed[0][1])}",
            )
        if result["below-level"]:
            failed = result["below-level"]
            yield BELOW_LEVEL.at(
                _where(obj, failed[0][1]),
                f"{cls.title} [{cls.id}] logged at {failed[0][1].level}, needs {cls.needed}: "
                f"{_examples(failed)}; decided by {_rule_text(failed[0][1])}",
            )


def leaked(policy: Policy, leak: Leak) -> list[tuple[Request, Decision]]:
    """The requests of `leak` whose secret-bearing body `policy` writes to the audit log.

    Bodies are attached while the request is handled, so RequestReceived holds none; a
    response body is attached when the response is written, so only ResponseComplete
    holds it (the ResponseStarted of a long-running request is written before it).
    """
    least = LEVELS.index(leak.level)
    holds_body = {"ResponseComplete"} if leak.level == "RequestResponse" else _BODY_STAGES
    failed = []
    for req in leak.requests:
        decision = evaluate(policy, req)
        kept = stages_of(req) - decision.omit_stages
        if LEVELS.index(decision.level) >= least and kept & holds_body:
            failed.append((req, decision))
    return failed


def _leaks(obj: K8sObject, policy: Policy) -> Iterator[Finding]:
    for leak in LEAKS:
        failed = leaked(policy, leak)
        if failed:
            yield LEAK.at(
                _where(obj, failed[0][1]),
                f"{leak.what} logged at {failed[0][1].level}: {_examples(failed)}; decided by "
                f"{_rule_text(failed[0][1])}",
                severity=leak.severity,
            )
