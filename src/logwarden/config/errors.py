"""What is wrong with a config file: one `Problem` per mistake, all in one `ConfigError`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from logwarden.errors import UsageError

__all__ = ["ConfigError", "Key", "Problem", "dotted"]

#: One step of a path into the config: a mapping key or a list index.
Key = str | int

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def dotted(path: tuple[Key, ...]) -> str:
    """`sources.audit.listen`, `detect.rules[1]`, `receivers.hook.headers["X.Y"]`."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif _PLAIN_KEY.fullmatch(key):
            out += f".{key}" if out else key
        else:
            out += f"[{json.dumps(key)}]"
    return out


@dataclass(frozen=True)
class Problem:
    """One mistake: where (file, line, path into the config) and what is wrong."""

    message: str
    path: tuple[Key, ...] = ()
    file: str | None = None
    line: int = 0
    #: 1-based, where it is known exactly (a YAML syntax error, a byte that is not UTF-8)
    column: int = 0

    def __str__(self) -> str:
        parts = []
        if self.file is not None:
            where = f"{self.file}:{self.line}" if self.line else self.file
            parts.append(f"{where}:{self.column}" if self.line and self.column else where)
        if self.path:
            parts.append(dotted(self.path))
        parts.append(self.message)
        return ": ".join(parts)


class ConfigError(UsageError):
    """A config file cannot be used (a usage error: exit 2). `problems` lists every mistake,
    in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line == 0, p.line))
        super().__init__("\n".join(str(p) for p in self.problems))
