"""SARIF 2.1.0 for code-scanning tools: one run, every check a rule, every finding a result.

Severities map to SARIF levels (critical/high: error, medium: warning, low/info: note)
and to the `security-severity` property code-scanning services sort by. A finding in a
file has a physical location (the path relative to the working directory when it lies
under it, with `%SRCROOT%` as its base, and the line); a finding about a live object or
the input as a whole has a logical location naming it. `partialFingerprints` keep a
finding's identity stable across runs when lines move.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from logwarden import __version__
from logwarden.posture.checks import ALL_CHECKS
from logwarden.records import Finding

__all__ = ["SCHEMA_URI", "to_sarif"]

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_SECURITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}


def _uri(path: str) -> tuple[str, str | None]:
    """A URI reference for `path` (RFC 3986, as SARIF requires: spaces, `#`, `%` and the
    like percent-encoded) relative to `%SRCROOT%` when it lies under it, else a file URI."""
    full = os.path.abspath(path)
    cwd = os.getcwd()
    if full.startswith(cwd.rstrip(os.sep) + os.sep):
        return quote(Path(os.path.relpath(full, cwd)).as_posix()), "%SRCROOT%"
    return Path(full).as_uri(), None


def _root_uri() -> str:
    uri = Path(os.getcwd()).as_uri()
    return uri if uri.endswith("/") else uri + "/"


def _rules() -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "name": "".join(w.capitalize() for w in c.title.replace(":", "").split()),
            "shortDescription": {"text": c.title},
            "fullDescription": {"text": c.why},
            "help": {"text": c.remediation},
            "defaultConfiguration": {"level": _LEVEL[c.severity]},
            "properties": {
                "group": c.group,
                "security-severity": _SECURITY[c.severity],
                "tags": ["security", "owasp-k8s-top10-k05", c.group],
            },
        }
        for c in ALL_CHECKS.values()
    ]


def _result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    location: dict[str, Any] = {}
    if f.file:
        uri, base = _uri(f.file)
        artifact: dict[str, Any] = {"uri": uri}
        if base:
            artifact["uriBaseId"] = base
        physical: dict[str, Any] = {"artifactLocation": artifact}
        if f.line:
            physical["region"] = {"startLine": f.line}
        location["physicalLocation"] = physical
    if f.object:
        location["logicalLocations"] = [{"name": f.object, "kind": "resource"}]
    identity = f"{f.id}|{f.file or ''}|{f.object or ''}|{f.message}"
    return {
        "ruleId": f.id,
        "ruleIndex": index[f.id],
        "level": _LEVEL[f.severity],
        "message": {"text": f"{f.message}. Fix: {f.remediation}"},
        "locations": [location],
        "partialFingerprints": {"logwarden/v1": hashlib.sha256(identity.encode()).hexdigest()[:32]},
        "properties": {"severity": f.severity, "security-severity": _SECURITY[f.severity]},
    }


def to_sarif(findings: Sequence[Finding]) -> dict[str, Any]:
    rules = _rules()
    index = {r["id"]: i for i, r in enumerate(rules)}
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "logwarden",
                        "version": __version__,
                        "informationUri": "https://owasp.org/www-project-kubernetes-top-ten/",
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": _root_uri()}},
                "results": [_result(f, index) for f in findings],
                "invocations": [{"executionSuccessful": True}],
            }
        ],
    }
