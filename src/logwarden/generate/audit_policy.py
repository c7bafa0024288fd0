"""The kube-apiserver audit Policy (audit.k8s.io/v1) that logs what K05 asks for.

The rules are data (`policy_rules()`): each carries a short name, the reason it exists
(written into the YAML as a comment above the rule by `_policy_yaml`, and explained at
length in docs/generate.md) and the rule itself. The apiserver tries rules in order and
the first match decides, so the order is the design:

1. sensitive access first, for everyone: exec/attach/port-forward/proxy at Metadata, then
   Secrets, ConfigMaps, TokenRequests and TokenReviews at Metadata (never their bodies);
2. the changes K05 names, with their bodies: RBAC and namespaces at RequestResponse,
   workloads, certificate requests and control-plane extensions at Request;
3. Events: deletions always logged; the stream system components write is dropped;
4. high-volume writes without forensic body (status, leases) at Metadata;
5. noise: reads by system components, health probes and discovery dropped, each rule
   narrowed to users or groups, so a failed authentication (which has no user) and any
   write never end there;
6. every other write at Request; everything else, failed authentications included, at
   Metadata.

`RequestReceived` is omitted policy-wide: every request is still written once it is
answered (ResponseComplete), long-running ones also when the response starts, and failed
authentications at ResponseStarted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec

from logwarden.errors import UsageError
from logwarden.generate._policy_yaml import CommentedRule, GroupResources, PolicyRule, render

__all__ = [
    "READ_VERBS",
    "SYSTEM_GROUPS",
    "SYSTEM_USERS",
    "WRITE_VERBS",
    "CommentedRule",
    "GroupResources",
    "PolicyRule",
    "audit_policy",
    "policy_rules",
]

READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
_CHANGE_VERBS = ("create", "update", "patch")

#: control-plane identities whose reads are high-volume and routine
SYSTEM_USERS = (
    "system:kube-proxy",
    "system:kube-scheduler",
    "system:kube-controller-manager",
    "system:cloud-controller-manager",
    "system:apiserver",
)
#: kubelets, and the controllers and add-ons running as kube-system service accounts
SYSTEM_GROUPS = ("system:nodes", "system:serviceaccounts:kube-system")

_RBAC = "rbac.authorization.k8s.io"
_EVENTS = "events.k8s.io"
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
#: API groups whose objects have a /status subresource written by controllers and kubelets
_STATUS_GROUPS = (
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "storage.k8s.io",
    "certificates.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
)


def _core(*resources: str) -> GroupResources:
    return GroupResources("", resources)


def _by_system(name: str, why: str, rule: PolicyRule) -> list[CommentedRule]:
    """`rule` twice: for the control-plane users, then for the system groups.

    A rule that sets both `users` and `userGroups` matches only a request whose user is
    listed *and* in a listed group, so the two lists need a rule each.
    """
    return [
        CommentedRule(
            f"{name}-control-plane",
            why.format(who="the control plane (" + ", ".join(SYSTEM_USERS) + ")"),
            msgspec.structs.replace(rule, users=SYSTEM_USERS),
        ),
        CommentedRule(
            f"{name}-nodes-kube-system",
            why.format(who="kubelets and kube-system service accounts"),
            msgspec.structs.replace(rule, user_groups=SYSTEM_GROUPS),
        ),
    ]


def _sensitive(logging_namespaces: Sequence[str]) -> list[CommentedRule]:
    rules = [
        CommentedRule(
            "exec-attach-port-forward",
            "Commands run inside containers, attaching to them, port-forwarding and proxying "
            "to pods, services and kubelets (nodes/proxy reaches the kubelet API, exec "
            "included): who, where and the command line (in the URI). Before every other "
            "rule, so no noise rule below can hide them.",
            PolicyRule(
                level="Metadata",
                resources=(
                    _core(
                        "pods/exec",
                        "pods/attach",
                        "pods/portforward",
                        "pods/proxy",
                        "services/proxy",
                        "nodes/proxy",
                    ),
                ),
            ),
        )
    ]
    if logging_namespaces:
        rules.append(
            CommentedRule(
                "logging-config",
                "Changes to the ConfigMaps of the logging pipeline (shippers, Falco rules) in "
                "the namespaces given with --logging-namespace, with their body: a log "
                "shipper told to drop or redirect logs shows exactly what changed.",
                PolicyRule(
                    level="Request",
                    verbs=_CHANGE_VERBS,
                    namespaces=tuple(dict.fromkeys(logging_namespaces)),
                    resources=(_core("configmaps"),),
                ),
            )
        )
    rules.append(
        CommentedRule(
            "secrets-metadata-only",
            "Secrets, ConfigMaps, TokenRequests (serviceaccounts/token) and TokenReviews: every "
            "read and write, by anyone, at Metadata. Their bodies hold secret values and "
            "tokens, which must never reach the audit log; who touched which object is "
            "what K05 asks for.",
            PolicyRule(
                level="Metadata",
                resources=(
                    _core("secrets", "configmaps", "serviceaccounts/token"),
                    GroupResources("authentication.k8s.io", ("tokenreviews",)),
                ),
            ),
        )
    )
    return rules


def _changes() -> list[CommentedRule]:
    return [
        CommentedRule(
            "rbac-changes",
            "RBAC created, changed or deleted, with request and response: the response shows "
            "the role or binding as stored after a patch (escalate and bind are checked "
            "on these same requests).",
            PolicyRule(
                level="RequestResponse",
                verbs=WRITE_VERBS,
                resources=(GroupResources(_RBAC),),
            ),
        ),
        CommentedRule(
            "namespace-changes",
            "Namespaces created, changed or deleted, with request and response: deleting a "
            "namespace deletes everything in it, and its labels set Pod Security levels.",
            PolicyRule(
                level="RequestResponse", verbs=WRITE_VERBS, resources=(_core("namespaces"),)
            ),
        ),
        CommentedRule(
            "workload-changes",
            "Workloads created, changed, scaled or deleted, with the request body: the pod "
            "spec shows a privileged container, a host mount or an unknown image.",
            PolicyRule(
                level="Request",
                verbs=WRITE_VERBS,
                resources=(
                    _core(
                        "pods",
                        "pods/ephemeralcontainers",
                        "podtemplates",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                    ),
                    GroupResources(
                        "apps",
                        (
                            "deployments",
                            "deployments/scale",
                            "daemonsets",
                            "statefulsets",
                            "statefulsets/scale",
                            "replicasets",
                            "replicasets/scale",
                        ),
                    ),
                    GroupResources("batch", ("jobs", "cronjobs")),
                ),
            ),
        ),
        CommentedRule(
            "credential-issuance",
            "Certificate signing requests and their approval, with the request body: the "
            "CSR shows which identity (user, groups such as system:masters) is asked for.",
            PolicyRule(
                level="Request",
                verbs=WRITE_VERBS,
                resources=(
                    GroupResources(
                        "certificates.k8s.io",
                        ("certificatesigningrequests", "certificatesigningrequests/approval"),
                    ),
                ),
            ),
        ),
        CommentedRule(
            "control-plane-extensions",
            "Admission webhooks and policies, CRDs and aggregated APIServices, with the "
            "request body: each can intercept, rewrite or deny every later request.",
            PolicyRule(
                level="Request",
                verbs=WRITE_VERBS,
                resources=(
                    GroupResources("admissionregistration.k8s.io"),
                    GroupResources("apiextensions.k8s.io", ("customresourcedefinitions",)),
                    GroupResources("apiregistration.k8s.io", ("apiservices",)),
                ),
            ),
        ),
    ]


def _events() -> list[CommentedRule]:
    both = (_core("events"), GroupResources(_EVENTS, ("events",)))
    return [
        CommentedRule(
            "event-deletions",
            "Events deleted, by anyone: deleting Events erases the cluster's own record of "
            "what happened.",
            PolicyRule(level="Metadata", verbs=("delete", "deletecollection"), resources=both),
        ),
        *_by_system(
            "system-event-writes",
            "Events written by {who}: the Events themselves are read from the Events API; "
            "their writes would be most of the audit log. Writes by anyone else stay "
            "logged (below).",
            PolicyRule(level="None", verbs=_CHANGE_VERBS, resources=both),
        ),
        CommentedRule(
            "event-writes",
            "Events written by people and workloads, at Metadata: a forged Event is "
            "visible without storing every Event twice.",
            PolicyRule(level="Metadata", verbs=_CHANGE_VERBS, resources=both),
        ),
    ]


def _volume() -> list[CommentedRule]:
    return [
        CommentedRule(
            "status-updates",
            "Status written by kubelets and controllers: logged (who wrote which object's "
            "status) but without the body, which is large and changes constantly.",
            PolicyRule(
                level="Metadata",
                verbs=_CHANGE_VERBS,
                resources=tuple(GroupResources(g, ("*/status",)) for g in _STATUS_GROUPS),
            ),
        ),
        CommentedRule(
            "lease-renewals",
            "Leases renewed by node heartbeats and leader election every few seconds: "
            "logged at Metadata, never dropped, never with a body.",
            PolicyRule(
                level="Metadata",
                verbs=WRITE_VERBS,
                resources=(GroupResources("coordination.k8s.io", ("leases",)),),
            ),
        ),
    ]


def _noise(keep_system_reads: bool) -> list[CommentedRule]:
    rules: list[CommentedRule] = []
    if not keep_system_reads:
        rules += _by_system(
            "system-reads",
            "Reads by {who}: routine get/list/watch that would drown everything else. "
            "Only reads, and only after the Secret and exec rules above, so their secret "
            "reads, exec and every write stay logged (--keep-system-reads leaves this out).",
            PolicyRule(level="None", verbs=READ_VERBS),
        )
    rules += [
        CommentedRule(
            "health-probes",
            "Health probes of load balancers and kubelets. Narrowed to authenticated and "
            "anonymous callers: a failed authentication has neither group and is logged.",
            PolicyRule(
                level="None",
                user_groups=("system:authenticated", "system:unauthenticated"),
                verbs=("get",),
                non_resource_urls=("/healthz*", "/livez*", "/readyz*"),
            ),
        ),
        CommentedRule(
            "discovery",
            "API discovery, OpenAPI, /version and /metrics read by authenticated clients: "
            "every kubectl run and every scrape. Anonymous reads of them stay logged "
            "(probing by anonymous callers is reconnaissance).",
            PolicyRule(
                level="None",
                user_groups=("system:authenticated",),
                verbs=("get",),
                non_resource_urls=(
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/openapi/*",
                    "/version",
                    "/metrics",
                ),
            ),
        ),
    ]
    return rules


def _rest() -> list[CommentedRule]:
    return [
        CommentedRule(
            "other-writes",
            "Every other change (Services, Ingresses, NetworkPolicies, service accounts, "
            "custom resources, evictions, ...) with its request body.",
            PolicyRule(level="Request", verbs=WRITE_VERBS),
        ),
        CommentedRule(
            "everything-else",
            "Everything else at Metadata: reads by people and workloads, anonymous "
            "requests and failed authentications (which match no user or group rule "
            "above). No request falls through unlogged.",
            PolicyRule(level="Metadata"),
        ),
    ]


def policy_rules(
    *, logging_namespaces: Sequence[str] = (), keep_system_reads: bool = False
) -> list[CommentedRule]:
    """The rules of the policy, in the order the apiserver tries them."""
    return [
        *_sensitive(logging_namespaces),
        *_changes(),
        *_events(),
        *_volume(),
        *_noise(keep_system_reads),
        *_rest(),
    ]


def audit_policy(*, logging_namespaces: Sequence[str] = (), keep_system_reads: bool = False) -> str:
    """The policy as YAML text, each rule preceded by a comment saying why it is there."""
    for ns in logging_namespaces:
        if not _NAMESPACE.fullmatch(ns):
            raise UsageError(
                f"--logging-namespace {ns!r}: not a namespace name (lower-case letters, "
                "digits and '-', at most 63, starting and ending with a letter or digit)"
            )
    return render(
        policy_rules(logging_namespaces=logging_namespaces, keep_system_reads=keep_system_reads)
    )
