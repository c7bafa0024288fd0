"""A Sigma correlation rule as the engine runs it, and the alert it raises.

`Correlation` is what the loader makes of a Sigma correlation rule (its base rules and
referenced correlations resolved to engine names, group-by fields resolved per rule);
`correlation.Correlator` evaluates it over a stream; `correlation_alert` is its alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from logwarden.detect.ir import Field
from logwarden.records import Alert, Origin, fingerprint, format_duration_ns, format_time_ns

__all__ = ["KINDS", "Correlation", "Seen", "correlation_alert"]

KINDS = ("event_count", "value_count", "temporal", "temporal_ordered")


@dataclass
class Correlation:
    """One correlation rule, with the rules it refers to resolved to their names in the engine."""

    name: str
    kind: str
    rules: tuple[str, ...]  # names of the base rules and correlations, in the rule's order
    timespan_ns: int
    op: str
    count: int
    group_by: tuple[str, ...] = ()
    #: per base rule name, the fields to read for `group_by` (aliases resolved)
    group_fields: dict[str, tuple[Field, ...]] = field(default_factory=dict)
    #: value_count: per base rule name, the field whose distinct values are counted
    value_fields: dict[str, Field] = field(default_factory=dict)
    #: per referenced correlation name, which of its group-by fields gives each of `group_by`
    #: (aliases resolved): its alerts hold its group values under those names
    chained_group: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: value_count: per referenced correlation name, its group-by field whose values count
    chained_value: dict[str, str] = field(default_factory=dict)
    priority: str = "Warning"
    severity: str = "medium"
    tags: tuple[str, ...] = ()
    desc: str = ""
    origin: str = ""
    generate: bool = False

    @property
    def base_rules(self) -> tuple[str, ...]:
        """The detection rules among `rules` (the others are correlations)."""
        return tuple(name for name in self.rules if name not in self.chained_group)


class Seen(Protocol):
    """A match behind a correlation alert."""

    @property
    def time_ns(self) -> int: ...
    @property
    def audit_id(self) -> str | None: ...
    @property
    def origin(self) -> Origin: ...


def correlation_alert(
    corr: Correlation, key: tuple[str | None, ...], events: Sequence[Seen], n: int, first_ns: int
) -> Alert:
    """The alert of `corr` for the group `key`: `events` are the latest matches behind it
    (in time order), `n` what its condition measured, `first_ns` when that began."""
    last = events[-1]
    labels = dict(zip(corr.group_by, key, strict=True))
    shown = " ".join(f"{k}={v if v is not None else '<NA>'}" for k, v in labels.items())
    span = format_duration_ns(corr.timespan_ns)
    output = (
        f"{corr.name}: {_seen(corr, n)} of {', '.join(dict.fromkeys(corr.rules))} within {span}"
    )
    if shown:
        output += f" ({shown})"
    # an event may be behind several matches (it matched several of the rules)
    audit_ids = list(dict.fromkeys(e.audit_id for e in events if e.audit_id is not None))
    return Alert(
        rule=corr.name,
        priority=corr.priority,
        severity=corr.severity,
        time=format_time_ns(last.time_ns),
        source="correlation",
        output=output,
        audit_id=last.audit_id,
        stage=None,
        tags=corr.tags,
        output_fields={
            **labels,
            "count": n,
            "first_time": format_time_ns(first_ns),
            "audit_ids": audit_ids[-10:],
        },
        rule_format="sigma-correlation",
        origin=last.origin,
        fingerprint=fingerprint(corr.name, key),
        labels=_alert_labels(labels),
    )


def _seen(corr: Correlation, n: int) -> str:
    """What a correlation's alert saw (`n`: its measure), for the alert's text."""
    if corr.kind == "event_count":
        return f"{n} matches"
    if corr.kind == "value_count":
        return f"{n} distinct values"
    if corr.kind == "temporal":
        return f"{n} of {len(set(corr.rules))} rules"
    if n == len(corr.rules):
        return " then ".join(corr.rules)
    return f"{n} of {len(corr.rules)} rules in order"


#: group-by fields that name what alert labels name
_LABEL_OF_FIELD = {
    "user.username": "user",
    "objectRef.namespace": "namespace",
    "objectRef.resource": "resource",
}


def _alert_labels(group: dict[str, str | None]) -> dict[str, str]:
    """A correlation's group-by values as alert labels: known audit fields under the label
    names every alert uses, others under their field name made a label name (`[a-z0-9_]`)."""
    out = {}
    for name, value in group.items():
        if value is None:
            continue
        label = _LABEL_OF_FIELD.get(name) or "".join(c if c.isalnum() else "_" for c in name)
        out[label] = value if isinstance(value, str) else ",".join(map(str, value))
    return out
