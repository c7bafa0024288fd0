"""Falco `output` strings: `%field` placeholders rendered from a record.

Tokenized as Falco's event formatter does: after `%`, an optional width (`%20ka.verb`
pads or cuts the value to 20 characters), then the longest known field name at that
point (so `%ka.user.names` is `ka.user.name` followed by `s`), then `[arg]` if the field
takes one. A `%` not followed by a field is an error. A leading `*` is dropped. A missing
value renders as `<NA>`, a list field as `(a,b)`. Rendering also returns the values by
field name (Falco's `output_fields`).
"""

from __future__ import annotations

from dataclasses import dataclass

from logwarden.detect.codegen import Builder
from logwarden.detect.falco.fields import FieldCatalog
from logwarden.detect.ir import Field
from logwarden.detect.rule import Renderer
from logwarden.errors import RuleError

__all__ = ["compile_output"]


@dataclass(frozen=True)
class _Placeholder:
    shown: str
    field: Field
    width: int


def _show(value: str | list[str] | None) -> str:
    if value is None:
        return "<NA>"
    if isinstance(value, list):
        return "(" + ",".join(value) + ")"
    return value


def _fit(text: str, width: int) -> str:
    return text[:width].ljust(width)


def _tokens(text: str, catalog: FieldCatalog) -> list[str | _Placeholder]:
    parts: list[str | _Placeholder] = []
    literal_start = 0
    i = 0
    while i < len(text):
        if text[i] != "%":
            i += 1
            continue
        parts.append(text[literal_start:i])
        i += 1
        if i >= len(text):
            raise RuleError("output: invalid formatting: it cannot end with a %")
        start = i
        while i < len(text) and text[i].isdigit():
            i += 1
        width = int(text[start:i]) if i > start else 0
        if i >= len(text):
            raise RuleError("output: invalid formatting: it cannot end with a number")
        name = next((n for n in catalog.names if text.startswith(n, i)), None)
        if name is None:
            raise RuleError(f"output: invalid formatting token '%{text[start : start + 20]}'")
        i += len(name)
        arg = None
        if i < len(text) and text[i] == "[" and catalog.takes_argument(name):
            close = text.find("]", i)
            if close == -1:
                raise RuleError(f"output: missing ']' after '%{name}['")
            arg = text[i + 1 : close]
            i = close + 1
        shown = name if arg is None else f"{name}[{arg}]"
        try:
            parts.append(_Placeholder(shown, catalog.field(name, arg), width))
        except RuleError as exc:
            raise RuleError(f"output: {exc.reason}") from None
        literal_start = i
    parts.append(text[literal_start:])
    return [p for p in parts if p != ""]


def compile_output(text: str, catalog: FieldCatalog) -> Renderer:
    """A renderer for `text`; raises RuleError (no location) for a bad placeholder."""
    if text.startswith("*"):
        text = text[1:]
    return _generate(_tokens(text, catalog), text)


def _generate(parts: list[str | _Placeholder], text: str) -> Renderer:
    """One generated function: the values once, then the text and the values by name."""
    gen = Builder()
    gen.ns["_show"] = _show
    gen.ns["_fit"] = _fit
    body: list[str] = []
    pieces: list[tuple[str, str]] = []
    names: list[str] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(("text", part))
            continue
        var = f"_v{len(names)}"
        body.append(f"    {var} = {gen.value(part.field)}\n")
        shown = f"{var} if {var}.__class__ is str else _show({var})"
        pieces.append(("expr", f"_fit({shown}, {part.width})" if part.width else shown))
        names.append(f"{gen.const(part.shown)}: {var}")
    body.append(f"    return {gen.text(pieces)}, {{{', '.join(names)}}}\n")
    render: Renderer = gen.function("".join(body), f"<output {text[:40]!r}>")
    return render
