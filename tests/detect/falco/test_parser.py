"""Falco condition syntax: precedence, values, lists, and errors with their column."""

from __future__ import annotations

import pytest

from logwarden.detect.falco.parser import (
    BoolOp,
    Check,
    ConditionSyntaxError,
    Item,
    MacroRef,
    NotOp,
    parse_condition,
)


def test_not_binds_tighter_than_and_than_or() -> None:
    ast = parse_condition("a or not b and c")
    assert ast == BoolOp(
        "or", (MacroRef("a", 1), BoolOp("and", (NotOp(MacroRef("b", 10)), MacroRef("c", 16))))
    )


def test_parentheses_group() -> None:
    ast = parse_condition("(a or b) and c")
    assert isinstance(ast, BoolOp) and ast.op == "and"
    assert ast.items[0] == BoolOp("or", (MacroRef("a", 2), MacroRef("b", 7)))


def test_checks_without_spaces_and_bare_values() -> None:
    ast = parse_condition("ka.req.service.type=NodePort and jevt.rawtime=0")
    assert ast == BoolOp(
        "and",
        (
            Check("ka.req.service.type", None, "=", Item("NodePort", False), 1),
            Check("jevt.rawtime", None, "=", Item("0", False), 34),
        ),
    )


def test_field_arguments_and_json_pointers() -> None:
    ast = parse_condition("jevt.value[/annotations/authorization.k8s.io~1decision] exists")
    assert ast == Check(
        "jevt.value", "/annotations/authorization.k8s.io~1decision", "exists", None, 1
    )
    ast = parse_condition("ka.uri.param[command] startswith /bin")
    assert isinstance(ast, Check) and ast.arg == "command" and ast.value == Item("/bin", False)


def test_lists_keep_quoting_and_flatten_nesting() -> None:
    ast = parse_condition('ka.verb in (create, "up date", (patch, delete), my_list)')
    assert isinstance(ast, Check)
    assert ast.op == "in"
    assert ast.value == (
        Item("create", False),
        Item("up date", True),
        Item("patch", False),
        Item("delete", False),
        Item("my_list", False),
    )


def test_a_list_op_may_name_a_list_without_parentheses() -> None:
    ast = parse_condition("ka.verb in my_list")
    assert isinstance(ast, Check) and ast.value == (Item("my_list", False),)


def test_field_arguments_may_be_quoted() -> None:
    ast = parse_condition('ka.uri.param["watch"] = "true"')
    assert isinstance(ast, Check) and ast.arg == "watch"


def test_escapes_are_falcos() -> None:
    ast = parse_condition(r'ka.uri = "a\tb\/c\\d\ e"')
    assert isinstance(ast, Check) and ast.value == Item("a\tb/c\\d\\e", True)
    ast = parse_condition(r"ka.uri = 'it\'s'")
    assert isinstance(ast, Check) and ast.value == Item("it's", True)


def test_empty_list() -> None:
    ast = parse_condition("ka.verb in ()")
    assert isinstance(ast, Check) and ast.value == ()


def test_quoted_strings_unescape() -> None:
    ast = parse_condition(r'ka.uri = "a \"b\" \\ c"')
    assert isinstance(ast, Check) and ast.value == Item('a "b" \\ c', True)
    ast = parse_condition("ka.uri = 'single'")
    assert isinstance(ast, Check) and ast.value == Item("single", True)


def test_keywords_need_a_boundary() -> None:
    # 'notify' and 'order' are names, not the keywords 'not' and 'or'
    ast = parse_condition("notify or order")
    assert ast == BoolOp("or", (MacroRef("notify", 1), MacroRef("order", 11)))
    assert parse_condition("not(a)") == NotOp(MacroRef("a", 5))


def test_every_operator_parses() -> None:
    for op in [
        "=",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "contains",
        "icontains",
        "startswith",
        "endswith",
        "glob",
        "iglob",
        "regex",
        "bcontains",
        "bstartswith",
    ]:
        ast = parse_condition(f"ka.uri {op} x")
        assert isinstance(ast, Check) and ast.op == op, op
    for op in ["in", "intersects", "pmatch"]:
        ast = parse_condition(f"ka.uri {op} (x)")
        assert isinstance(ast, Check) and ast.op == op, op


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "empty condition", 1),
        ("ka.verb =", "missing value", 10),
        ("ka.verb create", "missing operator after field 'ka.verb'", 9),
        ("(a and b", "missing ')'", 1),
        ("a and", "condition ends where", 6),
        ("a b", "unexpected 'b'", 3),
        ('ka.uri = "open', "string is not closed", 10),
        ("ka.verb in (a, b", "list is not closed", 17),
        ("ka.verb in 'a'", "expected '(' to start a list", 12),
        ('ka.uri = "a\\.b"', "invalid escape '\\.'", 12),
        ("ka.uri contains a=b", "unexpected '='", 18),
        ("tolower(ka.verb) = x", "transformers are not supported", 1),
        ("ka.verb in (a b)", "expected ',' or ')'", 15),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(ConditionSyntaxError) as err:
        parse_condition(text)
    assert message in str(err.value)
    assert err.value.column == column
