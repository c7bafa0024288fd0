"""The fields Falco rules read from Kubernetes audit events: `ka.*`, `jevt.*`/`json.*`, `evt.*`.

Names and semantics follow the k8saudit and json plugins (see docs/falco.md and the table
in tests/fixtures/falco/FIELDS.md): every value is a string; other JSON values are
rendered as compact JSON text (`true`, `201`, `null`, `{"k":"v"}`), so `ka.response.code
startswith 2` works; an absent path is a missing value. List fields return every value,
and those taking `[N]` select element N of the array they read.

Two deliberate departures from the plugin's code, both where it reads paths that do not
exist in the Kubernetes schema: `ka.sourceips` reads the event's `sourceIPs` (the plugin
reads `requestObject.rules[].sourceIPs`), and `ka.req.pod.containers.eff_run_as_user` /
`eff_run_as_group` read `securityContext.runAsUser/runAsGroup` of the container, then of
the pod, else ``0``. The plugin's quirk of cutting `image.repository` at the first ``:``
(so ``host:5000/x`` gives ``host``) is kept, because allow-lists in real rule files are
written against it.

The extractors live in `_k8saudit.py` (`ka.*`) and `_json.py` (`jevt.*`, `evt.*`); this
module is the catalog that names them.
"""

from __future__ import annotations

from collections.abc import Callable

from logwarden.detect.audit_fields import CANONICAL, Value
from logwarden.detect.falco import _json as j
from logwarden.detect.falco import _k8saudit as k
from logwarden.detect.ir import Field
from logwarden.errors import RuleError
from logwarden.records import Record

__all__ = ["FieldCatalog", "UnknownField", "catalog"]

Extractor = Callable[[Record], Value]


class UnknownField(RuleError):
    """A rule names a field logwarden does not know (Falco's "nonexistent field")."""


class _Spec:
    """How to make a field: `make(arg)`, whether it is a list, what argument it takes."""

    def __init__(
        self,
        make: Callable[[str | None], Extractor],
        *,
        is_list: bool = False,
        arg: str | None = None,
        expr: str | None = None,
    ) -> None:
        self.make = make
        self.is_list = is_list
        self.arg = arg  # None, "idx" (optional index), "key" (required key)
        self.expr = expr  # the value as an expression over the record `r` (see ir.Field)


def _plain(fn: Extractor) -> _Spec:
    return _Spec(lambda _arg: fn)


def _canonical(path: str) -> _Spec:
    """A field that reads a canonical value (`FieldCatalog.field` resolves it to the shared
    Field; the spec says the name is known and takes no argument)."""
    return _plain(CANONICAL[path].extract)


def _keyed(make: Callable[[str], Extractor]) -> _Spec:
    return _Spec(lambda arg: make(arg or ""), arg="key")


def _all(fn: Extractor) -> _Spec:
    """A list field without an index argument."""
    return _Spec(lambda _arg: fn, is_list=True)


def _indexed(make: Callable[[int | None], Extractor]) -> _Spec:
    """A list field that takes an optional `[N]`."""
    return _Spec(lambda arg: make(None if arg is None else int(arg)), is_list=True, arg="idx")


def _specs() -> dict[str, _Spec]:
    s: dict[str, _Spec] = {
        "ka.auditid": _plain(lambda r: r.view.auditID),
        "ka.stage": _plain(lambda r: r.view.stage),
        "ka.auth.decision": _plain(k.annotation("authorization.k8s.io/decision")),
        "ka.auth.reason": _plain(k.annotation("authorization.k8s.io/reason")),
        "ka.auth.openshift.decision": _plain(k.annotation("authentication.openshift.io/decision")),
        "ka.auth.openshift.username": _plain(k.annotation("authentication.openshift.io/username")),
        "ka.validations.admission.policy.failure": _plain(
            k.annotation("validation.policy.admission.k8s.io/validation_failure")
        ),
        "ka.security.pod.violations": _plain(
            k.annotation("pod-security.kubernetes.io/audit-violations")
        ),
        "ka.user.name": _plain(k.user_name),
        "ka.user.groups": _all(k.user_groups),
        "ka.impuser.name": _plain(k.impuser_name),
        "ka.verb": _plain(lambda r: r.view.verb),
        "ka.uri": _plain(lambda r: r.view.requestURI),
        "ka.uri.param": _keyed(k.uri_param),
        "ka.target.name": _canonical("objectRef.name"),
        "ka.target.namespace": _canonical("objectRef.namespace"),
        "ka.target.resource": _canonical("objectRef.resource"),
        "ka.target.subresource": _canonical("objectRef.subresource"),
        "ka.target.pod.name": _plain(k.target_pod_name),
        "ka.req.binding.subjects": _all(k.subjects(None)),
        "ka.req.binding.subjects.user_names": _all(k.subjects("User")),
        "ka.req.binding.subjects.serviceaccount_names": _all(k.subjects("ServiceAccount")),
        "ka.req.binding.subjects.serviceaccount_ns_names": _all(
            k.subjects("ServiceAccount", ns_names=True)
        ),
        "ka.req.binding.subjects.group_names": _all(k.subjects("Group")),
        "ka.req.binding.role": _plain(k.request_path("roleRef", "name")),
        "ka.req.binding.subject.has_name": _keyed(lambda _key: lambda _r: "true"),
        "ka.req.configmap.name": _canonical("objectRef.name"),
        "ka.req.configmap.obj": _plain(k.request_path("data")),
        "ka.req.container.image": _plain(k.first_container("image")),
        "ka.req.container.image.repository": _plain(k.first_container("image.repository")),
        "ka.req.container.privileged": _plain(k.any_privileged),
        "ka.req.container.host_network": _plain(k.request_path("spec", "hostNetwork")),
        "ka.req.pod.host_ipc": _plain(k.request_path("spec", "hostIPC")),
        "ka.req.pod.host_network": _plain(k.request_path("spec", "hostNetwork")),
        "ka.req.pod.host_pid": _plain(k.request_path("spec", "hostPID")),
        "ka.req.pod.run_as_user": _plain(k.request_path("spec", "securityContext", "runAsUser")),
        "ka.req.pod.run_as_group": _plain(k.request_path("spec", "securityContext", "runAsGroup")),
        "ka.req.pod.fs_group": _plain(k.request_path("spec", "securityContext", "fsGroup")),
        "ka.req.pod.supplemental_groups": _all(k.supplemental_groups),
        "ka.req.pod.volumes.hostpath": _indexed(k.volume_key("hostPath", "path")),
        "ka.req.pod.volumes.flexvolume_driver": _indexed(k.volume_key("flexVolume", "driver")),
        "ka.req.pod.volumes.volume_type": _indexed(k.volume_types),
        "ka.req.volume.hostpath": _keyed(k.volume_hostpath_flag),
        "ka.req.role.rules": _all(k.role_rules),
        "ka.req.service.type": _plain(k.request_path("spec", "type")),
        "ka.req.service.ports": _indexed(k.service_ports),
        "ka.resp.name": _plain(k.response_path("metadata", "name")),
        "ka.response.code": _canonical("responseStatus.code"),
        "ka.response.reason": _plain(k.response_reason),
        "ka.useragent": _plain(lambda r: r.view.userAgent),
        "ka.sourceips": _indexed(k.source_ips),
        "ka.cluster.name": _plain(k.annotation("cluster_name")),
        "jevt.value": _Spec(lambda arg: j.json_pointer(arg or ""), arg="key"),
        "jevt.obj": _plain(j.obj),
        "jevt.rawtime": _Spec(lambda _arg: j.rawtime, expr="str(r.time_ns)"),
        "evt.time": _plain(j.evt_time),
        "evt.time.s": _plain(j.evt_time_s),
        "evt.time.iso8601": _plain(j.evt_iso8601),
        "evt.datetime": _plain(j.evt_datetime),
        "evt.datetime.s": _plain(j.evt_datetime_s),
        "evt.rawtime": _Spec(lambda _arg: j.rawtime, expr="str(r.time_ns)"),
        "evt.rawtime.s": _plain(lambda r: str(r.time_ns // 1_000_000_000)),
        "evt.rawtime.ns": _plain(lambda r: str(r.time_ns % 1_000_000_000)),
        "evt.source": _plain(lambda r: r.source),
        "evt.num": _plain(lambda r: str(r.seq)),
        "evt.hostname": _plain(j.hostname),
    }
    for key in ("apiGroups", "nonResourceURLs", "verbs", "resources"):
        s[f"ka.req.role.rules.{key}"] = _indexed(k.role_rules_key(key))
    attrs = [
        "name",
        "image",
        "image.repository",
        "command",
        "args",
        "host_port",
        "privileged",
        "allow_privilege_escalation",
        "read_only_fs",
        "run_as_user",
        "eff_run_as_user",
        "run_as_group",
        "eff_run_as_group",
        "proc_mount",
        "add_capabilities",
    ]
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        for attr in attrs:
            if kind == "ephemeralContainers" and attr == "host_port":
                continue
            s[f"ka.req.pod.{kind}.{attr}"] = _indexed(k.container_field(kind, attr))
    s["json.value"] = s["jevt.value"]
    s["json.obj"] = s["jevt.obj"]
    s["json.rawtime"] = s["jevt.rawtime"]
    return s


# Falco fields that read a canonical value of the audit record: they resolve to the shared
# Field object (detect/audit_fields.py), so rules of every format share one extraction and
# the rule index sees one key per value.
_CANONICAL: dict[str, str] = {
    "ka.stage": "stage",
    "ka.verb": "verb",
    "ka.target.resource": "objectRef.resource",
    "ka.target.subresource": "objectRef.subresource",
    "ka.target.namespace": "objectRef.namespace",
    "ka.target.name": "objectRef.name",
    "ka.req.configmap.name": "objectRef.name",
    "ka.user.name": "user.username",
    "ka.response.code": "responseStatus.code",
    "ka.auditid": "auditID",
    "ka.uri": "requestURI",
    "ka.useragent": "userAgent",
}


class FieldCatalog:
    """Resolves a Falco field reference (`name`, optional `[arg]`) to an engine Field."""

    def __init__(self) -> None:
        self._specs = _specs()
        self._made: dict[tuple[str, str | None], Field] = {}
        #: every field name, longest first (output placeholders match the longest)
        self.names = sorted(self._specs, key=len, reverse=True)

    def takes_argument(self, name: str) -> bool:
        return self._specs[name].arg is not None

    def field(self, name: str, arg: str | None = None) -> Field:
        """The Field for `name[arg]`; raises RuleError (without location) if invalid."""
        if name in ("jevt.value", "json.value") and arg is not None:
            arg = j.normalize_pointer(arg)
        key = (name, arg)
        made = self._made.get(key)
        if made is not None:
            return made
        path = _CANONICAL.get(name) if arg is None else None
        if name in ("jevt.value", "json.value") and arg:
            path = arg[1:].replace("/", ".") if "~" not in arg else None
        if path is not None and path in CANONICAL:
            made = self._made[key] = CANONICAL[path]
            return made
        spec = self._specs.get(name)
        if spec is None:
            raise UnknownField(f"unknown field '{name}'")
        made = self._made[key] = self._make(name, arg, spec)
        return made

    @staticmethod
    def _make(name: str, arg: str | None, spec: _Spec) -> Field:
        shown = name if arg is None else f"{name}[{arg}]"
        if spec.arg is None and arg is not None:
            raise RuleError(f"field '{name}' takes no argument, got '[{arg}]'")
        if spec.arg == "key" and not arg:
            raise RuleError(f"field '{name}' needs an argument, as in '{name}[...]'")
        if spec.arg == "idx" and arg is not None and not (arg.isascii() and arg.isdigit()):
            raise RuleError(f"'{shown}': the index must be a number")
        return Field(name=shown, extract=spec.make(arg), is_list=spec.is_list, expr=spec.expr)


_catalog: FieldCatalog | None = None


def catalog() -> FieldCatalog:
    """The shared catalog (fields are interned, so rules share extractors)."""
    global _catalog
    if _catalog is None:
        _catalog = FieldCatalog()
    return _catalog
