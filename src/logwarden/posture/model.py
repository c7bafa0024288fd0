"""What the scan inputs produce and the checks read: one `Inventory` of parsed things.

Every parsed thing knows where it came from, so a finding can name ``file:line`` or, for
a live cluster, the object (``Kind/namespace/name``). YAML and JSON documents keep their
composed node tree next to the plain data, and `Located.where(path)` walks that tree to
the line of any field; the walk happens only for the few fields a finding is about.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml

from logwarden.rejects import Rejects

__all__ = [
    "POD_TEMPLATE_PATHS",
    "ApiServer",
    "CloudDoc",
    "Directive",
    "Dockerfile",
    "Instruction",
    "Inventory",
    "K8sObject",
    "LiveCluster",
    "Located",
    "NginxConfig",
    "TextHit",
    "Where",
    "pod_specs",
]

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Where:
    """A place a finding is about: a file and line, or a live object, or both."""

    file: str | None = None
    line: int | None = None
    object: str | None = None


def _node_line(node: yaml.Node | None, path: Path) -> int | None:
    """The 1-based line of the value at `path` under `node`, or of its deepest ancestor."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for step in path:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == step:
                    node = value
                    line = (
                        key.start_mark.line + 1
                        if not isinstance(value, yaml.ScalarNode)
                        else value.start_mark.line + 1
                    )
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                return line
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line


@dataclass
class Located:
    """A parsed document (or part of one) with the file and node tree it came from."""

    data: Any
    file: str | None = None
    node: yaml.Node | None = None
    object: str | None = None
    #: lines of `node` are relative to this many lines before (for embedded documents)
    line_offset: int = 0

    def line(self, path: Path = ()) -> int | None:
        line = _node_line(self.node, path)
        return None if line is None else line + self.line_offset

    def where(self, path: Path = ()) -> Where:
        return Where(self.file, self.line(path), self.object)

    def text_line(self, path: Path, offset: int) -> int | None:
        """The line of line `offset` (0-based) inside the block scalar at `path`."""
        line = self.line(path)
        if line is None:
            return None
        node = self._node_at(path)
        if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            return line + 1 + offset
        return line

    def _node_at(self, path: Path) -> yaml.Node | None:
        node = self.node
        for step in path:
            if isinstance(node, yaml.MappingNode):
                node = next(
                    (
                        v
                        for k, v in node.value
                        if isinstance(k, yaml.ScalarNode) and k.value == step
                    ),
                    None,
                )
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                node = node.value[step] if step < len(node.value) else None
            else:
                return None
        return node


@dataclass
class K8sObject(Located):
    """One Kubernetes object from a manifest, a `List` item, or the live API."""

    kind: str = ""
    api_version: str = ""
    name: str = ""
    namespace: str = ""
    #: the object this one was found inside (an audit Policy in a ConfigMap)
    embedded_in: str = ""

    @property
    def ref(self) -> str:
        if self.embedded_in:
            return f"{self.kind} in {self.embedded_in}"
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}" if self.name else self.kind

    def where(self, path: Path = ()) -> Where:
        return Where(self.file, self.line(path), self.ref)


#: Where the pod spec sits in each kind that has one.
POD_TEMPLATE_PATHS: dict[str, Path] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "DeploymentConfig": ("spec", "template", "spec"),
}


def pod_specs(objects: Sequence[K8sObject]) -> Iterator[tuple[K8sObject, dict[str, Any], Path]]:
    """Every (object, pod spec, path to the spec) among `objects`."""
    for obj in objects:
        path = POD_TEMPLATE_PATHS.get(obj.kind)
        if path is None:
            continue
        spec: Any = obj.data
        for step in path:
            spec = spec.get(step) if isinstance(spec, dict) else None
        if isinstance(spec, dict):
            yield obj, spec, path


@dataclass
class Directive:
    """One nginx directive: its name, arguments and 1-based line in the scanned file."""

    name: str
    args: list[str]
    line: int | None
    context: tuple[str, ...] = ()
    #: the block the directive is in (0: the top level); directives of one block share it
    block: int = 0


@dataclass
class NginxConfig:
    """An nginx configuration: a file, a ConfigMap value or an ingress-nginx snippet."""

    file: str | None
    object: str | None
    directives: list[Directive]
    origin: str  # "file", "configmap", "snippet"


@dataclass
class Dockerfile:
    """A Dockerfile and its instructions."""

    file: str
    instructions: list[Instruction]


class Instruction(NamedTuple):
    """A Dockerfile instruction: its name (`RUN`), its value (continuation lines joined)
    and first line; and the lines of the here-documents it reads, from `body_line` on."""

    name: str
    value: str
    line: int
    heredoc: tuple[str, ...] = ()
    body_line: int = 0


@dataclass
class CloudDoc:
    """A managed cluster's logging configuration: EKS, AKS or GKE, from JSON or Terraform."""

    #: "eks", "aks" (a cluster), "aks-diagnostics" (a diagnostic setting) or "gke"
    provider: str
    name: str
    where: Where
    facts: dict[str, Any]


@dataclass
class TextHit:
    """A line of a plain-text input (shell script, unit file) that matched a pattern."""

    file: str
    line: int
    text: str
    kind: str


@dataclass
class ApiServer:
    """A kube-apiserver's flags, from a static pod, a kubeadm ClusterConfiguration or live."""

    source: K8sObject
    flags: dict[str, str]
    flag_paths: dict[str, Path]
    base_path: Path
    mounts: dict[str, str] | None  # mountPath -> volume kind ("hostPath", ...), None if unknown

    def where(self, flag: str | None = None) -> Where:
        path = self.flag_paths.get(flag, self.base_path) if flag else self.base_path
        return self.source.where(path)


@dataclass
class LiveCluster:
    """What a live scan saw of the cluster as a whole."""

    context: str
    nodes: list[dict[str, Any]]
    provider: str | None  # "eks", "aks", "gke" or None
    control_plane_visible: bool


@dataclass
class Inventory:
    """Everything the inputs produced, and the errors met on the way."""

    objects: list[K8sObject] = field(default_factory=list)
    nginx: list[NginxConfig] = field(default_factory=list)
    dockerfiles: list[Dockerfile] = field(default_factory=list)
    compose: list[Located] = field(default_factory=list)
    daemon_json: list[Located] = field(default_factory=list)
    cloud: list[CloudDoc] = field(default_factory=list)
    texts: list[TextHit] = field(default_factory=list)
    live: LiveCluster | None = None
    files: int = 0
    rejects: Rejects = field(default_factory=Rejects)
    notes: list[str] = field(default_factory=list)

    def of_kind(self, *kinds: str) -> list[K8sObject]:
        return [o for o in self.objects if o.kind in kinds]
