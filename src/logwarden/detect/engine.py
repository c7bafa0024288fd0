"""The one engine every rule format runs in.

Rules arrive compiled to the predicate form of `ir`; the engine turns each predicate into a
generated Python function (`codegen`), groups rules by the record source they apply to,
and builds a `RuleIndex` per source so each record is checked only against rules that can
match it.

Matching modes, as Falco's `rule_matching`: ``first`` (Falco's default) raises at most one
alert per record, from the first matching rule in load order; ``all`` raises one per
matching rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from logwarden.detect.codegen import compile_predicate
from logwarden.detect.index import RuleIndex
from logwarden.detect.rule import Rule
from logwarden.normalize import by_source
from logwarden.records import Alert, Origin, Record, format_time_ns

__all__ = ["MATCH_MODES", "Engine"]

MATCH_MODES = ("first", "all")
_NONE: tuple[Alert, ...] = ()


class _SourceRules:
    """The enabled rules of one record source, compiled and indexed."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.matchers: list[Callable[[Any], Any]] = [
            compile_predicate(r.predicate, f"<rule {r.name}>") for r in rules
        ]
        self.index = RuleIndex([r.predicate for r in rules])


class Engine:
    """Evaluates rules over records; implements `detect.base.Detector`."""

    def __init__(self, rules: Sequence[Rule], *, match: str = "first") -> None:
        if match not in MATCH_MODES:
            raise ValueError(f"match must be one of {MATCH_MODES}, not {match!r}")
        self.match = match
        self.rules = [r for r in rules if r.enabled]
        by: dict[str, list[Rule]] = {}
        for rule in self.rules:
            by.setdefault(rule.source, []).append(rule)
        self._sources = {source: _SourceRules(rs) for source, rs in by.items()}
        #: alerts raised so far, by rule name
        self.counts: Counter[str] = Counter()
        self._first = match == "first"

    @property
    def sources(self) -> list[str]:
        return list(self._sources)

    def process(self, record: Record) -> Sequence[Alert]:
        compiled = self._sources.get(record.source)
        if compiled is None:
            return _NONE
        matchers = compiled.matchers
        found: list[Alert] | None = None
        for i in compiled.index.candidates(record):
            if matchers[i](record):
                alert = self._alert(compiled.rules[i], record)
                if self._first:
                    return (alert,)
                if found is None:
                    found = []
                found.append(alert)
        return found or _NONE

    def flush(self, now_ns: int) -> Sequence[Alert]:
        return _NONE

    def _alert(self, rule: Rule, record: Record) -> Alert:
        self.counts[rule.name] += 1
        output, fields = rule.render(record)
        audit_id, stage = by_source(record.source).alert_ids(record.view)
        return Alert(
            rule=rule.name,
            priority=rule.priority,
            severity=rule.severity,
            time=format_time_ns(record.time_ns),
            source=record.source,
            output=output,
            audit_id=audit_id,
            stage=stage,
            tags=list(rule.tags),
            output_fields=fields,
            rule_format=rule.format,
            origin=Origin(instance=record.instance, seq=record.seq, line=record.line),
        )
