"""Falco condition syntax to a syntax tree (macros and lists still unresolved).

Grammar (precedence: `not` binds tightest, then `and`, then `or`):

    expr     := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | primary
    primary  := "(" expr ")" | check | macro
    check    := field [ "[" arg "]" ] ( unary-op | binary-op value | list-op list )
    value    := quoted-string | bare-word | "val(" field ")"
    list     := "(" [ item ("," item)* ] ")" | list-name   item := quoted-string | bare-word | list

Operators: `exists`; `= == != < <= > >= contains icontains bcontains startswith
bstartswith endswith glob iglob regex`; `in intersects pmatch`. A bare word without an
operator is a macro name. Errors carry the column of the offending character.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BINARY_OPS",
    "LIST_OPS",
    "BoolOp",
    "Check",
    "ConditionSyntaxError",
    "Item",
    "MacroRef",
    "NotOp",
    "parse_condition",
]

UNARY_OPS = frozenset({"exists"})
LIST_OPS = frozenset({"in", "intersects", "pmatch"})
BINARY_OPS = frozenset(
    {
        "=",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "contains",
        "icontains",
        "bcontains",
        "startswith",
        "bstartswith",
        "endswith",
        "glob",
        "iglob",
        "regex",
    }
)
_WORD_OPS = UNARY_OPS | LIST_OPS | {op for op in BINARY_OPS if op.isalpha()}
_SYMBOL_OPS = ("==", "!=", "<=", ">=", "=", "<", ">")
_KEYWORDS = frozenset({"and", "or", "not"})
_IDENT_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | set("0123456789.")
_BARE_STOP = set(" \t\r\n\f\v(),=\"'")  # Falco's bare string: [^()"'[:space:]=,]+
_ARG_STOP = set(" \t\r\n\f\v[]\"'")  # a bare field argument: [^][\"'[:space:]]+
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", " ": "\\", "\\": "\\", "/": "/"}


class ConditionSyntaxError(ValueError):
    """A condition does not parse; `column` is 1-based within the condition text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Item:
    """A value in a condition: its text, and whether it was quoted (quoted never expands)."""

    text: str
    quoted: bool


@dataclass(frozen=True)
class Check:
    field: str
    arg: str | None
    op: str
    #: Item for binary operators, tuple of Item for list operators, None for `exists`,
    #: or a `FieldValue` for `val(field)`.
    value: object
    column: int


@dataclass(frozen=True)
class FieldValue:
    field: str
    arg: str | None


@dataclass(frozen=True)
class MacroRef:
    name: str
    column: int


@dataclass(frozen=True)
class NotOp:
    item: Ast


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    items: tuple[Ast, ...]


Ast = BoolOp | NotOp | Check | MacroRef


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def fail(self, message: str, at: int | None = None) -> ConditionSyntaxError:
        return ConditionSyntaxError(message, (self.i if at is None else at) + 1)

    def skip(self) -> None:
        s, i = self.s, self.i
        while i < len(s) and s[i].isspace():
            i += 1
        self.i = i

    def peek_word(self) -> str:
        s, i = self.s, self.i
        j = i
        while j < len(s) and (s[j].isalnum() or s[j] == "_"):
            j += 1
        return s[i:j]

    def keyword(self, word: str) -> bool:
        """Consume `word` if it is next as a whole keyword."""
        self.skip()
        s, i = self.s, self.i
        end = i + len(word)
        if s[i:end] != word:
            return False
        if end < len(s) and (s[end].isalnum() or s[end] in "_.["):
            return False
        self.i = end
        return True

    def parse(self) -> Ast:
        self.skip()
        if self.i >= len(self.s):
            raise self.fail("empty condition")
        node = self.expr()
        self.skip()
        if self.i < len(self.s):
            raise self.fail(f"unexpected '{self.s[self.i]}' (expected 'and', 'or' or the end)")
        return node

    def expr(self) -> Ast:
        items = [self.conj()]
        while self.keyword("or"):
            items.append(self.conj())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def conj(self) -> Ast:
        items = [self.neg()]
        while self.keyword("and"):
            items.append(self.neg())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def neg(self) -> Ast:
        if self.keyword("not"):
            return NotOp(self.neg())
        return self.primary()

    def primary(self) -> Ast:
        self.skip()
        if self.i >= len(self.s):
            raise self.fail("condition ends where a check, macro or '(' was expected")
        if self.s[self.i] == "(":
            start = self.i
            self.i += 1
            node = self.expr()
            self.skip()
            if self.i >= len(self.s) or self.s[self.i] != ")":
                raise self.fail("missing ')' for the '(' here", start)
            self.i += 1
            return node
        return self.check()

    def ident(self) -> tuple[str, str | None, int]:
        """A field or macro name with its optional `[arg]`."""
        s, start = self.s, self.i
        if start >= len(s) or s[start] not in _IDENT_START:
            ch = s[start] if start < len(s) else "end of condition"
            raise self.fail(f"expected a field or macro name, found '{ch}'")
        j = start
        while j < len(s) and s[j] in _IDENT_CHARS:
            j += 1
        name = s[start:j]
        self.i = j
        arg = None
        if j < len(s) and s[j] == "[":
            self.i = j + 1
            if self.i < len(s) and s[self.i] in "\"'":
                arg = self.quoted()
            else:
                k = self.i
                while k < len(s) and s[k] not in _ARG_STOP:
                    k += 1
                if k == self.i:
                    raise self.fail("expected a field argument: a quoted or a bare string")
                arg = s[self.i : k]
                self.i = k
            if self.i >= len(s) or s[self.i] != "]":
                raise self.fail("missing ']' after field argument", j)
            self.i += 1
        return name, arg, start

    def check(self) -> Ast:
        name, arg, start = self.ident()
        if name in _KEYWORDS:
            raise self.fail(f"'{name}' where a check or macro was expected", start)
        self.skip()
        if self.i < len(self.s) and self.s[self.i] == "(":
            raise self.fail(
                f"'{name}(...)': field transformers are not supported by logwarden", start
            )
        op = self.operator()
        if op is None:
            if arg is not None or "." in name:
                raise self.fail(f"missing operator after field '{name}'")
            return MacroRef(name, start + 1)
        if op in UNARY_OPS:
            return Check(name, arg, op, None, start + 1)
        self.skip()
        if op in LIST_OPS:
            return Check(name, arg, op, self.list_value(), start + 1)
        return Check(name, arg, op, self.value(), start + 1)

    def operator(self) -> str | None:
        s, i = self.s, self.i
        for sym in _SYMBOL_OPS:
            if s.startswith(sym, i):
                self.i = i + len(sym)
                return sym
        word = self.peek_word()
        if word in _WORD_OPS and self.keyword(word):
            return word
        return None

    def value(self) -> Item | FieldValue:
        s = self.s
        if self.i >= len(s):
            raise self.fail("missing value after operator")
        if s.startswith("val(", self.i):
            self.i += 4
            self.skip()
            name, arg, _ = self.ident()
            self.skip()
            if self.i >= len(s) or s[self.i] != ")":
                raise self.fail("missing ')' after val(field")
            self.i += 1
            return FieldValue(name, arg)
        if s[self.i] in "\"'":
            return Item(self.quoted(), True)
        return Item(self.bare(), False)

    def list_value(self) -> tuple[Item, ...]:
        s = self.s
        if self.i < len(s) and s[self.i] not in "(\"'":
            return (Item(self.bare(), False),)  # `in some_list`: a list named without ()
        if self.i >= len(s) or s[self.i] != "(":
            raise self.fail("expected '(' to start a list")
        items: list[Item] = []
        self._list_items(items)
        return tuple(items)

    def _list_items(self, items: list[Item]) -> None:
        s = self.s
        self.i += 1  # '('
        self.skip()
        if self.i < len(s) and s[self.i] == ")":
            self.i += 1
            return
        while True:
            self.skip()
            if self.i >= len(s):
                raise self.fail("list is not closed with ')'")
            ch = s[self.i]
            if ch == "(":
                self._list_items(items)  # nested lists flatten
            elif ch in "\"'":
                items.append(Item(self.quoted(), True))
            else:
                items.append(Item(self.bare(), False))
            self.skip()
            if self.i >= len(s):
                raise self.fail("list is not closed with ')'")
            if s[self.i] == ",":
                self.i += 1
                continue
            if s[self.i] == ")":
                self.i += 1
                return
            raise self.fail(f"expected ',' or ')' in list, found '{s[self.i]}'")

    def bare(self) -> str:
        s, start = self.s, self.i
        j = start
        while j < len(s) and s[j] not in _BARE_STOP:
            j += 1
        if j == start:
            raise self.fail("missing value")
        self.i = j
        return s[start:j]

    def quoted(self) -> str:
        """A quoted string, unescaped as Falco does (`\\b \\f \\n \\r \\t \\\\ \\/`, the quote)."""
        s = self.s
        quote = s[self.i]
        start = self.i
        j = self.i + 1
        out: list[str] = []
        while j < len(s):
            ch = s[j]
            if ch == "\\" and j + 1 < len(s):
                nxt = s[j + 1]
                if nxt == quote:
                    out.append(quote)
                elif nxt in _ESCAPES:
                    out.append(_ESCAPES[nxt])
                else:
                    raise self.fail(f"invalid escape '\\{nxt}' in a {quote}-quoted string", j)
                j += 2
                continue
            if ch == quote:
                self.i = j + 1
                return "".join(out)
            out.append(ch)
            j += 1
        raise self.fail("string is not closed", start)


def parse_condition(text: str) -> Ast:
    """Parse a condition; raises ConditionSyntaxError with a 1-based column."""
    return _Parser(text).parse()
