"""YAML text to plain data, remembering the line of every key and list item.

PyYAML composes the document into nodes that carry their position; the data is built
from those nodes here (scalars by PyYAML's safe constructor), so each path into the data
has a line. Duplicate keys, merge keys and recursive aliases are reported, not resolved
silently. Aliases are expanded, up to `MAX_VALUES` values in all (a "billion laughs"
document is one problem, not a hang).
"""

from __future__ import annotations

from typing import Any

import yaml

from logwarden.config.errors import Key, Problem

__all__ = ["INVALID", "MAX_VALUES", "Lines", "position", "read_yaml"]

#: Stands for a value that could not be read at all (already reported).
INVALID: Any = type("Invalid", (), {"__repr__": lambda self: "INVALID"})()

#: The line (1-based) of each path into the data: a key's line, or a list item's.
Lines = dict[tuple[Key, ...], int]

_MERGE = "tag:yaml.org,2002:merge"

#: The most values (scalars, lists, mappings) a document may hold once its aliases are
#: expanded; a config file holds a few hundred.
MAX_VALUES = 100_000


class _TooManyValues(Exception):
    def __init__(self, node: yaml.Node) -> None:
        self.node = node


class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: Lines = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")
        self._open: set[int] = set()
        self._left = MAX_VALUES

    def problem(self, message: str, path: tuple[Key, ...], node: yaml.Node) -> None:
        self.problems.append(Problem(message, path, self.file, node.start_mark.line + 1))

    def value(self, node: yaml.Node, path: tuple[Key, ...]) -> Any:
        if id(node) in self._open:
            line = self.lines.get(path, node.start_mark.line + 1)
            self.problems.append(Problem("an alias refers to itself", path, self.file, line))
            return INVALID
        self._left -= 1
        if self._left < 0:
            raise _TooManyValues(node)
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return self.sequence(node, path)
            return self.scalar(node, path)
        finally:
            self._open.discard(id(node))

    def scalar(self, node: yaml.Node, path: tuple[Key, ...]) -> Any:
        try:
            return self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError) as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            self.problem(f"invalid value: {reason}", path, node)
            return INVALID

    def sequence(self, node: yaml.SequenceNode, path: tuple[Key, ...]) -> list[Any]:
        out = []
        for i, item in enumerate(node.value):
            self.lines[(*path, i)] = item.start_mark.line + 1
            out.append(self.value(item, (*path, i)))
        return out

    def mapping(self, node: yaml.MappingNode, path: tuple[Key, ...]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self.problem(
                    "merge keys (<<) are not supported: write the keys out", path, key_node
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem("a key must be a plain value, not a list or mapping", path, key_node)
                continue
            key = self.scalar(key_node, path)
            if key is INVALID:
                continue
            where = (*path, key)
            if key in out:
                first = self.lines[where]
                self.problem(f"duplicate key (first at line {first})", where, key_node)
                continue
            self.lines[where] = key_node.start_mark.line + 1
            out[key] = self.value(value_node, where)
        return out


def read_yaml(text: str, file: str) -> tuple[Any, Lines, list[Problem]]:
    """The data of a one-document YAML text, the line of each path, and what is wrong.

    An empty document is `None`. A syntax error is one problem at its line and column.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        reason = "; ".join(str(part) for part in (exc.context, exc.problem) if part)
        return None, {}, [Problem(f"invalid YAML: {reason}", (), file, line, column)]
    except yaml.reader.ReaderError as exc:
        line, column = position(text, exc.position)
        what = f"character #x{exc.character:04x}" if isinstance(exc.character, int) else "byte"
        message = f"invalid YAML: unacceptable {what}: {exc.reason}"
        return None, {}, [Problem(message, (), file, line, column)]
    except yaml.YAMLError as exc:
        return None, {}, [Problem(f"invalid YAML: {exc}", (), file)]
    if node is None:
        return None, {}, []
    reader = _Reader(file)
    reader.lines[()] = node.start_mark.line + 1
    try:
        data = reader.value(node, ())
    except _TooManyValues as exc:
        message = (
            f"more than {MAX_VALUES:,} values once aliases are expanded "
            "(aliases that repeat aliases?): write a smaller config"
        )
        return None, {}, [Problem(message, (), file, exc.node.start_mark.line + 1)]
    return data, reader.lines, reader.problems


def position(text: str | bytes, offset: int) -> tuple[int, int]:
    """The 1-based line and column of character (or byte) `offset` of `text`."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")  # a character per byte: the offset stays
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1
