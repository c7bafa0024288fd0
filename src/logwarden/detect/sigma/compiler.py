"""Sigma rules (as pySigma parses them) to engine rules.

pySigma resolves the detection: modifiers are applied to the values (`contains` becomes
`*x*`, `base64offset` three variants, `windash` its dash variants, `all` an AND), lists
fan out into ORs, `1 of sel_*` into the selections. This module maps what remains onto the
engine's operators (`detect/ir.py`), with Sigma's semantics:

* strings compare case-insensitively (ASCII letters), `*` and `?` are wildcards; a
  `cased` string compares exactly;
* a field holding several values (an array) matches when one of them does;
* `null` means the field is absent (or null); `exists` tests presence, a null or empty
  value included;
* `re` searches (unanchored) with the rule's flags (`i`, `m`, `s`); `cidr` tests IP
  membership; numbers and `gt`/`gte`/`lt`/`lte` compare as numbers; `fieldref` compares two fields;
  `minute`, `hour`, `day`, `week`, `month`, `year` compare that part of a time (UTC);
* a value without a field (a keyword) is searched for in every value of the event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from logwarden.detect.codegen import ASCII_LOWER
from logwarden.detect.ir import And, Cmp, Const, Field, Node, Not, Or, simplify
from logwarden.detect.sigma.fields import KEYWORDS, presence, resolve
from logwarden.errors import RuleError

__all__ = ["compile_condition", "fields_used"]

_NUMERIC = {
    CompareOperators.LT: "num_lt",
    CompareOperators.LTE: "num_le",
    CompareOperators.GT: "num_gt",
    CompareOperators.GTE: "num_ge",
}
_REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}


def _fold(text: str) -> str:
    return text.translate(ASCII_LOWER)


def _parts(value: SigmaString) -> list[str | SpecialChars]:
    parts: list[str | SpecialChars] = []
    for part in value.s:
        if not isinstance(part, (str, SpecialChars)):
            raise RuleError(f"placeholder {part} in '{value}' has no value (use a pipeline)")
        parts.append(part)
    return parts


def _pattern(parts: list[str | SpecialChars]) -> str:
    out = []
    for part in parts:
        if part is SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif part is SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        else:
            out.append(re.escape(str(part)))
    return "".join(out)


def _string(field: Field, value: SigmaString, cased: bool) -> Node:
    return _match(field, _parts(value), cased)


def _match(field: Field, parts: list[str | SpecialChars], cased: bool) -> Node:
    """A Sigma string (as parts) on `field`: the cheapest operator that says the same."""
    star = SpecialChars.WILDCARD_MULTI
    literals = [p for p in parts if isinstance(p, str)]
    if not any(isinstance(p, SpecialChars) for p in parts):
        text = "".join(literals)
        return Cmp(field, "eq", text, "any") if cased else Cmp(field, "ieq", _fold(text), "any")
    if all(p is star for p in parts):
        return Cmp(field, "exists")  # '*' matches any value, the empty one too
    inner = parts[1:-1] if len(parts) > 2 else []
    simple = len(literals) == 1 and not any(isinstance(p, SpecialChars) for p in inner)
    if simple and parts[0] is star and parts[-1] is star and len(parts) == 3:
        text = literals[0]
        return Cmp(
            field, "contains" if cased else "icontains", text if cased else _fold(text), "any"
        )
    if simple and len(parts) == 2 and parts[-1] is star:
        text = literals[0]
        op = "startswith" if cased else "istartswith"
        return Cmp(field, op, text if cased else _fold(text), "any")
    if simple and len(parts) == 2 and parts[0] is star:
        text = literals[0]
        op = "endswith" if cased else "iendswith"
        return Cmp(field, op, text if cased else _fold(text), "any")
    flags = re.DOTALL | (0 if cased else re.IGNORECASE | re.ASCII)
    return Cmp(field, "fullmatch", re.compile(_pattern(parts), flags), "any")


def _value(field: Field, value: Any, source: str) -> Node:
    if isinstance(value, SigmaExpansion):
        return Or(tuple(_value(field, v, source) for v in value.values))
    if isinstance(value, SigmaCasedString):
        return _string(field, value, cased=True)
    if isinstance(value, SigmaString):
        return _string(field, value, cased=False)
    if isinstance(value, SigmaBool):
        return Cmp(field, "ieq", "true" if value.boolean else "false", "any")
    if isinstance(value, SigmaTimestampPart):  # `hour: 13` (a SigmaNumber too)
        return Cmp(field, "timepart", (value.timestamp_part.name.lower(), value.number), "any")
    if isinstance(value, SigmaNumber):  # `1.0` equals 1 and "1"
        return Cmp(field, "num_eq", value.number, "any")
    if isinstance(value, SigmaNull):
        return Not(Cmp(field, "exists"))
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for flag in value.flags:
            flags |= _REGEX_FLAGS[flag]
        pattern = str(value.regexp)
        try:
            return Cmp(field, "search", re.compile(pattern, flags), "any")
        except re.error as exc:
            raise RuleError(f"invalid regular expression '{pattern}': {exc}") from None
    if isinstance(value, SigmaCIDRExpression):
        return Cmp(field, "cidr", (value.network,), "any")
    if isinstance(value, SigmaCompareExpression):
        return Cmp(field, _NUMERIC[value.op], value.number.number, "any")
    if isinstance(value, SigmaFieldReference):
        if value.starts_with or value.ends_with:
            raise RuleError("fieldref with startswith/endswith is not supported")
        return Cmp(field, "fieldref", resolve(source, value.field), "any")
    raise RuleError(f"value {value!r} of type {type(value).__name__} is not supported")


def _keyword(value: Any) -> Node:
    if isinstance(value, SigmaString):
        parts = _parts(value)
        if parts[:1] != [SpecialChars.WILDCARD_MULTI]:
            parts.insert(0, SpecialChars.WILDCARD_MULTI)
        if parts[-1:] != [SpecialChars.WILDCARD_MULTI]:
            parts.append(SpecialChars.WILDCARD_MULTI)
        return _match(KEYWORDS, parts, cased=isinstance(value, SigmaCasedString))
    if isinstance(value, SigmaExpansion):
        return Or(tuple(_keyword(v) for v in value.values))
    if isinstance(value, SigmaNumber):
        star = SpecialChars.WILDCARD_MULTI
        return _match(KEYWORDS, [star, str(value.number), star], cased=True)
    raise RuleError(f"keyword {value!r} of type {type(value).__name__} is not supported")


def _merge_in(items: Iterable[Node]) -> tuple[Node, ...]:
    """`f ieq a or f ieq b or ...` as one `f iin {a, b, ...}` (one set lookup)."""
    out: list[Node] = []
    sets: dict[int, tuple[Field, set[str]]] = {}
    for item in items:
        if isinstance(item, Cmp) and item.op == "ieq":
            entry = sets.setdefault(id(item.field), (item.field, set()))
            entry[1].add(item.value)
        else:
            out.append(item)
    for field, values in sets.values():
        if len(values) == 1:
            out.append(Cmp(field, "ieq", next(iter(values)), "any"))
        else:
            out.append(Cmp(field, "iin", frozenset(values), "any"))
    return tuple(out)


def _node(cond: Any, source: str) -> Node:
    if isinstance(cond, ConditionAND):
        return And(tuple(_node(a, source) for a in cond.args))
    if isinstance(cond, ConditionOR):
        return Or(_merge_in(_node(a, source) for a in cond.args))
    if isinstance(cond, ConditionNOT):
        return Not(_node(cond.args[0], source))
    if isinstance(cond, ConditionFieldEqualsValueExpression):
        field = resolve(source, cond.field)
        if isinstance(cond.value, SigmaExists):  # presence, whatever the value (null, [])
            present = Cmp(presence(source, cond.field), "exists")
            return present if cond.value.exists else Not(present)
        return _value(field, cond.value, source)
    if isinstance(cond, ConditionValueExpression):
        return _keyword(cond.value)
    raise RuleError(f"condition element {type(cond).__name__} is not supported")


def compile_condition(rule: SigmaRule, source: str) -> Node:
    """The predicate of a (processed) Sigma rule, for records of `source`."""
    nodes = [_node(c.parse(), source) for c in rule.detection.parsed_condition]
    if not nodes:
        return Const(False)
    return simplify(Or(tuple(nodes)) if len(nodes) > 1 else nodes[0])


def fields_used(rule: SigmaRule) -> list[str]:
    """The field names a rule's detection reads, in order of first use."""
    seen: dict[str, None] = {}

    def walk(cond: Any) -> None:
        if isinstance(cond, ConditionFieldEqualsValueExpression):
            seen.setdefault(cond.field, None)
        for arg in getattr(cond, "args", None) or []:
            if not isinstance(arg, str):
                walk(arg)

    for c in rule.detection.parsed_condition:
        walk(c.parse())
    return list(seen)
