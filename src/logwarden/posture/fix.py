"""`scan --fix DIR`: suggested patches for the findings a one-line edit fixes.

Fixed by rewriting the finding's line: nginx `access_log off|/dev/null` becomes
`access_log /dev/stdout` (arguments after the path, such as the format, are kept),
`error_log /dev/null|off` becomes `error_log /dev/stderr`, ingress-nginx switches are
turned back on, and Docker's `none` log driver becomes `json-file`; the rest of the file,
line endings included, is kept byte for byte. Patched copies are written under DIR (at
the file's path relative to the working directory, or its absolute path below DIR), with
a unified diff of all of them in DIR/logwarden-fix.diff. The originals are left alone
unless `in_place` is set, and a DIR whose copy of a file would be that file is refused.
"""

from __future__ import annotations

import difflib
import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from logwarden.errors import InputError, UsageError
from logwarden.records import Finding

__all__ = ["FIXABLE", "FixResult", "write_fixes"]

_Rewrite = Callable[[str], str]


def _sub(pattern: str, repl: str) -> _Rewrite:
    rx = re.compile(pattern)
    return lambda line: rx.sub(repl, line)


_TRUE = r"(?:true|True|TRUE|t|T|1)"  # what Go's strconv.ParseBool reads as true
_FALSE = r"(?:false|False|FALSE|f|F|0)"
_END = r"(?=[\s,}]|$)"  # the value ends: a YAML line, or a JSON member
_OFF_SWITCHES = r"disable-(?:http-|stream-)?access-log|access-log-off"

#: check id -> rewrites tried on the finding's line
FIXABLE: dict[str, tuple[_Rewrite, ...]] = {
    "LW-DISCARD-001": (
        _sub(
            r"""\baccess_log(\s+)(["']?)(?:off|/dev/null)\2(?=[\s;]|$)""",
            r"access_log\1\2/dev/stdout\2",
        ),
    ),
    "LW-DISCARD-002": (
        _sub(
            r"""\berror_log(\s+)(["']?)(?:off|/dev/null)\2(?=[\s;]|$)""",
            r"error_log\1\2/dev/stderr\2",
        ),
    ),
    "LW-DISCARD-003": (
        _sub(
            rf"((?:{_OFF_SWITCHES})[\"']?:\s*)([\"']?){_TRUE}\2{_END}",
            r"\1\2false\2",
        ),
        _sub(rf"(enable-access-log[\"']?:\s*)([\"']?){_FALSE}\2{_END}", r"\1\2true\2"),
        _sub(
            r"((?:(?:http|stream)-)?access-log-path[\"']?:\s*)([\"']?)/dev/null\2",
            r"\1\2/dev/stdout\2",
        ),
        _sub(r"(error-log-path[\"']?:\s*)([\"']?)/dev/null\2", r"\1\2/dev/stderr\2"),
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


def _lines(path: str) -> list[str]:
    """The lines of `path` with their own endings (CRLF stays CRLF), split at each LF."""
    with open(path, encoding="utf-8", newline="") as fh:
        return io.StringIO(fh.read(), newline="\n").readlines()


def write_fixes(findings: Sequence[Finding], out_dir: str, in_place: bool = False) -> FixResult:
    """Patch the lines of `findings` that a rewrite fixes; copies go under `out_dir`, and
    the originals are rewritten only when `in_place`. UsageError, before anything is
    written, when a copy would land on its own original (`out_dir` maps onto the scanned
    files, as `--fix .` does for paths under the working directory)."""
    by_file: dict[str, list[Finding]] = {}
    for f in findings:
        if f.id in FIXABLE and f.file and f.line:
            by_file.setdefault(f.file, []).append(f)
    targets = {path: path if in_place else _target(out_dir, path) for path in by_file}
    for path, target in targets.items():
        if not in_place and os.path.exists(target) and os.path.samefile(path, target):
            raise UsageError(
                f"--fix {out_dir}: the patched copy of {path} would overwrite the original; "
                "name a directory outside the scanned files, or add --fix-in-place"
            )
    written: list[str] = []
    diffs: list[str] = []
    fixed = 0
    try:
        os.makedirs(out_dir, exist_ok=True)
        for path, items in sorted(by_file.items()):
            lines = _lines(path)
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
            target = targets[path]
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            with open(target, "w", encoding="utf-8", newline="") as fh:
                fh.writelines(new)
            written.append(target)
        diff_path = None
        if diffs:
            diff_path = os.path.join(out_dir, "logwarden-fix.diff")
            with open(diff_path, "w", encoding="utf-8", newline="") as fh:
                fh.writelines(diffs)
    except OSError as exc:
        raise InputError(f"--fix: {exc.filename}: {exc.strerror}") from exc
    return FixResult(written, diff_path, fixed)
