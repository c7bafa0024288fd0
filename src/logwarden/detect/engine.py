"""The one engine every rule format runs in.

Rules arrive compiled to the predicate form of `ir`; the engine groups them by the record
source they apply to, builds a `RuleIndex` per source so each record is checked only
against rules that can match it, and for each set of candidate rules generates one function
that tests them inline, in order (`codegen`).

Matching modes, as Falco's `rule_matching`: ``first`` (Falco's default) raises at most one
alert per record from Falco rules, from the first matching one in load order; ``all``
raises one per matching rule. The mode is Falco's: rules of other formats (Sigma) have no
such notion, and each of them raises its alert whatever the mode.

Correlations (`detect/correlation.py`) are fed by their base rules (and by the
correlations they refer to). A base rule is always tested, whatever the matching mode,
and its matches go to the correlations; it raises alerts of its own only if a correlation
using it says `generate: true` (Sigma's rule).

Each alert carries a fingerprint: a stable hash of the rule and the values of its group
key (`Rule.key_fields`, else its output fields), the identity that suppression and
alerting use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from logwarden.detect.codegen import Builder
from logwarden.detect.correlation import Correlation, Correlator
from logwarden.detect.index import Residuals, RuleIndex
from logwarden.detect.ir import Node
from logwarden.detect.rule import Rule
from logwarden.normalize import FORMATS
from logwarden.records import Alert, Origin, Record, fingerprint, format_time_ns

__all__ = ["MATCH_MODES", "Engine"]

MATCH_MODES = ("first", "all")
_NONE: tuple[Alert, ...] = ()
_Dispatch = tuple[Callable[[Any], Any], Callable[[Any], Any] | None]
_Maker = Callable[[Record], Alert]


def _no_labels(_view: Any) -> dict[str, str]:
    return {}


def _no_ids(_view: Any) -> tuple[str | None, str | None]:
    return None, None


class _SourceRules:
    """The enabled rules of one record source, compiled and indexed.

    For each distinct set of candidates the index finds (with their predicates specialized
    to the record's key values), two functions are generated: one over the candidates that
    alert (in `first` mode it returns the index of the first that matches, or -1; in `all`
    mode the indices of all that match) and, when some candidates feed correlations, one
    returning the indices of those that match.
    """

    def __init__(
        self, source: str, rules: list[Rule], first: bool, silent: set[str], feeders: set[str]
    ) -> None:
        self.rules = rules
        self.first = first
        fmt = FORMATS.get(source)
        self.alert_ids = fmt.alert_ids if fmt is not None else _no_ids
        labels = fmt.alert_labels if fmt is not None else _no_labels
        self.makers = [_maker(r, self.alert_ids, labels) for r in rules]
        #: rules `first` mode applies to (Falco's): the others alert on their own
        self._exclusive = [r.format == "falco" for r in rules]
        self._alerting = [r.name not in silent for r in rules]
        self._feeding = [r.name in feeders for r in rules]
        self.index: RuleIndex[_Dispatch] = RuleIndex([r.predicate for r in rules], self._dispatch)

    def _dispatch(self, residuals: Residuals) -> _Dispatch:
        alerting = [(i, r) for i, r in residuals if self._alerting[i]]
        feeding = [(i, r) for i, r in residuals if self._feeding[i]]
        alert_fn = self._generate(alerting, self.first, "rules")
        feed_fn = self._generate(feeding, False, "feeders") if feeding else None
        return alert_fn, feed_fn

    def _generate(
        self, pairs: list[tuple[int, Node]], first: bool, what: str
    ) -> Callable[[Any], Any]:
        """The candidates' test: in `first` mode over Falco rules only, the index of the
        first that matches (-1: none); else the list of those that match, in `first` mode
        the first matching Falco rule and every matching rule of another format."""
        gen = Builder()
        reads = gen.hoist_each([r for _, r in pairs])
        single = first and all(self._exclusive[i] for i, _ in pairs)
        lines = [] if single else ["    out = []\n", "    done = False\n"]
        for (i, residual), read in zip(pairs, reads, strict=True):
            lines.append(read)
            test = gen.expr(residual)
            if single:
                lines.append(f"    if {test}:\n        return {i}\n")
            elif first and self._exclusive[i]:
                lines.append(f"    if not done and {test}:\n")
                lines.append(f"        out.append({i})\n        done = True\n")
            else:
                lines.append(f"    if {test}:\n        out.append({i})\n")
        lines.append("    return -1\n" if single else "    return out\n")
        names = ", ".join(self.rules[i].name for i, _ in pairs)[:60]
        return gen.function("".join(lines), f"<{what} {names}>")


class Engine:
    """Evaluates rules (and correlations) over records; implements `detect.base.Detector`."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        correlations: Sequence[Correlation] = (),
        match: str = "first",
        lateness_ns: int = 5_000_000_000,
        max_groups: int = 100_000,
    ) -> None:
        if match not in MATCH_MODES:
            raise ValueError(f"match must be one of {MATCH_MODES}, not {match!r}")
        self.match = match
        self.rules = [r for r in rules if r.enabled]
        self.correlations = list(correlations)
        feeders = {name for corr in self.correlations for name in corr.base_rules}
        generating = {
            name for corr in self.correlations if corr.generate for name in corr.base_rules
        }
        silent = feeders - generating
        by: dict[str, list[Rule]] = {}
        for rule in self.rules:
            by.setdefault(rule.source, []).append(rule)
        self._first = match == "first"
        self._sources = {
            s: _SourceRules(s, rs, self._first, silent, feeders) for s, rs in by.items()
        }
        #: one correlator per record source: each keeps its own watermark, so a source
        #: whose events come later than another's (a polled cloud log, a replayed file)
        #: is not taken as late (a correlation counts within one source)
        self.correlators: dict[str, Correlator] = {}
        if self.correlations:
            self.correlators = {
                s: Correlator(
                    self.correlations, _alert_ids, lateness_ns=lateness_ns, max_groups=max_groups
                )
                for s in self._sources
            }
        #: the alerts a record raises, and correlation alerts now due
        self.process = self._processor()

    @property
    def sources(self) -> list[str]:
        return list(self._sources)

    def _processor(self) -> Callable[[Record], Sequence[Alert]]:
        """`process`, with everything fixed for the run bound as locals (the hot path)."""
        # the index's lookup inlined: its key function, its cache (cleared, never replaced)
        sources = {
            s: (
                c.index.key,
                c.index.cache,
                c.index.compute,
                c.makers,
                c.rules,
                self.correlators.get(s),
            )
            for s, c in self._sources.items()
        }
        first = self._first

        def process(record: Record) -> Sequence[Alert]:
            """The alerts this record raises (and correlation alerts now due)."""
            compiled = sources.get(record.source)
            if compiled is None:
                return _NONE
            key_of, cache, compute, makers, rules, correlator = compiled
            key = key_of(record)
            found = cache.get(key)
            alert_fn, feed_fn = found if found is not None else compute(key)
            matched = alert_fn(record)
            alerts: Sequence[Alert]
            if first and matched.__class__ is int:  # only Falco rules were candidates
                alerts = _NONE if matched < 0 else [makers[matched](record)]
            else:
                alerts = [makers[i](record) for i in matched] or _NONE
            if correlator is None:
                return alerts
            fed = feed_fn(record) if feed_fn is not None else None
            if fed:
                due = correlator.observe([rules[i].name for i in fed], record)
            elif record.time_ns >= correlator.gate:
                due = correlator.advance(record.time_ns)
            else:
                return alerts  # nothing can be due before the gate
            return [*alerts, *due] if due else alerts

        return process

    def flush(self) -> Sequence[Alert]:
        """The input is over: alerts of every window that holds one."""
        return [a for c in self.correlators.values() for a in c.flush()] or _NONE

    def advance(self, now_ns: int) -> list[Alert]:
        """Wall time is `now_ns` (no records came for a while): windows it has closed."""
        return [a for c in self.correlators.values() if now_ns >= c.gate for a in c.advance(now_ns)]

    @property
    def late(self) -> int:
        """Matches that came after their source's watermark had passed them."""
        return sum(c.late for c in self.correlators.values())

    @property
    def overflow(self) -> int:
        """Correlation groups dropped because a correlation had `max_groups` of them."""
        return sum(c.overflow for c in self.correlators.values())

    @property
    def crowded(self) -> int:
        """Match times or distinct values dropped from correlation groups that held as many
        as a group may (`Correlator`'s `max_held`)."""
        return sum(c.crowded for c in self.correlators.values())


def _alert_ids(source: str, view: Any) -> tuple[str | None, str | None]:
    fmt = FORMATS.get(source)
    return fmt.alert_ids(view) if fmt is not None else (None, None)


def _maker(
    rule: Rule,
    alert_ids: Callable[[Any], tuple[str | None, str | None]],
    alert_labels: Callable[[Any], dict[str, str]],
) -> _Maker:
    """The function that makes `rule`'s alert about a record (what is fixed, bound once)."""
    name, priority, severity, tags, fmt = (
        rule.name,
        rule.priority,
        rule.severity,
        rule.tags,
        rule.format,
    )
    author = rule.author or None
    render = rule.render
    extractors = [f.extract for f in rule.key_fields]
    # the hash of the rule's part of the fingerprint text, taken once: each alert copies
    # it and adds its output (the same digest as hashing `name NUL output` in one go)
    seed = hashlib.blake2b(f"{name}\0".encode(), digest_size=8)

    def make(record: Record) -> Alert:
        view = record.view
        output, fields = render(record)
        audit_id, stage = alert_ids(view)
        if extractors:
            key = fingerprint(name, [extract(record) for extract in extractors])
        else:  # the output text holds the values of the output fields, and nothing else varies
            digest = seed.copy()
            digest.update(output.encode())
            key = digest.hexdigest()
        return Alert(
            rule=name,
            priority=priority,
            severity=severity,
            time=format_time_ns(record.time_ns),
            source=record.source,
            output=output,
            audit_id=audit_id,
            stage=stage,
            tags=tags,
            output_fields=fields,
            rule_format=fmt,
            origin=Origin(record.instance, record.seq, record.line, record.index),
            fingerprint=key,
            author=author,
            labels=alert_labels(view),
        )

    return make
