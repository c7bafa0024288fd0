"""YAML and JSON inputs: multi-document files, `List` kinds, rendered Helm and kustomize output.

Each document is composed by `inputs.loader` (libyaml, with limits on aliases) so the
node tree, with its line marks, stays next to the plain data. A document is then
classified by what it holds: a Kubernetes object (anything with `apiVersion` and `kind`,
`List` items unpacked), a docker-compose file, a Docker daemon.json, or a managed
cluster's cloud description (EKS describe-cluster, AKS diagnostic settings, GKE cluster).
Objects that embed other configuration (nginx in ConfigMaps, ingress-nginx snippets,
audit policies in ConfigMaps) are unpacked here too, with line numbers that point into
the outer file.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from logwarden.posture.inputs import cloud, loader
from logwarden.posture.inputs.nginx import NginxParser
from logwarden.posture.inputs.shapes import field_name, shape_errors
from logwarden.posture.model import Inventory, K8sObject, Located

__all__ = ["read_documents", "unpack_object"]

_NGINX_HINT = re.compile(r"\b(access_log|error_log)\b")
#: a configuration can discard logs only if it says one of these; others need no parsing
_DISCARD_HINT = re.compile(r"""\b(?:access|error)_log\s+["']?off\b|/dev/null""")
#: ingress-nginx's snippet keys (`http-snippet`, `server-snippet`, ...) and annotations
#: (`nginx.ingress.kubernetes.io/configuration-snippet`, ...) hold raw nginx configuration
_SNIPPET = "-snippet"
_ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io/"
#: configuration kept in ConfigMap values: kind -> its API group
_EMBEDDED = {
    "Policy": "audit.k8s.io",
    "ClusterConfiguration": "kubeadm.k8s.io",
    "KubeletConfiguration": "kubelet.config.k8s.io",
}
_WHAT = {
    "Policy": "audit policy",
    "ClusterConfiguration": "kubeadm configuration",
    "KubeletConfiguration": "kubelet configuration",
}
#: a value that does not parse is still reported as broken configuration when it says this
_KIND_HINT = re.compile(
    r"""^\s*["']?kind["']?\s*:\s*["']?(Policy|ClusterConfiguration|KubeletConfiguration)\b""",
    re.MULTILINE,
)
_SKIPPED_KINDS = {"Kustomization", "Component", "HelmRelease"}


def _load(text: str, file: str, inv: Inventory) -> list[tuple[Any, yaml.Node]] | None:
    try:
        json = file.lower().endswith(".json")
        return loader.load_all(loader.join_surrogates(text) if json else text)
    except loader.YamlError as exc:
        if exc.syntax and "{{" in text:
            inv.notes.append(f"{file}: skipped: an unrendered template (render it first)")
            return None
        line = f":{exc.line}" if exc.line is not None else ""
        what = "not valid YAML or JSON" if exc.syntax else "refused"
        inv.rejects.report(f"{file}{line}", f"{what}: {exc.problem}")
        return None


def read_documents(path: str, text: str, inv: Inventory, nginx: NginxParser) -> None:
    """Parse every document of one YAML or JSON file into `inv`."""
    docs = _load(text, path, inv)
    if docs is None:
        return
    name = path.rsplit("/", 1)[-1]
    for data, node in docs:
        if isinstance(data, dict):
            _classify(data, node, path, name, inv, nginx)
        elif isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
            cloud.classify_list(Located(data, path, node), inv)


def _classify(
    data: dict[str, Any],
    node: yaml.Node,
    path: str,
    name: str,
    inv: Inventory,
    nginx: NginxParser,
) -> None:
    kind = data.get("kind")
    api_version = data.get("apiVersion")
    if isinstance(kind, str) and isinstance(api_version, str):
        items = data.get("items")
        if kind.endswith("List") and isinstance(items, list):
            items_node = _child(node, "items")
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    sub = items_node.value[i] if isinstance(items_node, yaml.SequenceNode) else None
                    item.setdefault("kind", kind[: -len("List")])
                    item.setdefault("apiVersion", api_version)
                    _classify(item, sub or node, path, name, inv, nginx)
            return
        if kind in _SKIPPED_KINDS:
            return
        unpack_object(_object(data, node, path), inv, nginx)
        return
    if name == "daemon.json" or "log-driver" in data or "log-opts" in data:
        inv.daemon_json.append(Located(data, path, node))
    elif isinstance(data.get("services"), dict) and (
        "compose" in name or _looks_like_compose(data["services"])
    ):
        inv.compose.append(Located(data, path, node))
    else:
        cloud.classify(Located(data, path, node), inv)


def _looks_like_compose(services: dict[str, Any]) -> bool:
    return any(isinstance(s, dict) and ("image" in s or "build" in s) for s in services.values())


def _object(data: dict[str, Any], node: yaml.Node | None, path: str | None) -> K8sObject:
    meta = data.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return K8sObject(
        data=data,
        file=path,
        node=node,
        kind=str(data.get("kind", "")),
        api_version=str(data.get("apiVersion", "")),
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace") or ""),
    )


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                found: yaml.Node = v
                return found
    return None


def unpack_object(obj: K8sObject, inv: Inventory, nginx: NginxParser) -> None:
    """Add `obj` to `inv`, and whatever configuration it embeds; an object with fields of
    the wrong type is reported (every such field, with its line) and left out."""
    errors = shape_errors(obj)
    if errors:
        for path, reason in sorted(errors, key=lambda e: obj.line(e[0]) or 0):
            where = obj.where(path)
            place = f"live: {obj.ref}"
            if where.file:
                place = f"{where.file}:{where.line}" if where.line else where.file
            inv.rejects.report(place, f"{obj.ref}: {field_name(path)}: {reason}")
        return
    inv.objects.append(obj)
    if obj.kind == "ConfigMap":
        _unpack_configmap(obj, inv, nginx)
    elif obj.kind == "Ingress":
        meta = obj.data.get("metadata") or {}
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        if isinstance(annotations, dict):
            for key, value in annotations.items():
                if not (isinstance(key, str) and isinstance(value, str)):
                    continue
                if not (key.startswith(_ANNOTATION_PREFIX) and key.endswith(_SNIPPET)):
                    continue
                if _DISCARD_HINT.search(value):
                    path = ("metadata", "annotations", key)
                    nginx.add_text(value, obj, path, "snippet", inv)


def _unpack_configmap(obj: K8sObject, inv: Inventory, nginx: NginxParser) -> None:
    data = obj.data.get("data")
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if not isinstance(value, str) or not isinstance(key, str):
            continue
        path = ("data", key)
        nginx_like = key.endswith((".conf", _SNIPPET)) or "nginx" in key
        if nginx_like and _NGINX_HINT.search(value) and _DISCARD_HINT.search(value):
            origin = "snippet" if key.endswith(_SNIPPET) else "configmap"
            nginx.add_text(value, obj, path, origin, inv)
        else:
            _unpack_embedded(obj, path, value, inv, nginx)


def _unpack_embedded(
    obj: K8sObject, path: tuple[str, str], text: str, inv: Inventory, nginx: NginxParser
) -> None:
    """Configuration kept in a ConfigMap value (YAML or JSON, however its `kind` and
    `apiVersion` are quoted): an audit Policy, kubeadm's ClusterConfiguration
    (`kube-system/kubeadm-config`) or a KubeletConfiguration (`kube-system/kubelet-config`),
    added as an object whose lines point into the ConfigMap's file. A value that is not
    valid YAML but says `kind: Policy` (or another of these kinds) is reported."""
    kinds = [k for k, group in _EMBEDDED.items() if k in text and group in text]
    if not kinds:
        return  # cheap: most values (scripts, nginx, properties) are never parsed
    try:  # parsed once: the node (for lines) and the data built from it
        data, node = loader.load(text)
    except loader.YamlError as exc:
        hint = _KIND_HINT.search(text)
        if hint is None:
            return
        line = obj.text_line(path, exc.line - 1) if exc.line is not None else obj.line(path)
        place = obj.file or f"live: {obj.ref}"
        inv.rejects.report(
            f"{place}:{line}" if obj.file else place,
            f"{_WHAT[hint.group(1)]} in {obj.ref} {path[-1]}: "
            f"{'not valid YAML' if exc.syntax else 'refused'}: {exc.problem}",
        )
        return
    if not isinstance(data, dict):
        return
    kind, version = data.get("kind"), data.get("apiVersion")
    if not (
        isinstance(kind, str)
        and kind in _EMBEDDED
        and isinstance(version, str)
        and version.startswith(_EMBEDDED[kind] + "/")
    ):
        return
    embedded = _object(data, node, obj.file)
    embedded.line_offset = (obj.text_line(path, 0) or 1) - 1
    embedded.embedded_in = obj.ref
    if kind == "Policy":
        inv.objects.append(embedded)  # validated as the apiserver does, by the policy check
    else:
        unpack_object(embedded, inv, nginx)
