"""YAML and JSON text into data and node trees, with libyaml, safe against hostile input.

Every YAML text the scan reads (files, audit policies kept in ConfigMap values) is parsed
here. The composed node tree is kept for line numbers and the data is built from it,
after two checks a plain `yaml.safe_load` does not make:

* Aliases are counted before anything is built. A document whose aliases would expand to
  more than `MAX_ALIAS_EXPANSION` nodes beyond its own (the "billion laughs") or that
  contains itself (a recursive structure, which neither JSON nor the Kubernetes API can
  hold) is refused, as go-yaml refuses "excessive aliasing": the shared structure is
  cheap, but the first `str()` or walk over it would not be.
* Tags the safe loader has no constructor for (`!Ref`, `!reference`,
  `!!python/name:...`, and the plain scalar `=`, which YAML 1.1 resolves to its `value`
  tag) are read as the plain string, list or mapping they tag. Nothing is instantiated.

JSON is read by the same parser (YAML is a superset for what the scan reads). libyaml
refuses the UTF-16 surrogate pairs JSON uses to escape characters outside the BMP
(``"\\ud83d\\ude00"``); in `.json` text they are joined into the character first, and a
lone surrogate becomes U+FFFD, as Go's encoding/json decodes it.

Errors are `YamlError`, with the 1-based line where libyaml noticed the problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from logwarden.errors import InputError

__all__ = ["MAX_ALIAS_EXPANSION", "YamlError", "join_surrogates", "load", "load_all"]

#: how many nodes aliases may add to a document beyond those written in it
MAX_ALIAS_EXPANSION = 1_000_000

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """The safe loader, reading tags it does not know as the plain node they tag."""


def _plain(loader: yaml.SafeLoader, node: yaml.Node) -> Iterator[Any]:
    # a generator, as SafeConstructor's own: the container is created before its content,
    # so constructing nested containers does not recurse
    if isinstance(node, yaml.MappingNode):
        mapping: dict[Any, Any] = {}
        yield mapping
        mapping.update(loader.construct_mapping(node))
    elif isinstance(node, yaml.SequenceNode):
        sequence: list[Any] = []
        yield sequence
        sequence.extend(loader.construct_sequence(node))
    else:
        yield loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor(None, _plain)


class YamlError(InputError):
    """A YAML (or JSON) text that cannot be read, or that is refused; `line` is 1-based."""

    def __init__(self, problem: str, line: int | None = None, *, syntax: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        #: not valid YAML (rather than refused): an unrendered template may be the cause
        self.syntax = syntax


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a node tree whose aliases expand too far or that contains itself."""
    sizes: dict[int, int] = {}  # id(node) -> nodes it expands to
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            continue
        if key in sizes:
            continue  # an alias of a node already counted
        if key in entered:  # met again below itself
            raise YamlError(
                "an alias refers to a node that contains it (a recursive structure)",
                node.start_mark.line + 1,
            )
        entered.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    added = sizes[id(root)] - len(entered)
    if added > MAX_ALIAS_EXPANSION:
        raise YamlError(
            f"aliases expand the document by {added:,} nodes (more than "
            f"{MAX_ALIAS_EXPANSION:,}): an alias bomb",
            root.start_mark.line + 1,
        )


def _translate(exc: yaml.YAMLError) -> YamlError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return YamlError(str(problem), mark.line + 1 if mark is not None else None, syntax=True)


_SURROGATES = re.compile(
    r"(?<!\\)((?:\\\\)*)\\u([dD][89abAB][0-9a-fA-F]{2})(?:\\u([dD][c-fC-F][0-9a-fA-F]{2}))?"
    r"|(?<!\\)((?:\\\\)*)\\u([dD][c-fC-F][0-9a-fA-F]{2})"
)


def _join(m: re.Match[str]) -> str:
    if m.group(4) is not None:  # a lone low surrogate
        return m.group(4) + "\\ufffd"
    high, low = m.group(2), m.group(3)
    if low is None:  # a lone high surrogate
        return m.group(1) + "\\ufffd"
    code = 0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00)
    return m.group(1) + chr(code)


def join_surrogates(text: str) -> str:
    """JSON text with its escaped surrogate pairs joined (lines are unchanged)."""
    if "\\u" not in text:
        return text
    return _SURROGATES.sub(_join, text)


#: what an anchor looks like (`&name` after a space or an indicator); a document without
#: one has no alias, and its nodes need not be counted
_ANCHOR = re.compile(r"(?<![&\w])&[^\s\[\]{},]")


def _has_anchor(text: str, node: yaml.Node) -> bool:
    return _ANCHOR.search(text, node.start_mark.index, node.end_mark.index + 1) is not None


def load_all(text: str) -> list[tuple[Any, yaml.Node]]:
    """(data, node) of every non-empty document of `text`; YamlError if any is bad."""
    loader = _Loader(text)
    docs: list[tuple[Any, yaml.Node]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if _has_anchor(text, node):
                _check_aliases(node)
            docs.append((loader.construct_document(node), node))
    except yaml.YAMLError as exc:
        raise _translate(exc) from exc
    finally:
        loader.dispose()
    return docs


def load(text: str) -> tuple[Any, yaml.Node | None]:
    """(data, node) of the single document of `text` ((None, None) when it is empty)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        if _has_anchor(text, node):
            _check_aliases(node)
        return loader.construct_document(node), node
    except yaml.YAMLError as exc:
        raise _translate(exc) from exc
    finally:
        loader.dispose()
