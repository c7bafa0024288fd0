"""Predicates to Python functions.

Each rule's predicate becomes one generated function whose body is a single boolean
expression: field extractors are called directly, constants are bound as globals of the
generated code (never pasted into its text), and `and`/`or` short-circuit as written.
This is several times faster than walking the tree per event, and keeps the semantics
in one place: `_TEMPLATES` below is the only definition of what each operator means.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from logwarden.detect.ir import And, Cmp, Const, Field, Node, Not, Or, walk
from logwarden.normalize.base import MalformedInput
from logwarden.normalize.k8s_audit import parse_rfc3339_ns

__all__ = [
    "ASCII_LOWER",
    "Builder",
    "common_substring",
    "compile_predicate",
    "compile_test",
    "compile_values",
    "in_networks",
    "number",
    "path_parts",
    "pmatch",
    "time_part",
]


#: str.translate table folding ASCII letters only (Falco's icontains uses strcasestr)
ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def path_parts(path: str) -> tuple[str, ...]:
    """A path's components, empty ones skipped (`/a//b/` is `a`, `b`)."""
    return tuple(part for part in path.split("/") if part)


_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def number(value: str) -> float | None:
    """A field value read as a number (ints exactly), or None if it is not one: JSON's
    number syntax (Python's own would also take `1_000`, ` 7 `, `inf` and `nan`)."""
    if _NUMBER.fullmatch(value) is None:
        return None
    try:
        return int(value)
    except ValueError:
        return float(value)


_TIME_PARTS: dict[str, Callable[[datetime], int]] = {
    "minute": lambda t: t.minute,
    "hour": lambda t: t.hour,
    "day": lambda t: t.day,
    "week": lambda t: t.isocalendar().week,
    "month": lambda t: t.month,
    "year": lambda t: t.year,
}


def time_part(value: str, part: tuple[str, int]) -> bool:
    """The value is an RFC 3339 time whose `part` (minute, hour, day of the month, ISO
    week, month, year; in UTC) is the number given."""
    try:
        ns = parse_rfc3339_ns(value)
    except MalformedInput:
        return False
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    unit, number = part
    return _TIME_PARTS[unit](when) == number


def in_networks(
    value: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    """The value is an IP address inside one of the networks."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address in net for net in networks)


def common_substring(texts: list[str]) -> str:
    """The longest substring of the first text that every text contains ("" if none)."""
    first = min(texts, key=len)
    for size in range(len(first), 1, -1):
        for start in range(len(first) - size + 1):
            piece = first[start : start + size]
            if all(piece in t for t in texts):
                return piece
    return ""


def pmatch(value: str, prefixes: tuple[tuple[str, ...], ...]) -> bool:
    """Falco's path prefix match: `value` is one of the paths or lies below one of them,
    compared component by component (prefixes as made by `path_parts`)."""
    parts = path_parts(value)
    return any(parts[: len(prefix)] == prefix for prefix in prefixes)


# A string with its ASCII letters lowered (str.lower is the fast path for ASCII text).
_FOLD = "({v}.lower() if {v}.isascii() else {v}.translate(_ASCII_LOWER))"

# What each operator means, applied to `v` (a string) and the constant `k`.
# (A template using _FOLD must use it once, as written, for `Builder._alternatives`.)
_TEMPLATES = {
    "eq": "{v} == {k}",
    "ne": "{v} != {k}",
    "lt": "{v} < {k}",
    "le": "{v} <= {k}",
    "gt": "{v} > {k}",
    "ge": "{v} >= {k}",
    "in": "{v} in {k}",
    "startswith": "{v}.startswith({k})",
    "endswith": "{v}.endswith({k})",
    "contains": "{k} in {v}",
    "icontains": "{k} in " + _FOLD,
    "ieq": _FOLD + " == {k}",
    "iin": _FOLD + " in {k}",
    "istartswith": _FOLD + ".startswith({k})",
    "iendswith": _FOLD + ".endswith({k})",
    "num_eq": "(_n := _number({v})) is not None and _n == {k}",
    "num_lt": "(_n := _number({v})) is not None and _n < {k}",
    "num_le": "(_n := _number({v})) is not None and _n <= {k}",
    "num_gt": "(_n := _number({v})) is not None and _n > {k}",
    "num_ge": "(_n := _number({v})) is not None and _n >= {k}",
    "cidr": "_in_networks({v}, {k})",
    "timepart": "_time_part({v}, {k})",
    "bcontains": "{k} in {v}.encode()",
    "bstartswith": "{v}.encode().startswith({k})",
    "fullmatch": "{k}.fullmatch({v}) is not None",
    "search": "{k}.search({v}) is not None",
}


#: operators that compare the ASCII-folded value
_FOLDING = frozenset({"icontains", "ieq", "iin", "istartswith", "iendswith"})

# relative cost of operators; reading a field costs its Field.cost, once per expression
_OP_COST = {"fullmatch": 3.0, "search": 3.0, "cidr": 2.0, "fieldref": 2.0}


def _cost(node: Node) -> float:
    """Estimated cost of evaluating `node`: each distinct field read once, plus the tests."""
    fields: dict[int, int] = {}
    tests = 0.0
    for n in walk(node):
        if isinstance(n, Cmp):
            fields[id(n.field)] = n.field.cost
            tests += _OP_COST.get(n.op, 0.2)
    return sum(fields.values()) + tests


def _by_cost(items: tuple[Node, ...]) -> list[Node]:
    """Cheapest first: `and`/`or` mean the same in any order (tests have no effects), and
    a cheap test that decides the result spares the expensive ones."""
    return sorted(items, key=_cost)


class Builder:
    def __init__(self) -> None:
        self._hoisted: dict[int, str] = {}  # field -> local holding its value
        self._folded: dict[int, str] = {}  # field -> local holding its folded value
        self.ns: dict[str, Any] = {
            "_pmatch": pmatch,
            "_number": number,
            "_in_networks": in_networks,
            "_time_part": time_part,
            "_ASCII_LOWER": ASCII_LOWER,
            "__builtins__": {"all": all, "any": any, "bool": bool, "str": str, "list": list},
        }
        self._fields: dict[int, str] = {}

    def const(self, value: Any) -> str:
        name = f"K{len(self.ns)}"
        self.ns[name] = value
        return name

    def hoist(self, predicates: list[Node]) -> str:
        """Statements reading, once, every inline field the predicates use more than once
        (and its folded form, for the case-folding tests that use it more than once); the
        expressions built afterwards use those locals. Returns the statements."""
        return "".join(self.hoist_each(predicates))

    def hoist_each(self, predicates: list[Node]) -> list[str]:
        """As `hoist`, but each field is read just before the first predicate that uses it:
        returns, per predicate, the statements to run before testing it (when an earlier
        predicate decides the result, the later ones' fields are never read)."""
        uses: Counter[int] = Counter()
        folds: Counter[int] = Counter()
        fields: dict[int, Field] = {}
        first: dict[int, int] = {}  # field -> first predicate reading it
        first_fold: dict[int, int] = {}  # field -> first predicate folding it
        for i, pred in enumerate(predicates):
            for n in walk(pred):
                if isinstance(n, Cmp) and n.field.expr is not None and not n.field.is_list:
                    fields[id(n.field)] = n.field
                    first.setdefault(id(n.field), i)
                    uses[id(n.field)] += 1
                    if n.op in _FOLDING:
                        folds[id(n.field)] += 1
                        first_fold.setdefault(id(n.field), i)
        lines: list[list[str]] = [[] for _ in predicates]
        for key, count in uses.items():
            if count < 2:
                continue
            name = f"_s{len(self._hoisted)}"
            at = lines[first[key]]
            at.append(f"    {name} = {fields[key].expr}\n")
            self._hoisted[key] = name
            if folds[key] >= 2:  # folded before the first test that uses the folded form
                fold = _FOLD.format(v=name)
                lines[first_fold[key]].append(f"    {name}f = None if {name} is None else {fold}\n")
                self._folded[key] = f"{name}f"
        return ["".join(at) for at in lines]

    def value(self, field: Field) -> str:
        """An expression over the record `r` that yields `field`'s value."""
        hoisted = self._hoisted.get(id(field))
        if hoisted is not None:
            return hoisted
        if field.expr is not None:
            return f"({field.expr})"
        key = id(field)
        name = self._fields.get(key)
        if name is None:
            name = f"F{len(self._fields)}"
            self._fields[key] = name
            self.ns[name] = field.extract
        return f"{name}(r)"

    def text(self, parts: list[tuple[str, str]]) -> str:
        """An expression joining `("text", literal)` and `("expr", string expression)` parts:
        one f-string, so the pieces are joined at once, without intermediate strings."""
        template = "".join(
            "{(" + value + ")}" if kind == "expr" else value.replace("{", "{{").replace("}", "}}")
            for kind, value in parts
        )
        return "f" + repr(template)

    def function(self, body: str, label: str, arg: str = "r") -> Callable[[Any], Any]:
        """Compile `def _fn(<arg>):` with `body` (indented lines) in this namespace."""
        return _build(f"def _fn({arg}):\n{body}", self.ns, label)

    def expr(self, node: Node) -> str:
        if isinstance(node, Const):
            return "True" if node.value else "False"
        if isinstance(node, Not):
            return f"(not {self.expr(node.item)})"
        if isinstance(node, And):
            if not node.items:
                return "True"
            return "(" + " and ".join(self.expr(i) for i in _by_cost(node.items)) + ")"
        if isinstance(node, Or):
            if not node.items:
                return "False"
            return "(" + " or ".join(self._alternatives(_by_cost(node.items))) + ")"
        return self.cmp(node, self.value(node.field))

    def _alternatives(self, items: list[Node]) -> list[str]:
        """The expressions of an `or`; case-folding tests of one single-valued field are
        grouped so the field is read and folded once (`K1 in _l or _l.startswith(K2) ...`)."""
        groups: dict[int, list[Cmp]] = {}
        for item in items:
            if isinstance(item, Cmp) and item.op in _FOLDING and not item.field.is_list:
                groups.setdefault(id(item.field), []).append(item)
        out: list[str] = []
        done: set[int] = set()
        for item in items:
            group = groups.get(id(item.field)) if isinstance(item, Cmp) else None
            if group is None or len(group) < 2 or item not in group:
                out.append(self.expr(item))
                continue
            if id(item.field) in done:
                continue
            done.add(id(item.field))
            folded = self._folded.get(id(item.field))
            low = folded or "_l"
            tests = " or ".join(self._on_folded(c, low) for c in group)
            if all(c.op == "icontains" for c in group):
                common = common_substring([c.value for c in group])
                if len(common) >= 2:  # one scan rules out most values before the many
                    tests = f"{self.const(common)} in {low} and ({tests})"
            if folded is not None:  # hoisted: read and folded once for the whole function
                out.append(f"({folded} is not None and ({tests}))")
                continue
            fold = _FOLD.format(v="_g")
            out.append(
                f"((_g := {self.value(item.field)}) is not None and "
                f"((_l := {fold}) is not None) and ({tests}))"
            )
        return out

    def cmp(self, node: Cmp, x: str) -> str:
        """`node` applied to the value expression `x` (which may be None)."""
        if node.op == "exists":
            return f"({x} is not None)"
        if node.field.is_list:
            if node.op == "in":
                k = self.const(node.value)
                if node.quant == "all":
                    return f"((v := {x}) is not None and {k}.issuperset(v))"
                return f"((v := {x}) is not None and not {k}.isdisjoint(v))"
            quant = "all" if node.quant == "all" else "any"
            return f"((v := {x}) is not None and {quant}({self._on_value(node, 'e')} for e in v))"
        if node.op == "eq":
            return f"({x} == {self.const(node.value)})"
        if node.op == "in":
            return f"({x} in {self.const(node.value)})"
        folded = self._folded.get(id(node.field))
        if folded is not None and node.op in _FOLDING:
            test = self._on_folded(node, folded)
            if node.op in ("ieq", "iin"):
                return f"({test})"  # None is neither equal to nor in a set of strings
            return f"({folded} is not None and {test})"
        return f"((v := {x}) is not None and {self._on_value(node, 'v')})"

    def _on_folded(self, node: Cmp, low: str) -> str:
        """A case-folding test applied to `low`, a variable holding the folded value."""
        return _TEMPLATES[node.op].replace(_FOLD, "{v}").format(v=low, k=self.const(node.value))

    def _on_value(self, node: Cmp, v: str) -> str:
        """`node` applied to `v`, a variable known to hold a string."""
        op = node.op
        if op == "pmatch":
            prefixes = tuple(path_parts(p) for p in node.value)
            return f"_pmatch({v}, {self.const(prefixes)})"
        if op == "fieldref":
            other = self.value(node.value)
            same = f"({v} in _w if _w.__class__ is list else {v} == _w)"
            return f"((_w := {other}) is not None and {same})"
        template = _TEMPLATES.get(op)
        if template is None:
            raise ValueError(f"operator {op!r} has no code")
        return template.format(v=v, k=self.const(node.value))


def _build(src: str, ns: dict[str, Any], label: str) -> Callable[[Any], Any]:
    code = compile(src, label, "exec")
    exec(code, ns)
    fn: Callable[[Any], Any] = ns["_fn"]
    return fn


def compile_predicate(node: Node, label: str = "<predicate>") -> Callable[[Any], bool]:
    """A function `record -> truthy` that evaluates `node` (the hot path: no bool() call)."""
    gen = Builder()
    body = gen.expr(node)
    return _build(f"def _fn(r):\n    return {body}\n", gen.ns, label)


def compile_test(node: Cmp) -> Callable[[Any], bool]:
    """A function `value -> bool` that applies one comparison to an extracted value."""
    gen = Builder()
    body = gen.cmp(node, "x")
    return _build(f"def _fn(x):\n    return bool({body})\n", gen.ns, "<test>")


def compile_values(
    fields: list[Field], label: str = "<values>"
) -> Callable[[Any], tuple[Any, ...]]:
    """A function `record -> tuple of the fields' values` (one call, no loop)."""
    gen = Builder()
    parts = "".join(f"{gen.value(f)}, " for f in fields)
    return gen.function(f"    return ({parts})\n", label)
