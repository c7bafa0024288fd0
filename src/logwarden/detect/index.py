"""Candidate-rule selection: check an event only against rules that can match it.

The index reads a few *key fields* of every record (those marked `indexable` that the
rules use: for audit events the stage, verb, resource and subresource). For each key field
and each value it has seen, it knows which rules can still be true when that field has that
value, found by partial evaluation: every comparison on that field is decided, every other
one is unknown, and a rule whose predicate is then certainly false is dropped. A record's
candidates are the rules that survive for all of its key values, in rule order; the
answer is cached per combination of key values.

This is exact for any predicate (partial evaluation never drops a rule that could match)
and needs no hints from rule authors. Memory is bounded: past `max_values` distinct
values of one key field, new values select every rule; past `max_keys` combinations the
cache starts over.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from logwarden.detect.codegen import compile_test, compile_values
from logwarden.detect.ir import And, Cmp, Const, Field, Node, Not, Or, fields_of

__all__ = ["RuleIndex"]

_UNKNOWN = None
T = TypeVar("T")


def _identity(candidates: tuple[int, ...]) -> tuple[int, ...]:
    return candidates


class RuleIndex(Generic[T]):
    """Maps a record to what `build` made of the indices of the rules that can match it.

    `build(candidates)` is called once per distinct tuple of candidate indices (there are
    few: tens for Falco's rules) and its result is cached per combination of key values;
    the default returns the tuple itself.
    """

    def __init__(
        self,
        predicates: Sequence[Node],
        build: Callable[[tuple[int, ...]], T] = _identity,  # type: ignore[assignment]
        *,
        max_values: int = 4096,
        max_keys: int = 65536,
    ) -> None:
        self._preds = list(predicates)
        self._all = (1 << len(self._preds)) - 1
        self._max_values = max_values
        self._max_keys = max_keys
        keys: dict[int, Field] = {}
        for pred in self._preds:
            for f in fields_of(pred):
                if f.indexable and not f.is_list:
                    keys.setdefault(id(f), f)
        self.fields: list[Field] = list(keys.values())
        self._memo: list[dict[Any, int]] = [{} for _ in self.fields]
        self._tests: dict[int, Callable[[Any], bool]] = {}
        self._cache: dict[tuple[Any, ...], T] = {}
        self._built: dict[tuple[int, ...], T] = {}
        self._build = build
        self.key = compile_values(self.fields, "<index key>")

    def lookup(self, record: Any) -> T:
        """What `build` made of the candidates for `record` (the hot path: one dict hit)."""
        key = self.key(record)
        found = self._cache.get(key)
        if found is None:
            found = self._compute(key)
        return found

    def candidates(self, record: Any) -> tuple[int, ...]:
        """Indices of the predicates that can be true for `record`, ascending."""
        return self._candidates(self.key(record))

    def _candidates(self, key: tuple[Any, ...]) -> tuple[int, ...]:
        mask = self._all
        for i, value in enumerate(key):
            mask &= self._mask(i, value)
        return tuple(j for j in range(len(self._preds)) if mask >> j & 1)

    def _compute(self, key: tuple[Any, ...]) -> T:
        candidates = self._candidates(key)
        built = self._built.get(candidates)
        if built is None:
            built = self._built[candidates] = self._build(candidates)
        if len(self._cache) >= self._max_keys:
            self._cache.clear()
        self._cache[key] = built
        return built

    def _mask(self, i: int, value: Any) -> int:
        memo = self._memo[i]
        mask = memo.get(value)
        if mask is None:
            if len(memo) >= self._max_values:
                return self._all
            field = self.fields[i]
            mask = 0
            for j, pred in enumerate(self._preds):
                if self._eval3(pred, field, value) is not False:
                    mask |= 1 << j
            memo[value] = mask
        return mask

    def _eval3(self, node: Node, field: Field, value: Any) -> bool | None:
        """True, False, or None (unknown) for `node` when only `field` = `value` is known."""
        if isinstance(node, Cmp):
            if node.field is not field or node.op == "fieldref":
                return _UNKNOWN  # a field reference depends on a second field
            test = self._tests.get(id(node))
            if test is None:
                test = self._tests[id(node)] = compile_test(node)
            return test(value)
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Not):
            inner = self._eval3(node.item, field, value)
            return None if inner is None else not inner
        if isinstance(node, And):
            result: bool | None = True
            for item in node.items:
                r = self._eval3(item, field, value)
                if r is False:
                    return False
                if r is None:
                    result = None
            return result
        assert isinstance(node, Or)
        result = False
        for item in node.items:
            r = self._eval3(item, field, value)
            if r is True:
                return True
            if r is None:
                result = None
        return result
