"""The audit Policy's model and its YAML text, comments included.

PyYAML writes no comments, and every rule of the generated policy carries one; so the
text is written here, block style, with short lists in flow style and every scalar that
YAML would read differently double-quoted. `render` is checked in the tests to parse back
to exactly the rules it was given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import msgspec
import yaml

__all__ = ["CommentedRule", "GroupResources", "PolicyRule", "render"]


class GroupResources(msgspec.Struct, frozen=True, omit_defaults=True):
    """One API group and, optionally, the resources of it a rule covers (all when empty)."""

    group: str
    resources: tuple[str, ...] = ()


class PolicyRule(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    rename={"user_groups": "userGroups", "non_resource_urls": "nonResourceURLs"},
):
    """One rule of an audit Policy, with the field names of audit.k8s.io/v1."""

    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    non_resource_urls: tuple[str, ...] = ()


class CommentedRule(msgspec.Struct, frozen=True):
    """A rule, its short name (the heading in docs/generate.md) and why it is there."""

    name: str
    why: str
    rule: PolicyRule


_HEADER = """\
# kube-apiserver audit policy written by `logwarden generate audit-policy`.
# Use it with --audit-policy-file; docs/generate.md explains every rule.
# The first rule that matches a request decides its level; the order matters.
apiVersion: audit.k8s.io/v1
kind: Policy
# Write each request once it is answered (ResponseComplete; failed authentications and
# long-running requests at ResponseStarted), not also when it arrives.
omitStages:
  - RequestReceived
# managedFields only say which client last set which field; they double every body.
omitManagedFields: true
rules:
"""


def _comment(text: str, indent: str) -> str:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(indent) + 2 + len(line) + 1 + len(word) > 92:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "".join(f"{indent}# {ln}\n" for ln in lines)


_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9/._-]*")
#: read as booleans by YAML 1.1 parsers other than PyYAML (go-yaml, which the apiserver uses)
_BOOLISH = {"y", "n"}
_WIDTH = 96


def _scalar(text: str) -> str:
    """A YAML scalar: plain when every YAML 1.1 reader reads it back as the same string
    (a word starting with a letter, not a boolean), else double-quoted."""
    plain = _PLAIN.fullmatch(text) and text.lower() not in _BOOLISH
    if plain and yaml.safe_load(text) == text:
        return text
    return json.dumps(text)


def _items(key: str, values: Sequence[str], indent: str) -> str:
    flow = f"{indent}{key}: [{', '.join(_scalar(v) for v in values)}]"
    if len(flow) <= _WIDTH:
        return flow + "\n"
    return f"{indent}{key}:\n" + "".join(f"{indent}  - {_scalar(v)}\n" for v in values)


def _rule_yaml(rule: PolicyRule) -> str:
    """One rule as a block-style YAML list item, indented under `rules:`."""
    data: dict[str, Any] = msgspec.to_builtins(rule)
    out = f"  - level: {data.pop('level')}\n"
    for key, value in data.items():
        if key != "resources":
            out += _items(key, value, "    ")
            continue
        out += "    resources:\n"
        for gr in value:
            out += f"      - group: {_scalar(gr['group'])}\n"
            if gr.get("resources"):
                out += _items("resources", gr["resources"], "        ")
    return out


def render(rules: Sequence[CommentedRule]) -> str:
    """The policy as YAML text, each rule preceded by a comment saying why it is there."""
    parts = [_HEADER]
    for i, commented in enumerate(rules, 1):
        parts.append(_comment(f"{i}. {commented.name}: {commented.why}", "  "))
        parts.append(_rule_yaml(commented.rule))
    return "".join(parts)
