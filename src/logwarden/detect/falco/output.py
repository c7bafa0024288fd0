"""Falco `output` strings: `%field` placeholders rendered from a record.

A placeholder is `%` followed by a field name and an optional `[arg]`; a trailing `.` that
is not part of a known field stays text. A missing value renders as `<NA>`, a list field as
`(a,b)`, as Falco does. Rendering also returns the values by field name (Falco's
`output_fields`).
"""

from __future__ import annotations

import re

from logwarden.detect.codegen import Builder
from logwarden.detect.falco.fields import FieldCatalog
from logwarden.detect.ir import Field
from logwarden.detect.rule import Renderer
from logwarden.errors import RuleError

__all__ = ["compile_output"]

_PLACEHOLDER = re.compile(r"%([A-Za-z_][A-Za-z0-9_.]*)(\[[^\]]*\])?")


def _show(value: str | list[str] | None) -> str:
    if value is None:
        return "<NA>"
    if isinstance(value, list):
        return "(" + ",".join(value) + ")"
    return value


def compile_output(text: str, catalog: FieldCatalog) -> Renderer:
    """A renderer for `text`; raises RuleError (no location) for an unknown field."""
    parts: list[str | tuple[str, Field]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        name, arg = m.group(1), m.group(2)
        end = m.end()
        while name.endswith(".") and not catalog.known(name):
            name = name[:-1]
            if arg is None:
                end -= 1
        if arg is not None and name != m.group(1):
            # "%a.b.[x]" is not a placeholder with an argument
            arg = None
            end = m.start() + 1 + len(name)
        parts.append(text[pos : m.start()])
        arg_text = arg[1:-1] if arg else None
        shown = name if arg_text is None else f"{name}[{arg_text}]"
        try:
            parts.append((shown, catalog.field(name, arg_text)))
        except RuleError as exc:
            raise RuleError(f"output: {exc.reason}") from None
        pos = end
    parts.append(text[pos:])
    return _generate([p for p in parts if p != ""], text)


def _generate(parts: list[str | tuple[str, Field]], text: str) -> Renderer:
    """One generated function: the values once, then the text and the values by name."""
    gen = Builder()
    gen.ns["_show"] = _show
    body: list[str] = []
    pieces: list[str] = []
    names: list[str] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(gen.const(part))
            continue
        shown, field = part
        var = f"_v{len(names)}"
        body.append(f"    {var} = {gen.value(field)}\n")
        pieces.append(f"_show({var})")
        names.append(f"{gen.const(shown)}: {var}")
    text_expr = " + ".join(pieces) if pieces else '""'
    body.append(f"    return {text_expr}, {{{', '.join(names)}}}\n")
    render: Renderer = gen.function("".join(body), f"<output {text[:40]!r}>")
    return render
