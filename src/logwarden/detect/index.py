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

The index also *specializes*: for one combination of key values, each candidate's
predicate has the known values substituted and is simplified, so what remains to test per
record (the residual) reads only fields the key does not decide. `build` receives the
candidates with their residuals and is called once per distinct such tuple (many key
combinations share one); its result is cached per combination.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from logwarden.detect.codegen import compile_test, compile_values
from logwarden.detect.ir import And, Cmp, Const, Field, Node, Not, Or, fields_of, simplify

__all__ = ["RuleIndex"]

_UNKNOWN = None
T = TypeVar("T")
#: candidates of one key combination: (predicate index, residual predicate), in order
Residuals = tuple[tuple[int, Node], ...]


def _identity(pairs: Residuals) -> tuple[int, ...]:
    return tuple(j for j, _ in pairs)


class RuleIndex(Generic[T]):
    """Maps a record to what `build` made of the rules that can match it (see module doc).

    `build(pairs)` gets `(index, residual predicate)` for each candidate, in rule order,
    without those whose residual is false; the default returns the indices.
    """

    def __init__(
        self,
        predicates: Sequence[Node],
        build: Callable[[Residuals], T] = _identity,  # type: ignore[assignment]
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
        position = {id(f): i for i, f in enumerate(self.fields)}
        # per predicate, the positions in the key of the key fields it reads
        self._reads = [
            tuple(position[id(f)] for f in fields_of(pred) if id(f) in position)
            for pred in self._preds
        ]
        self._memo: list[dict[Any, int]] = [{} for _ in self.fields]
        self._tests: dict[int, Callable[[Any], bool]] = {}
        #: what `build` made, per combination of key values (cleared when full, never replaced)
        self.cache: dict[tuple[Any, ...], T] = {}
        # per (predicate, values of the key fields it reads): the residual and its number
        self._residuals: dict[tuple[int, tuple[Any, ...]], tuple[Node, int]] = {}
        # residuals numbered by value, so equal candidate sets are found without hashing
        # trees again (numbers are never reused, even when the table starts over)
        self._numbers: dict[Node, int] = {}
        self._next = itertools.count()
        self._built: dict[tuple[tuple[int, int], ...], T] = {}
        self._build = build
        self.key = compile_values(self.fields, "<index key>")

    def lookup(self, record: Any) -> T:
        """What `build` made of the candidates for `record` (the hot path: one dict hit)."""
        key = self.key(record)
        found = self.cache.get(key)
        if found is None:
            found = self.compute(key)
        return found

    def candidates(self, record: Any) -> tuple[int, ...]:
        """Indices of the predicates that can be true for `record`, ascending."""
        return self._candidates(self.key(record))

    def _candidates(self, key: tuple[Any, ...]) -> tuple[int, ...]:
        mask = self._all
        for i, value in enumerate(key):
            mask &= self._mask(i, value)
        out = []
        while mask:  # the set bits, lowest first
            low = mask & -mask
            out.append(low.bit_length() - 1)
            mask ^= low
        return tuple(out)

    def compute(self, key: tuple[Any, ...]) -> T:
        """What `build` makes of the candidates for `key` (a miss of `cache`), cached."""
        pairs = []
        numbers = []
        for j in self._candidates(key):
            residual, number = self._residual(j, key)
            if number >= 0:
                pairs.append((j, residual))
                numbers.append((j, number))
        identity = tuple(numbers)
        built = self._built.get(identity)
        if built is None:
            if len(self._built) >= self._max_keys:
                self._built.clear()
            built = self._built[identity] = self._build(tuple(pairs))
        if len(self.cache) >= self._max_keys:
            self.cache.clear()
        self.cache[key] = built
        return built

    def _residual(self, j: int, key: tuple[Any, ...]) -> tuple[Node, int]:
        """Predicate `j` with the values of the key fields it reads substituted, and the
        number of that residual (-1 when it is false)."""
        reads = self._reads[j]
        memo_key = (j, tuple([key[p] for p in reads]))
        found = self._residuals.get(memo_key)
        if found is None:
            known = {id(self.fields[p]): key[p] for p in reads}
            residual = simplify(self._substitute(self._preds[j], known))
            if isinstance(residual, Const) and not residual.value:
                number = -1
            else:
                if len(self._numbers) >= self._max_keys:
                    self._numbers.clear()
                number = self._numbers.get(residual, -1)
                if number < 0:
                    number = self._numbers[residual] = next(self._next)
            if len(self._residuals) >= self._max_keys:
                self._residuals.clear()
            found = self._residuals[memo_key] = (residual, number)
        return found

    def _substitute(self, node: Node, known: dict[int, Any]) -> Node:
        if isinstance(node, Cmp):
            if node.op == "fieldref" or id(node.field) not in known:
                return node
            return Const(self._test(node)(known[id(node.field)]))
        if isinstance(node, Not):
            return Not(self._substitute(node.item, known))
        if isinstance(node, And):
            return And(tuple(self._substitute(i, known) for i in node.items))
        if isinstance(node, Or):
            return Or(tuple(self._substitute(i, known) for i in node.items))
        return node

    def _test(self, node: Cmp) -> Callable[[Any], bool]:
        test = self._tests.get(id(node))
        if test is None:
            test = self._tests[id(node)] = compile_test(node)
        return test

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
            return self._test(node)(value)
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
