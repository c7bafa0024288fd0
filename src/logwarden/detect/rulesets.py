"""Where rules come from: named rule sets shipped with logwarden, or files and directories.

`--rules` takes a name (`falco`) or a path; a path always works in place of a name. A
directory stands for its `*.yaml`/`*.yml` files in name order. Files are grouped by
format, detected from their content; Falco files are applied in the order given, so a
later file overrides an earlier one, exactly as `falco -r a.yaml -r b.yaml`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources

from logwarden.detect.falco import load_falco
from logwarden.detect.rule import RuleSet
from logwarden.errors import RuleError

__all__ = ["BUILTIN", "DEFAULT", "builtin_path", "load_rules", "resolve"]

#: Rule sets shipped in the package: name -> files under logwarden/rules/.
BUILTIN: dict[str, tuple[str, ...]] = {
    "falco": ("falco/k8s_audit_rules.yaml",),
}

#: What `detect` loads when no --rules is given.
DEFAULT = ("falco",)


def builtin_path(relative: str) -> str:
    """The file system path of a file shipped under logwarden/rules/."""
    return str(resources.files("logwarden") / "rules" / relative)


def resolve(spec: str) -> list[str]:
    """The rule files `spec` stands for (a built-in name, a file or a directory)."""
    if spec in BUILTIN and not os.path.exists(spec):
        return [builtin_path(rel) for rel in BUILTIN[spec]]
    if os.path.isdir(spec):
        found = sorted(
            os.path.join(spec, name)
            for name in os.listdir(spec)
            if name.endswith((".yaml", ".yml")) and not name.startswith(".")
        )
        if not found:
            raise RuleError("directory holds no .yaml or .yml rule files", file=spec)
        return found
    if os.path.isfile(spec):
        return [spec]
    names = ", ".join(sorted(BUILTIN))
    raise RuleError(
        f"no such rules file or directory, and not a rule set name ({names})", file=spec
    )


def _format(path: str) -> str:
    """'falco' for a Falco rules file (a YAML list of items)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                text = line.strip()
                if not text or text.startswith("#") or text == "---":
                    continue
                return "falco" if text.startswith("-") else "unknown"
    except OSError as exc:
        raise RuleError(f"cannot read rules file: {exc.strerror or exc}", file=path) from exc
    return "falco"  # an empty file is an empty Falco rules file


def load_rules(specs: Sequence[str]) -> RuleSet:
    """Load every rule the specs name, in order."""
    falco: list[str] = []
    for spec in specs:
        for path in resolve(spec):
            kind = _format(path)
            if kind != "falco":
                raise RuleError(
                    "not a Falco rules file (a YAML list of rule, macro and list items); "
                    "no other rule format is supported yet",
                    file=path,
                )
            falco.append(path)
    rules = RuleSet()
    if falco:
        rules.extend(load_falco(falco))
    return rules
