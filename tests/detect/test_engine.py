"""The engine core: operator semantics (one definition, generated code), simplification,
and the rule index, which must never drop a rule that can match."""

from __future__ import annotations

import random
import re
from types import SimpleNamespace
from typing import Any

import pytest

from logwarden.detect.codegen import compile_predicate, compile_test, path_parts, pmatch
from logwarden.detect.index import RuleIndex
from logwarden.detect.ir import And, Cmp, Const, Field, Node, Not, Or, fields_of, simplify


def field(
    name: str, *, is_list: bool = False, indexable: bool = False, expr: str | None = None
) -> Field:
    return Field(
        name, lambda r: r.values.get(name), is_list=is_list, indexable=indexable, expr=expr
    )


def rec(**values: Any) -> SimpleNamespace:
    return SimpleNamespace(values=values)


S = field("s")
L = field("l", is_list=True)


@pytest.mark.parametrize(
    ("node", "value", "expected"),
    [
        (Cmp(S, "eq", "a"), "a", True),
        (Cmp(S, "eq", "a"), "b", False),
        (Cmp(S, "eq", "a"), None, False),
        (Cmp(S, "ne", "a"), "b", True),
        (Cmp(S, "ne", "a"), None, False),  # a missing field makes every comparison false
        (Not(Cmp(S, "ne", "a")), None, True),
        (Cmp(S, "lt", "b"), "a", True),
        (Cmp(S, "ge", "201"), "3", True),  # Falco compares strings as strings
        (Cmp(S, "startswith", "2"), "201", True),
        (Cmp(S, "endswith", ".com"), "a@x.com", True),
        (Cmp(S, "contains", "ss"), "password", True),
        (Cmp(S, "icontains", "pass"), "PassWord", True),
        (Cmp(S, "icontains", "äbc"), "ÄBC", False),  # ASCII letters only, as strcasestr
        (Cmp(S, "bcontains", b"/et"), "/etc/x", True),
        (Cmp(S, "bstartswith", b"/et"), "x/etc", False),
        (Cmp(S, "fullmatch", re.compile("a.c")), "abc", True),
        (Cmp(S, "fullmatch", re.compile("a.c")), "abcd", False),
        (Cmp(S, "search", re.compile("b.")), "abcd", True),
        (Cmp(S, "in", frozenset({"a", "b"})), "b", True),
        (Cmp(S, "in", frozenset({"a", "b"})), None, False),
        (Cmp(S, "pmatch", ("/etc", "/usr/bin/")), "/etc", True),
        (Cmp(S, "pmatch", ("/etc", "/usr/bin/")), "/etc/passwd", True),
        (Cmp(S, "pmatch", ("/etc", "/usr/bin/")), "/etcx", False),
        (Cmp(S, "pmatch", ("/etc", "/usr/bin/")), "/usr/bin/ls", True),
        (Cmp(S, "exists"), "", True),
        (Cmp(S, "exists"), None, False),
        # list fields: 'all' = every value (Falco's in), 'any' = some value (intersects)
        (Cmp(L, "in", frozenset({"a", "b"}), "all"), ["a", "b"], True),
        (Cmp(L, "in", frozenset({"a", "b"}), "all"), ["a", "c"], False),
        (Cmp(L, "in", frozenset({"a", "b"}), "any"), ["a", "c"], True),
        (Cmp(L, "in", frozenset({"a", "b"}), "any"), ["c"], False),
        (Cmp(L, "in", frozenset({"a"}), "all"), None, False),
        (Not(Cmp(L, "in", frozenset({"a"}), "all")), None, True),
        (Cmp(L, "contains", "x", "any"), ["a", "bxb"], True),
        (Cmp(L, "contains", "x", "all"), ["a", "bxb"], False),
        (Cmp(L, "exists"), ["a"], True),
    ],
)
def test_operator_semantics(node: Node, value: Any, expected: bool) -> None:
    target = node.item if isinstance(node, Not) else node
    assert isinstance(target, Cmp)
    name = target.field.name
    record = rec(**{name: value})
    assert bool(compile_predicate(node)(record)) is expected
    if isinstance(node, Cmp):
        # the index's per-value test uses the same generated code
        assert compile_test(node)(value) is expected


def test_inline_field_expressions_match_extractors() -> None:
    inline = Field("n", lambda r: r.values.get("n"), expr="r.values.get('n')")
    pred = And((Cmp(inline, "eq", "x"), Not(Cmp(inline, "startswith", "y"))))
    assert compile_predicate(pred)(rec(n="x"))
    assert not compile_predicate(pred)(rec(n="y"))


def test_pmatch_compares_path_components() -> None:
    def match(value: str, *prefixes: str) -> bool:
        return pmatch(value, tuple(path_parts(p) for p in prefixes))

    assert match("/a/b", "/a")
    assert not match("/ab", "/a")
    assert match("/a/", "/a/")
    assert match("/a/b", "/a/b/")  # empty components are skipped, as in Falco
    assert match("/a/b/c", "a/b")


def test_simplify_flattens_and_folds() -> None:
    a, b, c = Cmp(S, "eq", "a"), Cmp(S, "eq", "b"), Cmp(S, "eq", "c")
    assert simplify(And((a, And((b, c))))) == And((a, b, c))
    assert simplify(Or((a, Const(True)))) == Const(True)
    assert simplify(And((a, Const(True)))) == a
    assert simplify(And((a, Const(False)))) == Const(False)
    assert simplify(Not(Not(a))) == a
    assert simplify(Not(Const(False))) == Const(True)
    assert simplify(Or(())) == Const(False)


# --- the rule index --------------------------------------------------------------------

VERB = field("verb", indexable=True)
RES = field("resource", indexable=True)
USER = field("user")
GROUPS = field("groups", is_list=True)
VALUES = {
    "verb": ["get", "list", "create", "delete", None],
    "resource": ["pods", "secrets", "nodes", None],
    "user": ["alice", "system:x", "bob", None],
    "groups": [["a"], ["a", "b"], ["c"], None],
}


def random_cmp(rnd: random.Random) -> Node:
    f = rnd.choice([VERB, RES, USER, GROUPS])
    pool = [v for v in VALUES[f.name] if v is not None]
    if f.is_list:
        flat = sorted({x for v in pool for x in v})
        return Cmp(
            f, "in", frozenset(rnd.sample(flat, rnd.randint(1, 2))), rnd.choice(["all", "any"])
        )
    op = rnd.choice(["eq", "ne", "in", "startswith", "exists"])
    if op == "in":
        return Cmp(f, "in", frozenset(rnd.sample(pool, 2)))
    if op == "exists":
        return Cmp(f, "exists")
    value = rnd.choice(pool)
    return Cmp(f, op, value[:2] if op == "startswith" else value)


def random_pred(rnd: random.Random, depth: int = 0) -> Node:
    if depth > 2 or rnd.random() < 0.3:
        return random_cmp(rnd)
    kind = rnd.choice(["and", "or", "not"])
    if kind == "not":
        return Not(random_pred(rnd, depth + 1))
    items = tuple(random_pred(rnd, depth + 1) for _ in range(rnd.randint(2, 3)))
    return And(items) if kind == "and" else Or(items)


def test_index_never_drops_a_rule_that_matches() -> None:
    rnd = random.Random(20261127)
    preds = [random_pred(rnd) for _ in range(60)]
    matchers = [compile_predicate(p) for p in preds]
    index = RuleIndex(preds)
    assert {f.name for f in index.fields} <= {"verb", "resource"}
    dropped = 0
    for _ in range(3000):
        r = rec(**{name: rnd.choice(values) for name, values in VALUES.items()})
        candidates = set(index.candidates(r))
        matching = {i for i, m in enumerate(matchers) if m(r)}
        assert matching <= candidates
        dropped += len(preds) - len(candidates)
    assert dropped > 0, "the index never excluded anything: it is not doing its job"


def test_index_candidates_are_in_rule_order_and_cached() -> None:
    preds = [Cmp(VERB, "eq", "get"), Cmp(USER, "eq", "x"), Cmp(VERB, "eq", "list")]
    index = RuleIndex(preds)
    r = rec(verb="get")
    assert index.candidates(r) == (0, 1)
    # lookup() caches what was built per combination of key values
    assert index.lookup(r) == (0, 1)
    assert index.lookup(r) is index.lookup(rec(verb="get"))


def test_index_stays_sound_past_its_memory_bounds() -> None:
    preds = [Cmp(VERB, "eq", "v5"), Cmp(VERB, "ne", "v5")]
    index = RuleIndex(preds, max_values=4, max_keys=3)
    for i in range(20):
        r = rec(verb=f"v{i}")
        got = set(index.candidates(r))
        assert (0 in got) or i != 5
        assert 1 in got or i == 5


def test_fields_of_lists_each_field_once() -> None:
    pred = And((Cmp(VERB, "eq", "a"), Or((Cmp(VERB, "eq", "b"), Cmp(USER, "exists")))))
    assert fields_of(pred) == [VERB, USER]


def test_generated_dispatch_matches_brute_force_in_both_modes() -> None:
    from logwarden.detect.engine import _SourceRules
    from logwarden.detect.rule import Rule

    rnd = random.Random(7)
    preds = [random_pred(rnd) for _ in range(40)]
    matchers = [compile_predicate(p) for p in preds]
    # `first` is Falco's rule_matching: it applies to Falco rules; a Sigma rule alerts alone
    for formats in (["falco"] * len(preds), ["sigma" if i % 3 else "falco" for i in range(40)]):
        rules = [
            Rule(f"r{i}", formats[i], "t", "Notice", "low", p, lambda r: ("", {}))
            for i, p in enumerate(preds)
        ]
        first = _SourceRules("k8s_audit", rules, True, set(), set())
        every = _SourceRules("k8s_audit", rules, False, set(), set())
        for _ in range(2000):
            r = rec(**{name: rnd.choice(values) for name, values in VALUES.items()})
            expected = [i for i, m in enumerate(matchers) if m(r)]
            falco = next((i for i in expected if formats[i] == "falco"), None)
            got = first.index.lookup(r)[0](r)
            if "sigma" not in formats:  # only Falco rules: the index of the first match
                assert got == (expected[0] if expected else -1)
            else:
                assert got == [i for i in expected if formats[i] == "sigma" or i == falco]
            assert every.index.lookup(r)[0](r) == expected
