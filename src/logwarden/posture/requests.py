"""The requests that matter for K05, and what an audit policy must do with each.

Each `EventClass` is one kind of activity K05 asks to be logged (failed authentication,
reading secrets, exec into pods, changing workloads or RBAC, deleting Events, ...), with
the requests that stand for it and the least level at which its events still tell what
happened: Metadata shows who did what to which object; Request adds the body, which is
what shows *how* a workload or a role was changed (a privileged container, a binding to
cluster-admin). `LEAKS` is the opposite direction: requests whose bodies carry secrets,
with the level from which the audit log would hold them.

The stages each request emits follow the apiserver's filters: an ordinary request emits
RequestReceived and ResponseComplete; a long-running one (watch, exec, attach,
port-forward) also ResponseStarted; a failed authentication only ResponseStarted (the
authentication filter answers 401 through the audit response writer).
"""

from __future__ import annotations

from dataclasses import dataclass

from logwarden.posture.policy import Request

__all__ = ["EVENT_CLASSES", "LEAKS", "EventClass", "Leak", "stages_of"]

_HUMAN = ("alice", ("system:authenticated", "developers"))
_SA = (
    "system:serviceaccount:default:app",
    ("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"),
)
_ANON = ("system:anonymous", ("system:unauthenticated",))

_NORMAL = frozenset({"RequestReceived", "ResponseComplete"})
_LONG = frozenset({"RequestReceived", "ResponseStarted", "ResponseComplete"})
_FAILED_AUTHN = frozenset({"ResponseStarted"})
_LONG_SUBRESOURCES = {"exec", "attach", "portforward", "proxy", "log"}
# the verbs whose responses carry whole objects into the audit event
_BODY_READS = ("get", "list", "deletecollection")


def stages_of(req: Request) -> frozenset[str]:
    """The stages at which the apiserver emits audit events for `req`."""
    if req.user is None:
        return _FAILED_AUTHN
    if req.verb == "watch" or req.subresource in _LONG_SUBRESOURCES:
        return _LONG
    return _NORMAL


@dataclass(frozen=True)
class EventClass:
    id: str
    title: str
    severity: str
    needed: str  # least level that makes the event useful
    requests: tuple[Request, ...]


def _as(
    who: tuple[str, tuple[str, ...]],
    verbs: tuple[str, ...],
    resource: str,
    *,
    group: str = "",
    namespaces: tuple[str, ...] = ("default",),
    subresource: str = "",
    name: str = "x",
) -> list[Request]:
    out = []
    for verb in verbs:
        for ns in namespaces:
            named = "" if verb in ("list", "watch", "create", "deletecollection") else name
            if resource == "namespaces" and not group:
                # the apiserver's RequestInfo: /api/v1/namespaces/{name} is in namespace {name}
                ns = named
            out.append(
                Request(
                    verb=verb,
                    user=who[0],
                    groups=who[1],
                    resource=resource,
                    subresource=subresource,
                    group=group,
                    namespace=ns,
                    name=named,
                )
            )
    return out


_WRITE = ("create", "update", "patch")
_WORKLOADS = [
    ("pods", ""),
    ("deployments", "apps"),
    ("daemonsets", "apps"),
    ("statefulsets", "apps"),
    ("jobs", "batch"),
    ("cronjobs", "batch"),
]
_RBAC = ["roles", "rolebindings", "clusterroles", "clusterrolebindings"]
_WEBHOOKS = ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]


def _classes() -> tuple[EventClass, ...]:
    both = ("default", "kube-system")
    failed = [
        Request(verb="list", resource="pods", namespace="default"),
        Request(verb="get", resource="secrets", namespace="kube-system", name="x"),
        Request(verb="get", path="/api"),
        Request(verb="get", path="/apis/apps/v1"),
    ]
    anonymous = [
        Request(verb="get", user=_ANON[0], groups=_ANON[1], path="/api"),
        Request(verb="get", user=_ANON[0], groups=_ANON[1], path="/apis"),
        *_as(_ANON, ("list",), "secrets", namespaces=both),
        *_as(_ANON, ("list",), "pods"),
    ]
    exec_ = [
        r
        for sub in ("exec", "attach", "portforward")
        for r in _as(_HUMAN, ("create", "get"), "pods", subresource=sub, namespaces=both)
    ]
    workloads_w = [r for res, g in _WORKLOADS for r in _as(_HUMAN, _WRITE, res, group=g)]
    workloads_d = [r for res, g in _WORKLOADS for r in _as(_HUMAN, ("delete",), res, group=g)]

    def rbac_ns(verbs: tuple[str, ...]) -> list[Request]:
        return [
            r
            for res in _RBAC
            for r in _as(
                _HUMAN,
                verbs,
                res,
                group="rbac.authorization.k8s.io",
                namespaces=("",) if res.startswith("cluster") else ("default",),
            )
        ]

    def hooks(verbs: tuple[str, ...]) -> list[Request]:
        return [
            r
            for res in _WEBHOOKS
            for r in _as(_HUMAN, verbs, res, group="admissionregistration.k8s.io", namespaces=("",))
        ]

    def crds(verbs: tuple[str, ...]) -> list[Request]:
        return _as(
            _HUMAN,
            verbs,
            "customresourcedefinitions",
            group="apiextensions.k8s.io",
            namespaces=("",),
        )

    events = [
        *_as(_HUMAN, ("delete", "deletecollection"), "events", namespaces=both),
        *_as(_HUMAN, ("delete", "deletecollection"), "events", group="events.k8s.io"),
        *_as(_SA, ("delete", "deletecollection"), "events", namespaces=both),
    ]
    return (
        EventClass("authn-failure", "failed authentication", "high", "Metadata", tuple(failed)),
        EventClass("anonymous", "anonymous requests", "medium", "Metadata", tuple(anonymous)),
        EventClass(
            "secrets-read-human",
            "secrets read by a person",
            "high",
            "Metadata",
            tuple(_as(_HUMAN, ("get", "list", "watch"), "secrets", namespaces=both)),
        ),
        EventClass(
            "secrets-read-sa",
            "secrets read by a service account",
            "high",
            "Metadata",
            tuple(_as(_SA, ("get", "list", "watch"), "secrets", namespaces=both)),
        ),
        EventClass(
            "token-request",
            "service account tokens minted (TokenRequest)",
            "high",
            "Metadata",
            tuple(_as(_HUMAN, ("create",), "serviceaccounts", subresource="token")),
        ),
        EventClass(
            "exec", "exec, attach and port-forward into pods", "high", "Metadata", tuple(exec_)
        ),
        EventClass(
            "workload-change",
            "workloads created or changed",
            "high",
            "Request",
            tuple(workloads_w),
        ),
        EventClass("workload-delete", "workloads deleted", "high", "Metadata", tuple(workloads_d)),
        EventClass(
            "rbac-change", "RBAC created or changed", "high", "Request", tuple(rbac_ns(_WRITE))
        ),
        EventClass("rbac-delete", "RBAC deleted", "high", "Metadata", tuple(rbac_ns(("delete",)))),
        EventClass(
            "namespace-change",
            "namespaces created, changed or deleted",
            "medium",
            "Metadata",
            tuple(_as(_HUMAN, (*_WRITE, "delete"), "namespaces", namespaces=("",))),
        ),
        EventClass(
            "webhook-change",
            "admission webhooks created or changed",
            "high",
            "Request",
            tuple(hooks(_WRITE)),
        ),
        EventClass(
            "webhook-delete",
            "admission webhooks deleted",
            "high",
            "Metadata",
            tuple(hooks(("delete",))),
        ),
        EventClass(
            "crd-change", "CRDs created or changed", "medium", "Request", tuple(crds(_WRITE))
        ),
        EventClass("crd-delete", "CRDs deleted", "medium", "Metadata", tuple(crds(("delete",)))),
        EventClass("event-delete", "Events deleted", "high", "Metadata", tuple(events)),
    )


EVENT_CLASSES = _classes()


@dataclass(frozen=True)
class Leak:
    """A request whose audit event holds a secret from `level` on."""

    what: str
    severity: str
    level: str
    requests: tuple[Request, ...]


def _leaks() -> tuple[Leak, ...]:
    users = [
        _HUMAN,
        _SA,
        ("system:kube-controller-manager", ("system:authenticated",)),
        ("system:node:node-1", ("system:nodes", "system:authenticated")),
    ]
    ns = ("default", "kube-system")

    def each(verbs: tuple[str, ...], resource: str, **kw: str) -> tuple[Request, ...]:
        namespaces = (kw.pop("namespace"),) if "namespace" in kw else ns
        return tuple(
            r for who in users for r in _as(who, verbs, resource, namespaces=namespaces, **kw)
        )

    return (
        Leak("Secret bodies (create/update/patch)", "high", "Request", each(_WRITE, "secrets")),
        # a watch streams events and never logs a response body (handlers/watch.go);
        # deletecollection returns the deleted objects (Store.DeleteCollection), while a
        # single delete returns a Status
        Leak(
            "Secret bodies (get/list/deletecollection responses)",
            "high",
            "RequestResponse",
            each(_BODY_READS, "secrets"),
        ),
        Leak(
            "TokenReview bodies (the bearer token under review)",
            "high",
            "Request",
            each(("create",), "tokenreviews", group="authentication.k8s.io", namespace=""),
        ),
        Leak(
            "TokenRequest responses (a new service account token)",
            "high",
            "RequestResponse",
            each(("create",), "serviceaccounts", subresource="token"),
        ),
        Leak(
            "ConfigMap bodies (create/update/patch)",
            "medium",
            "Request",
            each(_WRITE, "configmaps"),
        ),
        Leak(
            "ConfigMap bodies (get/list/deletecollection responses)",
            "medium",
            "RequestResponse",
            each(_BODY_READS, "configmaps"),
        ),
    )


LEAKS = _leaks()
