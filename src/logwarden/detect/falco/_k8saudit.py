"""Extractors of the k8saudit plugin's `ka.*` fields (the catalog is in fields.py).

Semantics follow the plugin's extract.go (table in tests/fixtures/falco/FIELDS.md). List
fields that take `[N]` select element N of the underlying array (container, volume,
rule, port, source IP) first and then extract from it, so the result is still a list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from logwarden.detect.audit_fields import (
    MISSING,
    Value,
    annotation_map,
    get,
    items,
    nonempty,
    pick,
    request,
    response,
    text,
)
from logwarden.records import Record

Extractor = Callable[[Record], Value]
Indexed = Callable[[int | None], Extractor]

# --- the typed view -----------------------------------------------------------------------


def user_name(rec: Record) -> Value:
    u = rec.view.user
    return u.username if u is not None else None


def user_groups(rec: Record) -> Value:
    u = rec.view.user
    return (u.groups or None) if u is not None else None


def impuser_name(rec: Record) -> Value:
    u = rec.view.impersonatedUser
    return u.username if u is not None else None


def response_reason(rec: Record) -> Value:
    s = rec.view.responseStatus
    return s.reason if s is not None else None


def annotation(key: str) -> Extractor:
    def extract(rec: Record) -> Value:  # text(get(annotation_map(rec), key)), inlined
        found = annotation_map(rec)
        if found.__class__ is not dict:
            return None
        value = found.get(key, MISSING)
        return value if value.__class__ is str else text(value)

    return extract


def uri_param(key: str) -> Extractor:
    def extract(rec: Record) -> Value:
        uri = rec.view.requestURI
        if not uri:
            return None
        for k, v in parse_qsl(urlsplit(uri).query, keep_blank_values=True):
            if k == key:
                return str(v)
        return None

    return extract


def target_pod_name(rec: Record) -> Value:
    o = rec.view.objectRef
    if o is None or o.resource != "pods" or o.subresource:
        return None
    return text(get(response(rec), "metadata", "name"))


def source_ips(index: int | None) -> Extractor:
    def extract(rec: Record) -> Value:
        return nonempty(pick(rec.view.sourceIPs or [], index))

    return extract


# --- request and response objects ---------------------------------------------------------


def request_path(*path: str) -> Extractor:
    def extract(rec: Record) -> Value:
        return text(get(request(rec), *path))

    return extract


def response_path(*path: str) -> Extractor:
    def extract(rec: Record) -> Value:
        return text(get(response(rec), *path))

    return extract


def _texts(values: list[Any]) -> list[str]:
    """Field values of JSON values, absent ones skipped."""
    return [t for v in values if (t := text(v)) is not None]


def subjects(kind: str | None, ns_names: bool = False) -> Extractor:
    def extract(rec: Record) -> Value:
        out: list[str] = []
        for s in items(get(request(rec), "subjects")):
            if kind is None:
                out.extend(_texts([s]))
            elif get(s, "kind") == kind and get(s, "name") is not MISSING:
                name = text(get(s, "name")) or ""
                if ns_names:
                    out.append(f"{text(get(s, 'namespace')) or ''}:{name}")
                else:
                    out.append(name)
        return nonempty(out)

    return extract


def role_rules(rec: Record) -> Value:
    return nonempty(_texts(items(get(request(rec), "rules"))))


def role_rules_key(key: str) -> Indexed:
    def make(index: int | None) -> Extractor:
        def extract(rec: Record) -> Value:
            out: list[str] = []
            for rule in pick(items(get(request(rec), "rules")), index):
                out.extend(_texts(items(get(rule, key))))
            return nonempty(out)

        return extract

    return make


def service_ports(index: int | None) -> Extractor:
    def extract(rec: Record) -> Value:
        ports = items(get(request(rec), "spec", "ports"))
        return nonempty(_texts(pick(ports, index)))

    return extract


def _volumes(rec: Record) -> Any:
    return get(request(rec), "spec", "volumes")


def volume_key(*path: str) -> Indexed:
    """A value of each volume (`hostPath.path`, `flexVolume.driver`)."""

    def make(index: int | None) -> Extractor:
        def extract(rec: Record) -> Value:
            vols = pick(items(_volumes(rec)), index)
            return nonempty(_texts([get(v, *path) for v in vols]))

        return extract

    return make


def volume_types(index: int | None) -> Extractor:
    def extract(rec: Record) -> Value:
        out: list[str] = []
        for v in pick(items(_volumes(rec)), index):
            if isinstance(v, dict):
                out.extend(k for k in v if k != "name")
        return nonempty(out)

    return extract


def volume_hostpath_flag(key: str) -> Extractor:
    """Deprecated `ka.req.volume.hostpath[path]`: "true" if a hostPath volume has `path`
    (or a path starting with it, for a key ending in `*`); no value without volumes."""
    prefix = key[:-1] if key.endswith("*") else None

    def extract(rec: Record) -> Value:
        vols = _volumes(rec)
        if not isinstance(vols, list):
            return None
        for v in vols:
            path = get(v, "hostPath", "path")
            if not isinstance(path, str):
                continue
            if path == key or (prefix is not None and path.startswith(prefix)):
                return "true"
        return "false"

    return extract


def repository(image: str) -> str:
    """The plugin's own cut of an image: at the first ':' (tag or registry port), then '@'."""
    return image.split(":", 1)[0].split("@", 1)[0]


def _containers(rec: Record, kind: str) -> Any:
    return get(request(rec), "spec", kind)


_SECURITY = {
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


def container_field(kind: str, attr: str) -> Indexed:
    """`ka.req.pod.<kind>.<attr>`: one value per container of `spec.<kind>` (or of
    container N only)."""

    def make(index: int | None) -> Extractor:
        def each(rec: Record) -> list[Any]:
            return [c for c in pick(items(_containers(rec, kind)), index) if isinstance(c, dict)]

        return _container_extractor(attr, each)

    return make


def _container_extractor(attr: str, each: Callable[[Record], list[Any]]) -> Extractor:
    if attr in _SECURITY:
        path = _SECURITY[attr]

        def simple(rec: Record) -> Value:
            return nonempty(_texts([get(c, *path) for c in each(rec)]))

        return simple
    if attr == "image.repository":

        def repositories(rec: Record) -> Value:
            return nonempty(
                [repository(i) for c in each(rec) if isinstance(i := c.get("image"), str)]
            )

        return repositories
    if attr in ("command", "args"):

        def joined(rec: Record) -> Value:
            out = [" ".join(_texts(c[attr])) for c in each(rec) if isinstance(c.get(attr), list)]
            return nonempty(out)

        return joined
    if attr == "host_port":

        def ports(rec: Record) -> Value:
            out: list[str] = []
            for c in each(rec):
                for p in items(c.get("ports")):
                    port = get(p, "hostPort")
                    if port is MISSING:
                        port = get(p, "containerPort")
                    out.extend(_texts([port]))
            return nonempty(out)

        return ports
    if attr in ("eff_run_as_user", "eff_run_as_group"):
        key = "runAsUser" if attr == "eff_run_as_user" else "runAsGroup"

        def effective(rec: Record) -> Value:
            pod = get(request(rec), "spec", "securityContext", key)
            out: list[str] = []
            for c in each(rec):
                v = get(c, "securityContext", key)
                if v is MISSING:
                    v = 0 if pod is MISSING else pod
                out.append(text(v) or "0")
            return nonempty(out)

        return effective
    raise KeyError(attr)


def first_container(attr: str) -> Extractor:
    """Deprecated `ka.req.container.image[.repository]`: of the first container."""

    def extract(rec: Record) -> Value:
        cs = items(_containers(rec, "containers"))
        if not cs:
            return None
        image = get(cs[0], "image")
        if not isinstance(image, str):
            return text(image)
        return image if attr == "image" else repository(image)

    return extract


def any_privileged(rec: Record) -> Value:
    """Deprecated `ka.req.container.privileged`: "true" if any container is privileged;
    no value without containers."""
    cs = _containers(rec, "containers")
    if not isinstance(cs, list):
        return None
    return "true" if any(get(c, "securityContext", "privileged") is True for c in cs) else "false"


def supplemental_groups(rec: Record) -> Value:
    groups = items(get(request(rec), "spec", "securityContext", "supplementalGroups"))
    return nonempty(_texts(groups))
