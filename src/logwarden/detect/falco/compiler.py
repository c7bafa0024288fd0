"""Falco definitions to engine rules: macros expanded, lists resolved, exceptions applied.

Only rules whose `source` logwarden can feed are compiled (`SOURCES`); the others, such
as the syscall rules in `falco_rules.yaml`, are skipped with one note per source, while
their lists and macros stay available to the rules that are compiled. Macros and lists are
resolved when a compiled rule uses them, so a syscall-only macro never has to name a field
logwarden knows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from logwarden.detect.codegen import ASCII_LOWER
from logwarden.detect.falco.fields import FieldCatalog, UnknownField, catalog
from logwarden.detect.falco.loader import Definitions, ExceptionDef, Loc, RuleDef
from logwarden.detect.falco.output import compile_output
from logwarden.detect.falco.parser import (
    LIST_OPS,
    BoolOp,
    Check,
    ConditionSyntaxError,
    FieldValue,
    Item,
    MacroRef,
    NotOp,
    parse_condition,
)
from logwarden.detect.ir import And, Cmp, Field, Node, Not, Or, simplify
from logwarden.detect.rule import Rule, RuleSet
from logwarden.errors import RuleError
from logwarden.normalize.k8s_audit import SOURCE as K8S_AUDIT
from logwarden.records import severity_of_priority

__all__ = ["SOURCES", "compile_definitions", "load_falco"]

#: Falco rule sources logwarden evaluates, mapped to the `Record.source` they read.
SOURCES = {"k8s_audit": K8S_AUDIT}

_OPS = {
    "=": "eq",
    "==": "eq",
    "!=": "ne",
    "<": "lt",
    "<=": "le",
    ">": "gt",
    ">=": "ge",
    "contains": "contains",
    "icontains": "icontains",
    "startswith": "startswith",
    "endswith": "endswith",
    "bcontains": "bcontains",
    "bstartswith": "bstartswith",
    "glob": "glob",
    "iglob": "glob",
    "regex": "regex",
}


class _Compiler:
    def __init__(self, defs: Definitions, fields: FieldCatalog) -> None:
        self.defs = defs
        self.fields = fields
        self._macros: dict[str, Node] = {}
        self._lists: dict[str, list[str]] = {}
        self.notes: list[str] = []
        self._where = ""

    # --- rules -------------------------------------------------------------------------

    def rule(self, rd: RuleDef) -> Rule:
        where = f"rule '{rd.name}'"
        self._where = f"{rd.loc}: {where}"
        node = self._condition(rd.condition, rd.loc, where, ())
        if rd.exceptions:
            excluded = Or(tuple(self._exception(e, where) for e in rd.exceptions))
            node = And((node, Not(excluded)))
        try:
            render = compile_output(rd.output, self.fields)
        except RuleError as exc:
            raise rd.loc.error(f"{where}: {exc.reason}", kind=type(exc)) from None
        return Rule(
            name=rd.name,
            format="falco",
            source=SOURCES[rd.source],
            priority=rd.priority,
            severity=severity_of_priority(rd.priority),
            predicate=simplify(node),
            render=render,
            tags=tuple(sorted(set(rd.tags))),  # as Falco keeps them: a sorted set
            desc=rd.desc,
            enabled=rd.enabled,
            origin=str(rd.loc),
        )

    def _condition(self, text: str, loc: Loc, where: str, stack: tuple[str, ...]) -> Node:
        try:
            ast = parse_condition(text)
        except ConditionSyntaxError as exc:
            raise loc.error(
                f"{where}: condition: {exc} (column {exc.column} of the condition)"
            ) from None
        return self._node(ast, loc, where, stack)

    def _node(self, ast: object, loc: Loc, where: str, stack: tuple[str, ...]) -> Node:
        if isinstance(ast, BoolOp):
            items = tuple(self._node(i, loc, where, stack) for i in ast.items)
            return And(items) if ast.op == "and" else Or(items)
        if isinstance(ast, NotOp):
            return Not(self._node(ast.item, loc, where, stack))
        if isinstance(ast, MacroRef):
            return self._macro(ast, loc, where, stack)
        assert isinstance(ast, Check)
        try:
            return self._check(ast, stack)
        except RuleError as exc:
            raise loc.error(
                f"{where}: condition: {exc.reason} (column {ast.column} of the condition)",
                kind=type(exc),
            ) from None

    def _macro(self, ref: MacroRef, loc: Loc, where: str, stack: tuple[str, ...]) -> Node:
        name = ref.name
        done = self._macros.get(name)
        if done is not None:
            return done
        if name in stack:
            chain = " -> ".join((*stack, name))
            raise loc.error(f"{where}: macros refer to each other in a loop: {chain}")
        macro = self.defs.macros.get(name)
        if macro is None:
            kind = "a list, not a macro" if name in self.defs.lists else "not a defined macro"
            raise loc.error(
                f"{where}: condition: '{name}' is {kind} (column {ref.column} of the condition)"
            )
        node = self._condition(macro.condition, macro.loc, f"macro '{name}'", (*stack, name))
        self._macros[name] = node
        return node

    def _check(self, check: Check, stack: tuple[str, ...]) -> Node:
        value = check.value
        if isinstance(value, FieldValue):
            raise RuleError("comparing with another field (val(...)) is not supported")
        if check.op in LIST_OPS:
            assert isinstance(value, tuple)
            return self.cmp(check.field, check.arg, check.op, list(value))
        return self.cmp(check.field, check.arg, check.op, value)

    def cmp(self, name: str, arg: str | None, op: str, value: object) -> Cmp:
        """One comparison: `value` is an Item (binary), a list of Items (list ops) or None."""
        field = self.fields.field(name, arg)
        if op == "exists":
            return Cmp(field, "exists")
        if op in LIST_OPS:
            assert isinstance(value, list)
            items = self._expand(value)
            if op == "pmatch":
                return Cmp(field, "pmatch", tuple(items), quant="any")
            return Cmp(field, "in", frozenset(items), quant="all" if op == "in" else "any")
        assert isinstance(value, Item)
        text = self._single(value)
        kind = _OPS.get(op)
        if kind is None:
            raise RuleError(f"unknown operator '{op}'")
        if field.is_list:
            # Falco up to 0.34 loaded this (and its own test rules use it); later Falco
            # rejects it. logwarden loads it with the only sensible meaning, and says so.
            self.notes.append(
                f"{self._where}: '{field.name} {op}' on a list field matches when any value "
                "matches; current Falco rejects this, 'intersects' says it portably"
            )
            return self._binary(field, op, kind, text, quant="any")
        return self._binary(field, op, kind, text, quant="all")

    def _binary(self, field: Field, op: str, kind: str, text: str, quant: str) -> Cmp:
        if kind in ("bcontains", "bstartswith"):
            try:
                return Cmp(field, kind, bytes.fromhex(text), quant)
            except ValueError:
                raise RuleError(f"'{op}' takes hexadecimal bytes, not '{text}'") from None
        if kind == "glob":
            flags = re.IGNORECASE if op == "iglob" else 0
            pattern = re.compile(glob_to_regex(text), flags | re.DOTALL)
            return Cmp(field, "fullmatch", pattern, quant)
        if kind == "regex":
            try:
                # Falco anchors regex at both ends (RE2 ANCHOR_BOTH); '.' stops at newlines
                return Cmp(field, "fullmatch", re.compile(text), quant)
            except re.error as exc:
                raise RuleError(f"invalid regular expression '{text}': {exc}") from None
        if kind == "icontains":
            return Cmp(field, kind, text.translate(ASCII_LOWER), quant)
        return Cmp(field, kind, text, quant)

    def _single(self, value: Item) -> str:
        """A bare value naming a list stands for its one item, as Falco substitutes lists."""
        if value.quoted or value.text not in self.defs.lists:
            return value.text
        items = self._list(value.text, ())
        if len(items) != 1:
            raise RuleError(
                f"list '{value.text}' ({len(items)} items) is used where one value is expected"
            )
        return items[0]

    # --- lists -------------------------------------------------------------------------

    def _expand(self, items: list[Item]) -> list[str]:
        out: list[str] = []
        for item in items:
            if not item.quoted and item.text in self.defs.lists:
                out.extend(self._list(item.text, ()))
            else:
                out.append(item.text)
        return out

    def _list(self, name: str, stack: tuple[str, ...]) -> list[str]:
        done = self._lists.get(name)
        if done is not None:
            return done
        if name in stack:
            raise self.defs.lists[name].loc.error(
                f"list '{name}': lists refer to each other in a loop: "
                + " -> ".join((*stack, name))
            )
        out: list[str] = []
        for raw in self.defs.lists[name].items:
            if raw in self.defs.lists and raw != name:
                out.extend(self._list(raw, (*stack, name)))
            elif len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
                out.append(raw[1:-1])
            else:
                out.append(raw)
        self._lists[name] = out
        return out

    # --- exceptions ----------------------------------------------------------------------

    def _exception(self, exc: ExceptionDef, where: str) -> Node:
        what = f"{where}: exception '{exc.name}'"
        try:
            if isinstance(exc.fields, str):
                comp = exc.comps if isinstance(exc.comps, str) else "in"
                return self._one(exc.fields, comp, exc.values)
            fields = exc.fields or []
            comps = exc.comps if isinstance(exc.comps, list) else ["="] * len(fields)
            alternatives = []
            for row in exc.values:
                parts = [self._one(f, c, v) for f, c, v in zip(fields, comps, row, strict=True)]
                alternatives.append(And(tuple(parts)))
            return Or(tuple(alternatives))
        except RuleError as err:
            raise exc.loc.error(f"{what}: {err.reason}") from None

    def _one(self, spec: str, comp: str, value: object) -> Cmp:
        name, arg = _split_field(spec)
        if comp in LIST_OPS:
            values = value if isinstance(value, list) else [value]
            items = [Item(v, False) for v in _flatten(values)]
            return self.cmp(name, arg, comp, items)
        if comp == "exists":
            return self.cmp(name, arg, comp, None)
        if isinstance(value, list):
            raise RuleError(f"'{comp}' compares with one value, not a list")
        return self.cmp(name, arg, comp, Item(str(value), True))


def glob_to_regex(pattern: str) -> str:
    """POSIX fnmatch(3) without flags, as Falco's glob: `*`, `?`, `[...]` (with `!` or `^`
    to negate) and `\\` quoting the next character; `*` also matches `/`."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")  # no closing bracket: a literal '['
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            out.append(f"[{'^' if negate else ''}{body}]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def _flatten(values: list[object]) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, list):
            out.extend(_flatten(v))
        else:
            out.append(str(v))
    return out


def _split_field(spec: str) -> tuple[str, str | None]:
    if spec.endswith("]") and "[" in spec:
        name, arg = spec[:-1].split("[", 1)
        return name, arg
    return spec, None


def compile_definitions(defs: Definitions, errors: list[RuleError] | None = None) -> RuleSet:
    """Compile every rule of a source logwarden evaluates; note the others.

    With `errors`, a rule that does not compile is reported there and left out.
    """
    compiler = _Compiler(defs, catalog())
    out = RuleSet(notes=list(defs.notes))
    skipped: Counter[str] = Counter()
    for rd in defs.rules.values():
        if rd.source not in SOURCES:
            skipped[rd.source] += 1
            continue
        try:
            out.rules.append(compiler.rule(rd))
        except UnknownField as exc:
            if rd.skip_unknown:
                out.notes.append(f"{exc} (rule skipped: it has skip-if-unknown-filter: true)")
            elif errors is None:
                raise
            else:
                errors.append(exc)
        except RuleError as exc:
            if errors is None:
                raise
            errors.append(exc)
    out.notes.extend(compiler.notes)
    for source, n in sorted(skipped.items()):
        out.notes.append(
            f"{n} Falco rule{'s' if n != 1 else ''} for source '{source}' skipped: "
            f"logwarden evaluates {', '.join(sorted(SOURCES))}"
        )
    return out


def load_falco(paths: Sequence[str], errors: list[RuleError] | None = None) -> RuleSet:
    """Load Falco rules files in order (later files override earlier ones) and compile.

    With `errors`, every problem is collected there and loading goes on (`rules lint`).
    """
    defs = Definitions(errors=errors)
    for path in paths:
        defs.load_file(path)
    rules = compile_definitions(defs, errors)
    rules.files.extend(paths)
    return rules
