"""The fields Falco rules read from Kubernetes audit events: `ka.*`, `jevt.*`/`json.*`, `evt.*`.

Names and semantics follow the k8saudit and json plugins (see docs/falco.md and the table
in tests/fixtures/falco/FIELDS.md): every value is a string; non-string JSON values are
rendered as compact JSON text (`true`, `201`, `{"k":"v"}`), so `ka.response.code
startswith 2` works; a missing path is a missing value. List fields return every value,
and those marked ``idx`` take an optional ``[N]`` that selects one.

Two deliberate departures from the plugin's code, both where it reads paths that do not
exist in the Kubernetes schema: `ka.sourceips` reads the event's `sourceIPs` (the plugin
reads `requestObject.rules[].sourceIPs`), and `ka.req.pod.containers.eff_run_as_user` /
`eff_run_as_group` read `securityContext.runAsUser/runAsGroup` of the container, then of
the pod, else ``0``. The plugin's quirk of cutting `image.repository` at the first ``:``
(so ``host:5000/x`` gives ``host``) is kept, because allow-lists in real rule files are
written against it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from logwarden.detect.ir import Field
from logwarden.errors import RuleError
from logwarden.normalize.k8s_audit import AuditEvent, json_value
from logwarden.records import Record, format_time_ns

__all__ = ["FieldCatalog", "catalog"]

Value = str | list[str] | None
_json_encode = msgspec.json.encode


# --- lazily decoded parts of the event, cached on the record -------------------------


def _cached(rec: Record, key: str, make: Callable[[AuditEvent], Any]) -> Any:
    cache = rec.cache
    if cache is None:
        cache = rec.cache = {}
    try:
        return cache[key]
    except KeyError:
        value = cache[key] = make(rec.view)
        return value


def _req(rec: Record) -> Any:
    return _cached(rec, "req", lambda v: json_value(v.requestObject))


def _resp(rec: Record) -> Any:
    return _cached(rec, "resp", lambda v: json_value(v.responseObject))


def _annotations(rec: Record) -> Any:
    return _cached(rec, "ann", lambda v: json_value(v.annotations))


def _document(rec: Record) -> Any:
    """The whole event as plain JSON values (for pointers outside the typed view)."""
    cache = rec.cache
    if cache is None:
        cache = rec.cache = {}
    doc = cache.get("doc")
    if doc is None:
        doc = cache["doc"] = json_value(rec.raw)
    return doc


def text(value: Any) -> str | None:
    """A JSON value as a field value: strings as they are, anything else as compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return _json_encode(value).decode()


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _items(obj: Any) -> list[Any]:
    return obj if isinstance(obj, list) else []


def _nonempty(values: list[str]) -> list[str] | None:
    return values or None


# --- simple fields of the typed view --------------------------------------------------


def _user_name(rec: Record) -> Value:
    u = rec.view.user
    return u.username if u is not None else None


def _user_groups(rec: Record) -> Value:
    u = rec.view.user
    return (u.groups or None) if u is not None else None


def _impuser_name(rec: Record) -> Value:
    u = rec.view.impersonatedUser
    return u.username if u is not None else None


def _objref(attr: str) -> Callable[[Record], Value]:
    def extract(rec: Record) -> Value:
        o = rec.view.objectRef
        return getattr(o, attr) if o is not None else None

    return extract


def _response_code(rec: Record) -> Value:
    s = rec.view.responseStatus
    if s is None or s.code is None:
        return None
    return str(s.code)


def _response_reason(rec: Record) -> Value:
    s = rec.view.responseStatus
    return s.reason if s is not None else None


def _annotation(key: str) -> Callable[[Record], Value]:
    def extract(rec: Record) -> Value:
        ann = _annotations(rec)
        return text(ann.get(key)) if isinstance(ann, dict) else None

    return extract


def _uri_param(key: str) -> Callable[[Record], Value]:
    def extract(rec: Record) -> Value:
        uri = rec.view.requestURI
        if not uri:
            return None
        for k, v in parse_qsl(urlsplit(uri).query, keep_blank_values=True):
            if k == key:
                return str(v)
        return None

    return extract


def _target_pod_name(rec: Record) -> Value:
    o = rec.view.objectRef
    if o is None or o.resource != "pods" or o.subresource:
        return None
    return text(_get(_resp(rec), "metadata", "name"))


def _source_ips(rec: Record) -> Value:
    return rec.view.sourceIPs or None


# --- request object fields --------------------------------------------------------------


def _req_path(*path: str) -> Callable[[Record], Value]:
    def extract(rec: Record) -> Value:
        return text(_get(_req(rec), *path))

    return extract


def _resp_path(*path: str) -> Callable[[Record], Value]:
    def extract(rec: Record) -> Value:
        return text(_get(_resp(rec), *path))

    return extract


def _subjects(kind: str | None, ns_names: bool = False) -> Callable[[Record], Value]:
    def extract(rec: Record) -> Value:
        out: list[str] = []
        for s in _items(_get(_req(rec), "subjects")):
            if kind is None:
                out.append(text(s) or "")
            elif isinstance(s, dict) and s.get("kind") == kind and "name" in s:
                if ns_names:
                    out.append(f"{text(s.get('namespace')) or ''}:{text(s['name'])}")
                else:
                    out.append(text(s["name"]) or "")
        return _nonempty(out)

    return extract


def _role_rules(rec: Record) -> Value:
    return _nonempty([text(r) or "" for r in _items(_get(_req(rec), "rules"))])


def _role_rules_key(key: str) -> Callable[[Record], Value]:
    def extract(rec: Record) -> Value:
        out: list[str] = []
        for rule in _items(_get(_req(rec), "rules")):
            for v in _items(_get(rule, key)):
                t = text(v)
                if t is not None:
                    out.append(t)
        return _nonempty(out)

    return extract


def _service_ports(rec: Record) -> Value:
    return _nonempty([text(p) or "" for p in _items(_get(_req(rec), "spec", "ports"))])


def _spec(rec: Record) -> Any:
    return _get(_req(rec), "spec")


def _volumes(rec: Record) -> list[Any]:
    return _items(_get(_spec(rec), "volumes"))


def _volume_hostpaths(rec: Record) -> Value:
    out = [text(p) for v in _volumes(rec) if (p := _get(v, "hostPath", "path")) is not None]
    return _nonempty([p for p in out if p is not None])


def _volume_flex_drivers(rec: Record) -> Value:
    out = [text(d) for v in _volumes(rec) if (d := _get(v, "flexVolume", "driver")) is not None]
    return _nonempty([d for d in out if d is not None])


def _volume_types(rec: Record) -> Value:
    out: list[str] = []
    for v in _volumes(rec):
        if isinstance(v, dict):
            out.extend(k for k in v if k != "name")
    return _nonempty(out)


def _volume_hostpath_flag(key: str) -> Callable[[Record], Value]:
    prefix = key[:-1] if key.endswith("*") else None

    def extract(rec: Record) -> Value:
        for v in _volumes(rec):
            path = _get(v, "hostPath", "path")
            if not isinstance(path, str):
                continue
            if path == key or (prefix is not None and path.startswith(prefix)):
                return "true"
        return "false"

    return extract


def _repository(image: str) -> str:
    # the plugin's own cut: at the first ':' (tag or registry port), then at '@'
    return image.split(":", 1)[0].split("@", 1)[0]


def _containers(rec: Record, kind: str) -> list[Any]:
    return [c for c in _items(_get(_spec(rec), kind)) if isinstance(c, dict)]


def _container_field(kind: str, attr: str) -> Callable[[Record], Value]:
    """A per-container list field of `spec.<kind>[]`."""
    spec_attr = {
        "privileged": ("securityContext", "privileged"),
        "allow_privilege_escalation": ("securityContext", "allowPrivilegeEscalation"),
        "read_only_fs": ("securityContext", "readOnlyRootFilesystem"),
        "run_as_user": ("securityContext", "runAsUser"),
        "run_as_group": ("securityContext", "runAsGroup"),
        "proc_mount": ("securityContext", "procMount"),
        "add_capabilities": ("securityContext", "capabilities", "add"),
        "name": ("name",),
        "image": ("image",),
    }

    def each(rec: Record) -> list[Any]:
        return _containers(rec, kind)

    if attr in spec_attr:
        path = spec_attr[attr]

        def extract(rec: Record) -> Value:
            out = [text(_get(c, *path)) for c in each(rec)]
            return _nonempty([v for v in out if v is not None])

        return extract
    if attr == "image.repository":

        def repository(rec: Record) -> Value:
            out = [_repository(i) for c in each(rec) if isinstance(i := c.get("image"), str)]
            return _nonempty(out)

        return repository
    if attr in ("command", "args"):

        def joined(rec: Record) -> Value:
            out: list[str] = []
            for c in each(rec):
                parts = c.get(attr)
                if isinstance(parts, list):
                    out.append(" ".join(text(p) or "" for p in parts))
            return _nonempty(out)

        return joined
    if attr == "host_port":

        def ports(rec: Record) -> Value:
            out: list[str] = []
            for c in each(rec):
                for p in _items(c.get("ports")):
                    port = _get(p, "hostPort")
                    if port is None:
                        port = _get(p, "containerPort")
                    if port is not None:
                        out.append(text(port) or "")
            return _nonempty(out)

        return ports
    if attr in ("eff_run_as_user", "eff_run_as_group"):
        key = "runAsUser" if attr == "eff_run_as_user" else "runAsGroup"

        def effective(rec: Record) -> Value:
            pod = _get(_spec(rec), "securityContext", key)
            out: list[str] = []
            for c in each(rec):
                v = _get(c, "securityContext", key)
                if v is None:
                    v = pod if pod is not None else 0
                out.append(text(v) or "0")
            return _nonempty(out)

        return effective
    raise KeyError(attr)


def _first_container(attr: str) -> Callable[[Record], Value]:
    def extract(rec: Record) -> Value:
        cs = _containers(rec, "containers")
        if not cs:
            return None
        image = cs[0].get("image")
        if not isinstance(image, str):
            return None
        return image if attr == "image" else _repository(image)

    return extract


def _any_privileged(rec: Record) -> Value:
    for c in _containers(rec, "containers"):
        if _get(c, "securityContext", "privileged") is True:
            return "true"
    return "false"


def _supplemental_groups(rec: Record) -> Value:
    groups = _items(_get(_spec(rec), "securityContext", "supplementalGroups"))
    return _nonempty([t for g in groups if (t := text(g)) is not None])


# --- json plugin and generic event fields ------------------------------------------------

_TYPED_TOP = {
    "kind",
    "apiVersion",
    "level",
    "auditID",
    "stage",
    "requestURI",
    "verb",
    "userAgent",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "timestamp",
}
_RAW_TOP = {"requestObject": _req, "responseObject": _resp, "annotations": _annotations}


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _walk(obj: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(obj, dict):
            if token not in obj:
                return None
            obj = obj[token]
        elif isinstance(obj, list):
            if not token.isdigit() or int(token) >= len(obj):
                return None
            obj = obj[int(token)]
        else:
            return None
    return obj


def _json_pointer(pointer: str) -> Callable[[Record], Value]:
    if pointer == "":
        return lambda rec: text(_document(rec))
    tokens = [_unescape(t) for t in pointer.split("/")[1:]]
    top, rest = tokens[0], tokens[1:]
    if top in _TYPED_TOP and not rest:

        def typed(rec: Record) -> Value:
            return text(getattr(rec.view, top))

        return typed
    if top in _RAW_TOP:
        part = _RAW_TOP[top]

        def lazy(rec: Record) -> Value:
            return text(_walk(part(rec), rest))

        return lazy

    def whole(rec: Record) -> Value:
        return text(_walk(_document(rec), tokens))

    return whole


def _obj(rec: Record) -> Value:
    return msgspec.json.format(rec.raw, indent=2).decode()


def _rawtime(rec: Record) -> Value:
    return str(rec.time_ns)


def _evt_time(rec: Record) -> Value:
    secs, frac = divmod(rec.time_ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%H:%M:%S") + f".{frac:09d}"


def _evt_time_s(rec: Record) -> Value:
    return datetime.fromtimestamp(rec.time_ns // 1_000_000_000, UTC).strftime("%H:%M:%S")


def _evt_datetime(rec: Record) -> Value:
    secs, frac = divmod(rec.time_ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%d %H:%M:%S") + f".{frac:09d}"


def _evt_datetime_s(rec: Record) -> Value:
    return datetime.fromtimestamp(rec.time_ns // 1_000_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S")


_HOSTNAME = socket.gethostname()


# --- the catalog ---------------------------------------------------------------------------

Maker = Callable[[str | None], Callable[[Record], Value]]


class _Spec:
    """How to make a field: `make(arg)`, whether it is a list, what argument it takes."""

    def __init__(
        self,
        make: Maker,
        *,
        is_list: bool = False,
        arg: str | None = None,
        indexable: bool = False,
        expr: str | None = None,
    ) -> None:
        self.make = make
        self.is_list = is_list
        self.arg = arg  # None, "idx" (optional index), "key" (required key)
        self.indexable = indexable
        self.expr = expr  # inline form of the extractor, see ir.Field


def _objref_expr(attr: str) -> str:
    return f"_o.{attr} if (_o := r.view.objectRef) is not None else None"


_USER_NAME = "_u.username if (_u := r.view.user) is not None else None"
_RESPONSE_CODE = (
    "str(_s.code) if (_s := r.view.responseStatus) is not None and _s.code is not None else None"
)


def _plain(fn: Callable[[Record], Value], **kw: Any) -> _Spec:
    return _Spec(lambda _arg: fn, **kw)


def _keyed(make: Callable[[str], Callable[[Record], Value]]) -> _Spec:
    return _Spec(lambda arg: make(arg or ""), arg="key")


def _list(fn: Callable[[Record], Value]) -> _Spec:
    return _Spec(lambda _arg: fn, is_list=True, arg="idx")


def _specs() -> dict[str, _Spec]:
    s: dict[str, _Spec] = {
        "ka.auditid": _plain(lambda r: r.view.auditID, expr="r.view.auditID"),
        "ka.stage": _plain(lambda r: r.view.stage, expr="r.view.stage"),
        "ka.auth.decision": _plain(_annotation("authorization.k8s.io/decision")),
        "ka.auth.reason": _plain(_annotation("authorization.k8s.io/reason")),
        "ka.auth.openshift.decision": _plain(_annotation("authentication.openshift.io/decision")),
        "ka.auth.openshift.username": _plain(_annotation("authentication.openshift.io/username")),
        "ka.validations.admission.policy.failure": _plain(
            _annotation("validation.policy.admission.k8s.io/validation_failure")
        ),
        "ka.security.pod.violations": _plain(
            _annotation("pod-security.kubernetes.io/audit-violations")
        ),
        "ka.user.name": _plain(_user_name, expr=_USER_NAME),
        "ka.user.groups": _Spec(lambda _a: _user_groups, is_list=True),
        "ka.impuser.name": _plain(_impuser_name),
        "ka.verb": _plain(lambda r: r.view.verb, expr="r.view.verb"),
        "ka.uri": _plain(lambda r: r.view.requestURI, expr="r.view.requestURI"),
        "ka.uri.param": _keyed(_uri_param),
        "ka.target.name": _plain(_objref("name"), expr=_objref_expr("name")),
        "ka.target.namespace": _plain(_objref("namespace"), expr=_objref_expr("namespace")),
        "ka.target.resource": _plain(_objref("resource")),
        "ka.target.subresource": _plain(_objref("subresource")),
        "ka.target.pod.name": _plain(_target_pod_name),
        "ka.req.binding.subjects": _Spec(lambda _a: _subjects(None), is_list=True),
        "ka.req.binding.subjects.user_names": _Spec(lambda _a: _subjects("User"), is_list=True),
        "ka.req.binding.subjects.serviceaccount_names": _Spec(
            lambda _a: _subjects("ServiceAccount"), is_list=True
        ),
        "ka.req.binding.subjects.serviceaccount_ns_names": _Spec(
            lambda _a: _subjects("ServiceAccount", ns_names=True), is_list=True
        ),
        "ka.req.binding.subjects.group_names": _Spec(lambda _a: _subjects("Group"), is_list=True),
        "ka.req.binding.role": _plain(_req_path("roleRef", "name")),
        "ka.req.binding.subject.has_name": _keyed(lambda _k: lambda _r: "true"),
        "ka.req.configmap.name": _plain(_objref("name")),
        "ka.req.configmap.obj": _plain(_req_path("data")),
        "ka.req.container.image": _plain(_first_container("image")),
        "ka.req.container.image.repository": _plain(_first_container("image.repository")),
        "ka.req.container.privileged": _plain(_any_privileged),
        "ka.req.container.host_network": _plain(_req_path("spec", "hostNetwork")),
        "ka.req.pod.host_ipc": _plain(_req_path("spec", "hostIPC")),
        "ka.req.pod.host_network": _plain(_req_path("spec", "hostNetwork")),
        "ka.req.pod.host_pid": _plain(_req_path("spec", "hostPID")),
        "ka.req.pod.run_as_user": _plain(_req_path("spec", "securityContext", "runAsUser")),
        "ka.req.pod.run_as_group": _plain(_req_path("spec", "securityContext", "runAsGroup")),
        "ka.req.pod.fs_group": _plain(_req_path("spec", "securityContext", "fsGroup")),
        "ka.req.pod.supplemental_groups": _Spec(lambda _a: _supplemental_groups, is_list=True),
        "ka.req.pod.volumes.hostpath": _list(_volume_hostpaths),
        "ka.req.pod.volumes.flexvolume_driver": _list(_volume_flex_drivers),
        "ka.req.pod.volumes.volume_type": _list(_volume_types),
        "ka.req.volume.hostpath": _keyed(_volume_hostpath_flag),
        "ka.req.role.rules": _Spec(lambda _a: _role_rules, is_list=True),
        "ka.req.service.type": _plain(_req_path("spec", "type")),
        "ka.req.service.ports": _list(_service_ports),
        "ka.resp.name": _plain(_resp_path("metadata", "name")),
        "ka.response.code": _plain(_response_code, expr=_RESPONSE_CODE),
        "ka.response.reason": _plain(_response_reason),
        "ka.useragent": _plain(lambda r: r.view.userAgent, expr="r.view.userAgent"),
        "ka.sourceips": _list(_source_ips),
        "ka.cluster.name": _plain(_annotation("cluster_name")),
        "jevt.value": _Spec(lambda arg: _json_pointer(arg or ""), arg="key"),
        "jevt.obj": _plain(_obj),
        "jevt.rawtime": _plain(_rawtime),
        "evt.time": _plain(_evt_time),
        "evt.time.s": _plain(_evt_time_s),
        "evt.time.iso8601": _plain(lambda r: format_time_ns(r.time_ns)),
        "evt.datetime": _plain(_evt_datetime),
        "evt.datetime.s": _plain(_evt_datetime_s),
        "evt.rawtime": _plain(_rawtime),
        "evt.rawtime.s": _plain(lambda r: str(r.time_ns // 1_000_000_000)),
        "evt.rawtime.ns": _plain(lambda r: str(r.time_ns % 1_000_000_000)),
        "evt.source": _plain(lambda r: r.source),
        "evt.num": _plain(lambda r: str(r.seq)),
        "evt.hostname": _plain(lambda _r: _HOSTNAME),
    }
    for key in ("apiGroups", "nonResourceURLs", "verbs", "resources"):
        s[f"ka.req.role.rules.{key}"] = _list(_role_rules_key(key))
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
            s[f"ka.req.pod.{kind}.{attr}"] = _list(_container_field(kind, attr))
    s["json.value"] = s["jevt.value"]
    s["json.obj"] = s["jevt.obj"]
    s["json.rawtime"] = s["jevt.rawtime"]
    return s


# Fields with few distinct values, usable by the rule index. Every spelling of one of these
# values resolves to the same Field object, so the index sees one key.
_INDEX_KEYS: dict[tuple[str, str | None], str] = {
    ("ka.stage", None): "/stage",
    ("ka.verb", None): "/verb",
    ("ka.target.resource", None): "/objectRef/resource",
    ("ka.target.subresource", None): "/objectRef/subresource",
}
_INDEX_EXTRACT: dict[str, tuple[Callable[[Record], Value], str]] = {
    "/stage": (lambda r: r.view.stage, "r.view.stage"),
    "/verb": (lambda r: r.view.verb, "r.view.verb"),
    "/objectRef/resource": (_objref("resource"), _objref_expr("resource")),
    "/objectRef/subresource": (_objref("subresource"), _objref_expr("subresource")),
}


class FieldCatalog:
    """Resolves a Falco field reference (`name`, optional `[arg]`) to an engine Field."""

    def __init__(self) -> None:
        self._specs = _specs()
        self._made: dict[tuple[str, str | None], Field] = {}
        self._index_fields = {
            ptr: Field(name=f"jevt.value[{ptr}]", extract=fn, indexable=True, expr=expr)
            for ptr, (fn, expr) in _INDEX_EXTRACT.items()
        }

    def known(self, name: str) -> bool:
        return name in self._specs

    def field(self, name: str, arg: str | None = None) -> Field:
        """The Field for `name[arg]`; raises RuleError (without location) if invalid."""
        key = (name, arg)
        made = self._made.get(key)
        if made is not None:
            return made
        ptr = _INDEX_KEYS.get(key)
        if ptr is None and name in ("jevt.value", "json.value") and arg in _INDEX_EXTRACT:
            ptr = arg
        if ptr is not None:
            made = self._made[key] = self._index_fields[ptr]
            return made
        spec = self._specs.get(name)
        if spec is None:
            raise RuleError(f"unknown field '{name}'")
        made = self._made[key] = self._make(name, arg, spec)
        return made

    @staticmethod
    def _make(name: str, arg: str | None, spec: _Spec) -> Field:
        shown = name if arg is None else f"{name}[{arg}]"
        if spec.arg is None and arg is not None:
            raise RuleError(f"field '{name}' takes no argument, got '[{arg}]'")
        if spec.arg == "key" and not arg:
            raise RuleError(f"field '{name}' needs an argument, as in '{name}[...]'")
        if name in ("jevt.value", "json.value") and arg and not arg.startswith("/"):
            raise RuleError(f"'{shown}': a JSON pointer starts with '/'")
        if spec.arg == "idx" and arg is not None:
            if not arg.isdigit():
                raise RuleError(f"'{shown}': the index must be a number")
            whole = spec.make(None)
            index = int(arg)

            def one(rec: Record) -> Value:
                values = whole(rec)
                if isinstance(values, list) and index < len(values):
                    return values[index]
                return None

            return Field(name=shown, extract=one)
        return Field(name=shown, extract=spec.make(arg), is_list=spec.is_list, expr=spec.expr)


_catalog: FieldCatalog | None = None


def catalog() -> FieldCatalog:
    """The shared catalog (fields are interned, so rules share extractors)."""
    global _catalog
    if _catalog is None:
        _catalog = FieldCatalog()
    return _catalog
