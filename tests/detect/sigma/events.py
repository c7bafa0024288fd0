"""Helpers for Sigma tests: real trace events, edited where a test needs it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from conftest import FIXTURES, TRACES


def trace(name: str, line: int = 0) -> dict[str, Any]:
    """One real event of Falco's trace files."""
    result: dict[str, Any] = json.loads((TRACES / name).read_text().splitlines()[line])
    return result


def demo(pred: Any) -> dict[str, Any]:
    """The first real event of audit2rbac's demo log that `pred` accepts."""
    for line in (FIXTURES / "audit" / "demo.log").read_text().splitlines():
        event: dict[str, Any] = json.loads(line)
        if pred(event):
            return event
    raise LookupError("no such event")


def edit(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy with `a__b=value` set at path a.b (None removes it)."""
    out = copy.deepcopy(event)
    for path, value in changes.items():
        keys = path.split("__")
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return out


def write_events(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path
