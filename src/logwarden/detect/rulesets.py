"""Where rules come from: named rule sets shipped with logwarden, or files and directories.

`--rules` takes a name (`falco`, `sigma`) or a path; a path always works in place of a
name. A directory stands for its `*.yaml`/`*.yml` files, recursively, in name order. Files
are grouped by format, detected from their content (a Falco file is a YAML list of items,
a Sigma file a YAML mapping with `title`): Falco files are applied in the order given, so
a later file overrides an earlier one, exactly as `falco -r a.yaml -r b.yaml`; Sigma files
load together, so a correlation may refer to a rule of another file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources

from logwarden.detect.falco import load_falco
from logwarden.detect.rule import RuleSet
from logwarden.detect.sigma import load_sigma
from logwarden.errors import RuleError

__all__ = [
    "BUILTIN",
    "DEFAULT",
    "builtin_path",
    "load_rules",
    "resolve",
    "rule_files",
    "rule_format",
]

#: Rule sets shipped in the package: name -> files under logwarden/rules/.
BUILTIN: dict[str, tuple[str, ...]] = {
    "builtin": ("builtin",),
    "falco": ("falco/k8s_audit_rules.yaml",),
    "sigma": ("sigma/rules",),
}

#: What `detect` loads when no --rules is given: logwarden's own K05 pack.
DEFAULT = ("builtin",)


def builtin_path(relative: str) -> str:
    """The file system path of a file shipped under logwarden/rules/."""
    return str(resources.files("logwarden") / "rules" / relative)


def _rule_files(directory: str) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "tests")
        found.extend(
            os.path.join(root, name)
            for name in files
            if name.endswith((".yaml", ".yml")) and not name.startswith(".")
        )
    return sorted(found)


def resolve(spec: str) -> list[str]:
    """The rule files `spec` stands for (a built-in name, a file or a directory).

    A directory's `tests/` subdirectories hold rule tests, not rules, and are skipped.
    """
    if spec in BUILTIN and not os.path.exists(spec):
        return [f for rel in BUILTIN[spec] for f in resolve(builtin_path(rel))]
    if os.path.isdir(spec):
        found = _rule_files(spec)
        if not found:
            raise RuleError("directory holds no .yaml or .yml rule files", file=spec)
        return found
    if os.path.isfile(spec):
        return [spec]
    names = ", ".join(sorted(BUILTIN))
    raise RuleError(
        f"no such rules file or directory, and not a rule set name ({names})", file=spec
    )


def rule_format(path: str) -> str:
    """'falco' for a YAML list of items, 'sigma' for a YAML mapping (a Sigma rule)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                text = line.strip()
                if not text or text.startswith("#") or text == "---":
                    continue
                return "falco" if text.startswith("-") else "sigma"
    except OSError as exc:
        raise RuleError(f"cannot read rules file: {exc.strerror or exc}", file=path) from exc
    return "falco"  # an empty file is an empty Falco rules file


def rule_files(specs: Sequence[str]) -> dict[str, list[str]]:
    """The files the specs stand for, by format, in order."""
    by_format: dict[str, list[str]] = {"falco": [], "sigma": []}
    for spec in specs:
        for path in resolve(spec):
            by_format[rule_format(path)].append(path)
    return by_format


def load_rules(specs: Sequence[str], errors: list[RuleError] | None = None) -> RuleSet:
    """Load every rule the specs name. With `errors`, collect problems instead of raising."""
    files = rule_files(specs)
    rules = RuleSet()
    if files["falco"]:
        rules.extend(load_falco(files["falco"], errors=errors))
    if files["sigma"]:
        rules.extend(load_sigma(files["sigma"], errors=errors))
    return rules
