"""The text of a Sigma alert: the rule's title and the values of its fields.

Sigma rules have no output template, so an alert reads `Title (field=value ...)`, with the
rule's `fields:` list if it has one, else the fields its detection reads, then context
(user, namespace, name). A missing value shows as `<NA>`, several values joined by `,`.
"""

from __future__ import annotations

from collections.abc import Sequence

from logwarden.detect.codegen import Builder
from logwarden.detect.ir import Field
from logwarden.detect.rule import Renderer

__all__ = ["compile_output"]


def _show(value: str | list[str] | None) -> str:
    if value is None:
        return "<NA>"
    if isinstance(value, list):
        return ",".join(value)
    return value


def compile_output(title: str, fields: Sequence[tuple[str, Field]]) -> Renderer:
    """A renderer for an alert of the rule `title`, showing `fields` (name, Field)."""
    gen = Builder()
    gen.ns["_show"] = _show
    body: list[str] = []
    pieces: list[tuple[str, str]] = [("text", title)]
    names: list[str] = []
    for n, (name, field) in enumerate(fields):
        var = f"_v{n}"
        body.append(f"    {var} = {gen.value(field)}\n")
        pieces.append(("text", f"{' (' if n == 0 else ' '}{name}="))
        pieces.append(("expr", f"{var} if {var}.__class__ is str else _show({var})"))
        names.append(f"{gen.const(name)}: {var}")
    if fields:
        pieces.append(("text", ")"))
    body.append(f"    return {gen.text(pieces)}, {{{', '.join(names)}}}\n")
    render: Renderer = gen.function("".join(body), f"<output {title[:40]!r}>")
    return render
