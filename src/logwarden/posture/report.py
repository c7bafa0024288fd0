"""Scan reports: a rich table grouped by severity, and JSON (a list of findings).

The JSON contract is `logwarden.records.Finding`, field for field: ``id``, ``severity``,
``title``, ``file``, ``line``, ``object``, ``message``, ``why``, ``remediation``,
``group``; `file`/`line` are null for live objects, `object` is null for plain files.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from logwarden.posture.model import Inventory
from logwarden.records import SEVERITIES, SEVERITY_STYLE, Finding

__all__ = ["counts_text", "location", "print_table", "to_json"]


def location(f: Finding) -> str:
    """``file:line``, the file alone, or the object, whichever the finding has."""
    if f.file:
        where = f"{f.file}:{f.line}" if f.line else f.file
        return f"{where} ({f.object})" if f.object and not f.line else where
    return f.object or "-"


def to_json(findings: Sequence[Finding]) -> bytes:
    return msgspec.json.format(msgspec.json.encode(list(findings)), indent=2) + b"\n"


def counts_text(findings: Sequence[Finding]) -> str:
    """``2 high, 1 low``: how many findings of each severity, most severe first; ``none``."""
    counts = ((sum(1 for f in findings if f.severity == s), s) for s in SEVERITIES)
    return ", ".join(f"{n} {s}" for n, s in counts if n) or "none"


def print_table(
    out: Console, findings: Sequence[Finding], inv: Inventory, seconds: float, verbose: bool
) -> None:
    for severity in SEVERITIES:
        group = [f for f in findings if f.severity == severity]
        if not group:
            continue
        table = Table(
            title=Text(f"{severity.upper()} ({len(group)})", style=SEVERITY_STYLE[severity]),
            title_justify="left",
            show_edge=False,
            expand=False,
        )
        table.add_column("id", no_wrap=True)
        table.add_column("where", overflow="fold")
        table.add_column("finding", overflow="fold")
        for f in group:
            text = Text(f.title, style="bold")
            text.append(f"\n{f.message}")
            if verbose:
                text.append(f"\nwhy: {f.why}", style="dim")
                text.append(f"\nfix: {f.remediation}", style="green")
            table.add_row(f.id, Text(location(f)), text)  # Text: a path is not markup
        out.print()
        out.print(table)
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row("files scanned", f"{inv.files:,}")
    summary.add_row("objects", f"{len(inv.objects):,}")
    if inv.live is not None:
        summary.add_row("live cluster", Text(inv.live.context))
    summary.add_row("findings", counts_text(findings))
    summary.add_row(
        "input errors", Text(f"{inv.rejects.count:,}", "red" if inv.rejects.count else "")
    )
    summary.add_row("time", f"{seconds:.2f} s")
    out.print()
    out.print(summary)
