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

from collections.abc import Callable, Sequence
from typing import Any

from logwarden.detect.codegen import Builder
from logwarden.detect.index import RuleIndex
from logwarden.detect.rule import Rule
from logwarden.normalize import by_source
from logwarden.records import Alert, Origin, Record, format_time_ns

__all__ = ["MATCH_MODES", "Engine"]

MATCH_MODES = ("first", "all")
_NONE: tuple[Alert, ...] = ()


class _SourceRules:
    """The enabled rules of one record source, compiled and indexed.

    For each distinct set of candidate rules the index finds, one function is generated
    that evaluates those rules inline, in order: in `first` mode it returns the index of
    the first that matches (or -1), in `all` mode the indices of all that match.
    """

    def __init__(self, source: str, rules: list[Rule], first: bool) -> None:
        self.rules = rules
        self.first = first
        self.alert_ids = by_source(source).alert_ids
        self.index: RuleIndex[Callable[[Any], Any]] = RuleIndex(
            [r.predicate for r in rules], self._dispatcher
        )

    def _dispatcher(self, candidates: tuple[int, ...]) -> Callable[[Any], Any]:
        gen = Builder()
        lines = [] if self.first else ["    out = []\n"]
        for i in candidates:
            cond = gen.expr(self.rules[i].predicate)
            lines.append(f"    if {cond}:\n")
            lines.append(f"        return {i}\n" if self.first else f"        out.append({i})\n")
        lines.append("    return -1\n" if self.first else "    return out\n")
        names = ", ".join(self.rules[i].name for i in candidates)[:60]
        return gen.function("".join(lines), f"<rules {names}>")


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
        self._first = match == "first"
        self._sources = {s: _SourceRules(s, rs, self._first) for s, rs in by.items()}

    @property
    def sources(self) -> list[str]:
        return list(self._sources)

    def process(self, record: Record) -> Sequence[Alert]:
        compiled = self._sources.get(record.source)
        if compiled is None:
            return _NONE
        matched = compiled.index.lookup(record)(record)
        if self._first:
            if matched < 0:
                return _NONE
            return (_alert(compiled, compiled.rules[matched], record),)
        if not matched:
            return _NONE
        return [_alert(compiled, compiled.rules[i], record) for i in matched]

    def flush(self, now_ns: int) -> Sequence[Alert]:
        return _NONE


def _alert(compiled: _SourceRules, rule: Rule, record: Record) -> Alert:
    output, fields = rule.render(record)
    audit_id, stage = compiled.alert_ids(record.view)
    return Alert(
        rule=rule.name,
        priority=rule.priority,
        severity=rule.severity,
        time=format_time_ns(record.time_ns),
        source=record.source,
        output=output,
        audit_id=audit_id,
        stage=stage,
        tags=rule.tags,
        output_fields=fields,
        rule_format=rule.format,
        origin=Origin(instance=record.instance, seq=record.seq, line=record.line),
    )
