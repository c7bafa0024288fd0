"""The types of the fields the checks read, checked once when an object is read.

An object whose fields have the wrong type (a number where the API wants a list, a string
for a container's command) is one the API server would refuse. The scan reports each such
field as ``file:line: Kind/ns/name: spec.containers[0].command: expected a list, got str``
(all of them at once) and leaves the object out, so no check meets a shape it does not
expect and nothing is judged on half-read data. A field that is absent or null is fine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from logwarden.posture.model import POD_TEMPLATE_PATHS, K8sObject

__all__ = ["field_name", "shape_errors"]

Pattern = tuple[str, ...]  # "*": every item of a list

_NUMBER = (int, float)
_EXPECTED: dict[type | tuple[type, ...], str] = {
    list: "a list",
    dict: "a mapping",
    str: "a string",
    _NUMBER: "a number",
    int: "an integer",
    (dict, list): "a mapping or a list",
}

_META: tuple[tuple[Pattern, Any], ...] = (
    (("metadata",), dict),
    (("metadata", "labels"), dict),
    (("metadata", "annotations"), dict),
)

_CONTAINER: tuple[tuple[Pattern, Any], ...] = (
    ((), dict),
    (("command",), list),
    (("command", "*"), str),
    (("args",), list),
    (("args", "*"), str),
    (("volumeMounts",), list),
    (("volumeMounts", "*"), dict),
    (("volumeMounts", "*", "name"), str),
    (("volumeMounts", "*", "mountPath"), str),
)

_POD: tuple[tuple[Pattern, Any], ...] = (
    (("containers",), list),
    *((("containers", "*", *p), t) for p, t in _CONTAINER),
    (("initContainers",), list),
    *((("initContainers", "*", *p), t) for p, t in _CONTAINER),
    (("volumes",), list),
    (("volumes", "*"), dict),
    (("volumes", "*", "name"), str),
    (("volumes", "*", "hostPath"), dict),
    (("tolerations",), list),
    (("tolerations", "*"), dict),
    *((("tolerations", "*", k), str) for k in ("key", "operator", "effect")),
)

_RULES: tuple[tuple[Pattern, Any], ...] = (
    (("rules",), list),
    (("rules", "*"), dict),
    *((("rules", "*", k), list) for k in ("apiGroups", "resources", "verbs")),
    *((("rules", "*", k, "*"), str) for k in ("apiGroups", "resources", "verbs")),
)

_BY_KIND: dict[str, tuple[tuple[Pattern, Any], ...]] = {
    "ConfigMap": ((("data",), dict),),
    "Role": _RULES,
    "ClusterRole": _RULES,
    "RoleBinding": ((("roleRef",), dict), (("subjects",), list), (("subjects", "*"), dict)),
    "ClusterRoleBinding": (
        (("roleRef",), dict),
        (("subjects",), list),
        (("subjects", "*"), dict),
    ),
    "ClusterConfiguration": (
        (("apiServer",), dict),
        (("apiServer", "extraArgs"), (dict, list)),
        (("apiServer", "extraVolumes"), list),
        (("apiServer", "extraVolumes", "*"), dict),
    ),
    "InitConfiguration": (
        (("nodeRegistration",), dict),
        (("nodeRegistration", "kubeletExtraArgs"), (dict, list)),
    ),
    "JoinConfiguration": (
        (("nodeRegistration",), dict),
        (("nodeRegistration", "kubeletExtraArgs"), (dict, list)),
    ),
    "KubeletConfiguration": ((("eventRecordQPS",), _NUMBER), (("eventBurst",), int)),
}

_STATUS: tuple[tuple[Pattern, Any], ...] = (
    (("status",), dict),
    (("status", "desiredNumberScheduled"), int),
    (("status", "numberReady"), int),
)


def field_name(path: tuple[str | int, ...]) -> str:
    """``spec.containers[0].command`` for ("spec", "containers", 0, "command")."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _fits(value: Any, expected: Any) -> bool:
    if isinstance(value, bool):  # YAML's true/false are ints to Python, never to the API
        return expected is bool
    return isinstance(value, expected)


def _walk(
    data: Any, pattern: Pattern, expected: Any, at: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if not pattern:
        if data is not None and not _fits(data, expected):
            got = "a boolean" if isinstance(data, bool) else type(data).__name__
            yield at, f"expected {_EXPECTED[expected]}, got {got}"
        return
    step, rest = pattern[0], pattern[1:]
    if step == "*":
        for i, value in enumerate(data if isinstance(data, list) else ()):
            yield from _walk(value, rest, expected, (*at, i))
    elif isinstance(data, dict) and step in data:
        yield from _walk(data[step], rest, expected, (*at, step))


def _rules(obj: K8sObject) -> Iterator[tuple[Pattern, Any]]:
    yield from _META
    pod = POD_TEMPLATE_PATHS.get(obj.kind)
    if pod is not None:
        steps = tuple(str(s) for s in pod)
        for i in range(1, len(steps) + 1):
            yield steps[:i], dict
        for pattern, expected in _POD:
            yield steps + pattern, expected
    yield from _BY_KIND.get(obj.kind, ())
    if obj.kind == "DaemonSet":
        yield from _STATUS


def shape_errors(obj: K8sObject) -> list[tuple[tuple[str | int, ...], str]]:
    """(path, reason) of every field of `obj` whose type the checks cannot read."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    for pattern, expected in _rules(obj):
        errors.extend(_walk(obj.data, pattern, expected, ()))
    return errors
