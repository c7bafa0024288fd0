"""`scan --fix DIR`: suggested patches for the findings a one-line edit fixes.

Fixed by rewriting the finding's line: nginx `access_log off|/dev/null` becomes
`access_log /dev/stdout` (arguments after the path, such as the format, are kept),
`error_log /dev/null` becomes `error_log /dev/stderr`, ingress-nginx switches are turned
back on, and Docker's `none` log driver becomes `json-file`. Patched copies are written
under DIR (at the file's path relative to the working directory, or its absolute path
below DIR), with a unified diff of all of them in DIR/logwarden-fix.diff. The originals
are left alone unless `in_place` is set.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from logwarden.errors import InputError
from logwarden.records import Finding

__all__ = ["FIXABLE", "FixResult", "write_fixes"]

_Rewrite = Callable[[str], str]


def _sub(pattern: str, repl: str) -> _Rewrite:
    rx = re.compile(pattern)
    return lambda line: rx.sub(repl, line)


#: check id -> rewrites tried on the finding's line
FIXABLE: dict[str, tuple[_Rewrite, ...]] = {
    "LW-DISCARD-001": (_sub(r"\baccess_log(\s+)(?:off|/dev/null)\b", r"access_log\1/dev/stdout"),),
    "LW-DISCARD-002": (_sub(r"\berror_log(\s+)/dev/null\b", r"error_log\1/dev/stderr"),),
    "LW-DISCARD-003": (
        _sub(r"(disable-access-log:\s*)([\"']?)true\2", r"\1\2false\2"),
        _sub(r"(enable-access-log:\s*)([\"']?)false\2", r"\1\2true\2"),
        _sub(r"(access-log-path:\s*)([\"']?)/dev/null\2", r"\1\2/dev/stdout\2"),
        _sub(r"(error-log-path:\s*)([\"']?)/dev/null\2", r"\1\2/dev/stderr\2"),
    ),
    "LW-DISCARD-006": (
        _sub(r"(\"log-driver\"\s*:\s*)\"none\"", r'\1"json-file"'),
        _sub(r"(\bdriver:\s*)([\"']?)none\2", r"\1\2json-file\2"),
        _sub(r"--log-driver(=|\s+)([\"']?)none\2", r"--log-driver\1\2json-file\2"),
    ),
}


@dataclass
class FixResult:
    written: list[str]
    diff_path: str | None
    fixed: int


def _target(out_dir: str, path: str) -> str:
    full = os.path.abspath(path)
    cwd = os.getcwd()
    rel = os.path.relpath(full, cwd) if full.startswith(cwd + os.sep) else full.lstrip(os.sep)
    return os.path.join(out_dir, rel)


def write_fixes(findings: Sequence[Finding], out_dir: str, in_place: bool = False) -> FixResult:
    by_file: dict[str, list[Finding]] = {}
    for f in findings:
        if f.id in FIXABLE and f.file and f.line:
            by_file.setdefault(f.file, []).append(f)
    written: list[str] = []
    diffs: list[str] = []
    fixed = 0
    try:
        os.makedirs(out_dir, exist_ok=True)
        for path, items in sorted(by_file.items()):
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines(keepends=True)
            new = list(lines)
            for f in items:
                i = (f.line or 0) - 1
                if not 0 <= i < len(new):
                    continue
                before = new[i]
                for rewrite in FIXABLE[f.id]:
                    new[i] = rewrite(new[i])
                fixed += new[i] != before
            if new == lines:
                continue
            diffs.extend(difflib.unified_diff(lines, new, f"a/{path}", f"b/{path}"))
            target = path if in_place else _target(out_dir, path)
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            with open(target, "w", encoding="utf-8") as fh:
                fh.writelines(new)
            written.append(target)
        diff_path = None
        if diffs:
            diff_path = os.path.join(out_dir, "logwarden-fix.diff")
            with open(diff_path, "w", encoding="utf-8") as fh:
                fh.writelines(diffs)
    except OSError as exc:
        raise InputError(f"--fix: {exc.filename}: {exc.strerror}") from exc
    return FixResult(written, diff_path, fixed)
