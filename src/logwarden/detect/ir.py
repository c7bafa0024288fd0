"""The one internal predicate form every rule format compiles into.

A predicate is a tree of `And`, `Or`, `Not`, `Const` and `Cmp` nodes. A `Cmp` compares one
`Field` of a record with a constant using one of the engine's operators (`OPS`). Rule
formats differ in their surface syntax and in how they map onto these operators, never in
how the engine evaluates them.

Value semantics, shared by all formats:

* A field extracts ``None`` (missing), a ``str``, or, for a list field, a non-empty
  ``list[str]`` (an empty list is missing). Every comparison on a missing field is false,
  so ``Not(cmp)`` is true; ``exists`` is true exactly when the field is not missing.
* On a list field, `quant` says how values combine: ``"all"`` (every value satisfies the
  operator, Falco's ``in``) or ``"any"`` (at least one does, Falco's ``intersects``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "OPS",
    "And",
    "Cmp",
    "Const",
    "Field",
    "Node",
    "Not",
    "Or",
    "fields_of",
    "simplify",
    "walk",
]

#: Operators and the constant each takes:
#:  eq ne lt le gt ge startswith endswith contains -> str (string comparison, as written)
#:  ieq istartswith iendswith icontains -> str with its ASCII letters lowered; the value is
#:      compared with its ASCII letters lowered too (case-insensitive for ASCII only)
#:  in -> frozenset[str];  iin -> frozenset of ASCII-lowered str
#:  pmatch -> tuple[str, ...] of path prefixes
#:  bcontains bstartswith -> bytes
#:  fullmatch (the whole value matches) search (some part matches) -> compiled re.Pattern
#:  num_eq num_lt num_le num_gt num_ge -> int | float: the value read as a number (false if
#:      it is not one: JSON's number syntax, `1_000`, ` 7`, `inf` and `nan` are not)
#:  cidr -> tuple of ipaddress networks: the value is an IP address in one of them
#:  timepart -> (unit, number): the value is an RFC 3339 time whose minute, hour, day,
#:      week, month or year (UTC) is the number
#:  fieldref -> Field: the value equals that field's value (or one of its values)
#:  exists -> None
OPS = frozenset(
    {
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "startswith",
        "endswith",
        "contains",
        "icontains",
        "in",
        "pmatch",
        "bcontains",
        "bstartswith",
        "fullmatch",
        "search",
        "ieq",
        "iin",
        "istartswith",
        "iendswith",
        "num_eq",
        "num_lt",
        "num_le",
        "num_gt",
        "num_ge",
        "cidr",
        "timepart",
        "fieldref",
        "exists",
    }
)

Extractor = Callable[[Any], "str | list[str] | None"]


@dataclass(eq=False)
class Field:
    """A value rules read from a record.

    `name` is how rules spell it (for messages); `extract(record)` returns the value.
    `indexable` marks a single-valued field of few distinct values (verb, resource) that
    the engine may use to select candidate rules. `expr`, when given, is a Python
    expression over the record `r` that computes the same value as `extract`; generated
    code inlines it instead of calling `extract` (temporaries in it start with `_`).
    Fields compare by identity: a catalog returns the same object for every spelling of
    the same value.
    """

    name: str
    extract: Extractor
    is_list: bool = False
    indexable: bool = False
    expr: str | None = None
    #: relative cost of extracting the value: 1 for an attribute of the decoded view, about
    #: 10 for a value that needs a member decoded, 20 for one that needs the whole event;
    #: generated code tests cheaper fields first (a test costs about 0.2)
    cost: int = 0

    def __post_init__(self) -> None:
        if not self.cost:
            self.cost = 1 if self.expr is not None else 5

    def __repr__(self) -> str:
        return f"Field({self.name})"


@dataclass(frozen=True)
class Const:
    value: bool


@dataclass(frozen=True)
class Cmp:
    field: Field
    op: str
    value: Any = None
    quant: str = "all"  # list fields only: "all" or "any"

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown operator {self.op!r}")
        if self.op in ("fullmatch", "search") and not isinstance(self.value, re.Pattern):
            raise ValueError(f"{self.op} takes a compiled pattern")


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...] = field(default=())


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...] = field(default=())


Node = And | Or | Not | Cmp | Const


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children."""
    yield node
    if isinstance(node, (And, Or)):
        for item in node.items:
            yield from walk(item)
    elif isinstance(node, Not):
        yield from walk(node.item)


def fields_of(node: Node) -> list[Field]:
    """The distinct fields a predicate reads, in first-use order."""
    seen: dict[int, Field] = {}
    for n in walk(node):
        if isinstance(n, Cmp):
            seen.setdefault(id(n.field), n.field)
    return list(seen.values())


def simplify(node: Node) -> Node:
    """Flatten nested and/or, fold constants and double negations; meaning is unchanged."""
    if isinstance(node, Not):
        inner = simplify(node.item)
        if isinstance(inner, Const):
            return Const(not inner.value)
        if isinstance(inner, Not):
            return inner.item
        return Not(inner)
    if isinstance(node, (And, Or)):
        kind = type(node)
        unit = isinstance(node, And)  # the constant that can be dropped
        items: list[Node] = []
        for item in node.items:
            item = simplify(item)
            if isinstance(item, kind):
                items.extend(item.items)
            elif isinstance(item, Const):
                if item.value != unit:
                    return Const(not unit)
            else:
                items.append(item)
        if not items:
            return Const(unit)
        if len(items) == 1:
            return items[0]
        return kind(tuple(items))
    return node
