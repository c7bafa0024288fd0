"""The kube-apiserver's audit policy, read and evaluated exactly as the apiserver does.

Reading follows `k8s.io/apiserver/pkg/audit/policy/reader.go` and the validation of
`apis/audit/validation`: `audit.k8s.io/v1` (v1beta1 still read, deprecated), at least one
rule, a valid `level` on every rule, `nonResourceURLs` starting with ``/`` with ``*`` only
as the last character, no rule with both resources (or namespaces) and non-resource URLs,
`resourceNames` only with `resources`, known `omitStages`, and each `group` empty or a
lowercase RFC 1123 DNS subdomain (`validateResources`). A field of the wrong type
(`omitManagedFields: "false"`, `group: 1`) is an error too: the apiserver fails to decode
the policy. v1beta1 is read as older apiservers read it; 1.24+ refuse it, which
`checks.audit_policy` reports.

Evaluation follows `policy/checker.go`: the policy-level `omitStages` are added to every
rule's; the rules are tried in order and the first that matches decides the level, the
stages to omit and `omitManagedFields` (the rule's when set, else the policy's); when none
matches the level is None. A rule matches when every field it sets matches:

* `users`: the user's name is listed; `userGroups`: one of the user's groups is listed
  (a request without a user, a failed authentication, matches neither);
* `verbs`: the request's verb is listed;
* `namespaces` or `resources` set: a resource request, in a listed namespace (``""`` is a
  cluster-scoped object), and with `resources` a matching group, then, within it, an empty
  resource list, or a resource equal to ``resource`` or ``resource/subresource``, ``*``,
  ``*/subresource`` or ``resource/*`` (which also matches the resource itself), with
  `resourceNames` (when set) listing the object's name;
* otherwise `nonResourceURLs` set: a non-resource request whose path equals an entry,
  or starts with an entry ending in ``*`` (without it), or any path for ``*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from logwarden.posture.model import K8sObject

__all__ = [
    "LEVELS",
    "STAGES",
    "Decision",
    "GroupResources",
    "Policy",
    "PolicyRule",
    "Request",
    "evaluate",
    "read_policy",
]

#: audit levels, least first
LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
_API_VERSIONS = {"audit.k8s.io/v1", "audit.k8s.io/v1beta1"}
_DNS_1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_1123_SUBDOMAIN = re.compile(rf"{_DNS_1123_LABEL}(\.{_DNS_1123_LABEL})*")
_DNS_SUBDOMAIN = (
    "must be a lowercase RFC 1123 subdomain: lower case alphanumeric characters, '-' or "
    "'.', starting and ending with an alphanumeric character"
)


@dataclass(frozen=True)
class GroupResources:
    group: str
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyRule:
    level: str
    index: int
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool | None = None


@dataclass
class Policy:
    rules: list[PolicyRule]
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False
    errors: list[tuple[tuple[str | int, ...], str]] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    """The attributes of one API request the checker sees (authorizer.Attributes)."""

    verb: str
    user: str | None = None  # None: the request failed authentication
    groups: tuple[str, ...] = ()
    resource: str = ""  # "" for a non-resource request
    subresource: str = ""
    group: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


@dataclass(frozen=True)
class Decision:
    level: str
    omit_stages: frozenset[str]
    omit_managed_fields: bool
    rule: PolicyRule | None  # None: no rule matched


def evaluate(policy: Policy, req: Request) -> Decision:
    """The level, omitted stages and omitManagedFields the apiserver applies to `req`."""
    for rule in policy.rules:
        if _matches(rule, req):
            omf = (
                rule.omit_managed_fields
                if rule.omit_managed_fields is not None
                else policy.omit_managed_fields
            )
            return Decision(rule.level, rule.omit_stages, omf, rule)
    return Decision("None", policy.omit_stages, policy.omit_managed_fields, None)


def _matches(rule: PolicyRule, req: Request) -> bool:
    if rule.users and (req.user is None or req.user not in rule.users):
        return False
    if rule.user_groups and (
        req.user is None or not any(g in rule.user_groups for g in req.groups)
    ):
        return False
    if rule.verbs and req.verb not in rule.verbs:
        return False
    if rule.namespaces or rule.resources:
        return _matches_resource(rule, req)
    if rule.non_resource_urls:
        return not req.is_resource and any(
            _path_matches(req.path, s) for s in rule.non_resource_urls
        )
    return True


def _path_matches(path: str, spec: str) -> bool:
    if spec in ("*", path):
        return True
    return spec.endswith("*") and path.startswith(spec.rstrip("*"))


def _matches_resource(rule: PolicyRule, req: Request) -> bool:
    if not req.is_resource:
        return False
    if rule.namespaces and req.namespace not in rule.namespaces:
        return False
    if not rule.resources:
        return True
    combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
    for gr in rule.resources:
        if gr.group != req.group:
            continue
        if not gr.resources:
            return True
        for res in gr.resources:
            if gr.resource_names and req.name not in gr.resource_names:
                continue
            if res in (combined, "*"):
                return True
            if req.subresource and res.startswith("*/") and res[2:] == req.subresource:
                return True
            if res.endswith("/*") and res[:-2] == req.resource:
                return True
    return False


def _type(value: Any) -> str:
    """The JSON type of a decoded YAML value, as a decoding error names it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _is_dns_subdomain(name: str) -> bool:
    """validation.IsDNS1123Subdomain: at most 253 characters of lower-case RFC 1123 labels."""
    return len(name) <= 253 and _DNS_1123_SUBDOMAIN.fullmatch(name) is not None


def _bool(value: Any, path: tuple[str | int, ...], errors: list[Any]) -> bool | None:
    """A boolean field; the apiserver fails to decode any other type."""
    if value is None or isinstance(value, bool):
        return value
    errors.append((path, f"must be a boolean (true or false), not {_type(value)}"))
    return None


def _strings(value: Any, path: tuple[str | int, ...], errors: list[Any]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append((path, "must be a list of strings"))
        return ()
    return tuple(value)


def read_policy(obj: K8sObject) -> Policy:
    """Read and validate an audit Policy; `Policy.errors` lists (path, reason) as the
    apiserver would refuse them (an apiserver refuses to start with any of them)."""
    data = obj.data
    errors: list[tuple[tuple[str | int, ...], str]] = []
    if obj.api_version not in _API_VERSIONS:
        errors.append((("apiVersion",), f"unknown group version {obj.api_version!r}"))
    stages = _stages(data.get("omitStages"), ("omitStages",), errors)
    rules_data = data.get("rules")
    rules: list[PolicyRule] = []
    if not isinstance(rules_data, list) or not rules_data:
        errors.append((("rules",), "loaded illegal policy with 0 rules"))
        rules_data = []
    for i, raw in enumerate(rules_data):
        if not isinstance(raw, dict):
            errors.append((("rules", i), "a rule must be a mapping"))
            continue
        rule = _rule(raw, i, stages, errors)
        if rule is not None:
            rules.append(rule)
    omf = _bool(data.get("omitManagedFields"), ("omitManagedFields",), errors)
    return Policy(rules, stages, bool(omf), errors)


def _stages(value: Any, path: tuple[str | int, ...], errors: list[Any]) -> frozenset[str]:
    stages = _strings(value, path, errors)
    for i, stage in enumerate(stages):
        if stage not in STAGES:
            errors.append(((*path, i), f"{stage!r}: allowed stages are {','.join(STAGES)}"))
    return frozenset(stages)


def _rule(
    raw: dict[str, Any], i: int, policy_stages: frozenset[str], errors: list[Any]
) -> PolicyRule | None:
    base: tuple[str | int, ...] = ("rules", i)
    level = raw.get("level")
    if not level:
        errors.append(((*base, "level"), "Required value"))
        return None
    if level not in LEVELS:
        errors.append(((*base, "level"), f"Unsupported value: {level!r}"))
        return None
    urls = _strings(raw.get("nonResourceURLs"), (*base, "nonResourceURLs"), errors)
    for j, url in enumerate(urls):
        if url == "*":
            continue
        if not url.startswith("/"):
            errors.append(((*base, "nonResourceURLs", j), "must begin with a '/' character"))
        if url and "*" in url[:-1]:
            errors.append(
                ((*base, "nonResourceURLs", j), "wildcards '*' must be the final character")
            )
    resources = _group_resources(raw.get("resources"), (*base, "resources"), errors)
    namespaces = _strings(raw.get("namespaces"), (*base, "namespaces"), errors)
    if urls and (resources or namespaces):
        errors.append(
            (
                (*base, "nonResourceURLs"),
                "rules cannot apply to both regular resources and non-resource URLs",
            )
        )
    omf = _bool(raw.get("omitManagedFields"), (*base, "omitManagedFields"), errors)
    return PolicyRule(
        level=str(level),
        index=i,
        users=_strings(raw.get("users"), (*base, "users"), errors),
        user_groups=_strings(raw.get("userGroups"), (*base, "userGroups"), errors),
        verbs=_strings(raw.get("verbs"), (*base, "verbs"), errors),
        resources=resources,
        namespaces=namespaces,
        non_resource_urls=urls,
        omit_stages=policy_stages | _stages(raw.get("omitStages"), (*base, "omitStages"), errors),
        omit_managed_fields=omf,
    )


def _group_resources(
    value: Any, path: tuple[str | int, ...], errors: list[Any]
) -> tuple[GroupResources, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        errors.append((path, "must be a list of group resources"))
        return ()
    out = []
    for j, gr in enumerate(value):
        if not isinstance(gr, dict):
            errors.append(((*path, j), "must be a mapping with group and resources"))
            continue
        group = gr.get("group")
        if group is None:
            group = ""
        if not isinstance(group, str):
            errors.append(((*path, j, "group"), f"must be a string, not {_type(group)}"))
            group = ""
        if group and not _is_dns_subdomain(group):
            errors.append(((*path, j, "group"), f"{group!r}: {_DNS_SUBDOMAIN}"))
        resources = _strings(gr.get("resources"), (*path, j, "resources"), errors)
        names = _strings(gr.get("resourceNames"), (*path, j, "resourceNames"), errors)
        if names and not resources:
            errors.append(
                ((*path, j, "resourceNames"), "using resourceNames requires at least one resource")
            )
        out.append(GroupResources(group, resources, names))
    return tuple(out)
