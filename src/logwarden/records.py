"""The few types every part of logwarden shares: Record and Alert.

A `Record` is one event as a source received it: the raw bytes (after redaction), where it
came from, and a decoded view of its fields made by the format module in `normalize/`.
An `Alert` is what a detector raises about one record (or, later, a window of records).

Severity is logwarden's own five-step scale; every rule format maps onto it
(`severity_of_priority` for Falco priorities).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

__all__ = [
    "FALCO_PRIORITIES",
    "SEVERITIES",
    "SEVERITY_STYLE",
    "Alert",
    "Finding",
    "Origin",
    "Record",
    "fingerprint",
    "format_duration_ns",
    "format_time_ns",
    "normalize_priority",
    "parse_duration",
    "severity_of_priority",
]

#: logwarden severities, most severe first.
SEVERITIES = ("critical", "high", "medium", "low", "info")

#: How a terminal shows each severity (rich styles), wherever alerts or findings are listed.
SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}

#: Falco priority names as Falco prints them, most severe first.
FALCO_PRIORITIES = (
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
)

_PRIORITY_ALIASES = {p.upper(): p for p in FALCO_PRIORITIES} | {"INFO": "Informational"}

_SEVERITY_OF_PRIORITY = {
    "Emergency": "critical",
    "Alert": "critical",
    "Critical": "critical",
    "Error": "high",
    "Warning": "medium",
    "Notice": "low",
    "Informational": "info",
    "Debug": "info",
}


def normalize_priority(text: str) -> str | None:
    """Falco's case-insensitive priority name as Falco prints it, or None if unknown."""
    return _PRIORITY_ALIASES.get(text.strip().upper())


def severity_of_priority(priority: str) -> str:
    """Map a Falco priority (as returned by `normalize_priority`) to a logwarden severity."""
    return _SEVERITY_OF_PRIORITY[priority]


def _key_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def fingerprint(rule: str, values: Iterable[Any]) -> str:
    """The stable identity of an alert: its rule and the values of its group key."""
    text = "\0".join([rule, *(_key_text(v) for v in values)])
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class Record(msgspec.Struct, gc=False):
    """One event as received.

    `source` is the kind of event (``k8s_audit``), which is all a rule may know about where
    a record came from. `instance` names the concrete origin (a file path, a source id),
    `seq` counts records per instance from 1, `line` is the line in a file (0 if none).
    `received_ns` is when logwarden read it, `time_ns` the event's own time (both
    nanoseconds since the epoch). `index` is its entry in the ledger once stored.
    `raw` holds the bytes of this one event as received; `view` is the decoded view made by
    the format module; `cache` holds values derived lazily from it (decoded sub-objects).
    """

    source: str
    instance: str
    seq: int
    line: int
    received_ns: int
    time_ns: int
    raw: bytes
    view: Any
    cache: dict[str, Any] | None = None
    #: the record's entry in the ledger, once stored there (-1: not stored, or not known)
    index: int = -1


_second_text: dict[int, str] = {}


def format_time_ns(ns: int) -> str:
    """RFC 3339 in UTC with nanoseconds, the way Falco prints event times."""
    secs, frac = divmod(ns, 1_000_000_000)
    text = _second_text.get(secs)
    if text is None:
        if len(_second_text) > 65536:
            _second_text.clear()
        # isoformat, not strftime: "%Y" leaves years before 1000 unpadded on glibc
        text = _second_text[secs] = (
            datetime.fromtimestamp(secs, UTC).replace(tzinfo=None).isoformat()
        )
    return f"{text}.{frac:09d}Z"


def format_duration_ns(ns: int) -> str:
    """A duration the way rules write it: `5m`, `1h`, `90s`, `2d`."""
    secs = ns // 1_000_000_000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs and secs % size == 0:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def parse_duration(text: str) -> int:
    """Nanoseconds of a duration written `30s`, `5m`, `1h`, `2d`, `500ms`, `1h30m` (units
    joined as Alertmanager and Prometheus write them), or plain seconds."""
    if text.isascii() and text.isdigit():
        return int(text) * 1_000_000_000
    steps = _DURATION_STEP.findall(text)
    if not text or "".join(n + u for n, u in steps) != text:
        raise ValueError(f"'{text}' is not a duration like 30s, 5m, 1h, 2d or 1h30m")
    return sum(int(n) * _DURATION_UNITS[u] for n, u in steps)


_DURATION_UNITS = {
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
_DURATION_STEP = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")


class Origin(msgspec.Struct, omit_defaults=True, gc=False):
    """Where the record behind an alert came from (`index`: its ledger entry, -1 if none)."""

    instance: str
    seq: int
    line: int
    index: int = -1


class Alert(msgspec.Struct, kw_only=True, gc=False):
    """One rule matched one record.

    Field order and names are the `--format jsonl` contract: `rule`, `priority` (Falco's
    name), `severity` (critical/high/medium/low/info), `time` (RFC 3339, the event's own
    time), `source`, `output` (the rendered text), `audit_id`, `stage`, `tags`; then
    `output_fields`, `rule_format`, `origin`, `fingerprint`, `count`, `first_time`,
    `author`, `labels`, `resolves`.
    """

    rule: str
    priority: str
    severity: str
    time: str
    source: str
    output: str
    audit_id: str | None
    stage: str | None
    tags: tuple[str, ...]
    output_fields: dict[str, Any]
    rule_format: str
    origin: Origin
    #: the alert's identity: the rule and the values of its group key (stable across runs)
    fingerprint: str = ""
    #: how many occurrences this alert stands for (more than 1 for a suppression summary)
    count: int = 1
    #: for a summary, when the first of its occurrences happened
    first_time: str | None = None
    #: who wrote the rule, where its license asks for credit wherever its matches show
    #: (SigmaHQ's Detection Rule License 1.1)
    author: str | None = None
    #: what the event was about, for routing and grouping (`namespace`, `user`,
    #: `resource`), as its format module reads them (`normalize.base.Format.alert_labels`)
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    #: this alert says the condition of the alert with the same fingerprint has ended (a
    #: silent source sends again): it closes that alert instead of opening one
    resolves: bool = False


class Finding(msgspec.Struct, kw_only=True):
    """One posture problem `logwarden scan` found.

    Field order and names are the `scan --format json` contract: `id` (the stable id of
    the check, e.g. ``LW-DISCARD-001``), `severity` (critical/high/medium/low/info),
    `title` (the check's one-line name), `file` and `line` (1-based; None when the finding
    is about a live object or a whole input), `object` (the Kubernetes object or cloud
    resource, ``Kind/namespace/name``), `message` (what was found, here), `why` (why it
    matters for K05), `remediation` (how to fix it) and `group` (the check group).
    """

    id: str
    severity: str
    title: str
    file: str | None
    line: int | None
    object: str | None
    message: str
    why: str
    remediation: str
    group: str
