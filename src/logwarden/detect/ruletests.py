"""Rule tests: every rule file may bring events it must match and events it must not.

For a rule file `DIR/NAME.yml`, the tests are `DIR/tests/NAME.match.jsonl` and
`DIR/tests/NAME.nomatch.jsonl`, in any format `detect` reads. For a detection rule, every
event of the match file must raise an alert of that rule and no event of the nomatch file
may; for a correlation rule, the match file (a sequence of events) must raise at least one
alert of the correlation and the nomatch file none. Detection rules are tested on their
own (correlations off, so base rules alert too); correlations with every rule of the set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from logwarden.detect.engine import Engine
from logwarden.detect.rule import RuleSet
from logwarden.detect.rulesets import load_rules, resolve
from logwarden.normalize import k8s_audit
from logwarden.records import Alert, Record
from logwarden.rejects import Rejects
from logwarden.sources.files import FileSource

__all__ = ["RuleTest", "run_rule_tests", "test_files"]

KINDS = ("match", "nomatch")


@dataclass
class RuleTest:
    """The outcome of one test file of one rule file."""

    rule_file: str
    kind: str  # "match" | "nomatch"
    events_file: str | None
    passed: bool
    detail: str


def test_files(rule_file: str) -> dict[str, str | None]:
    """The test event files of a rule file, by kind (None where there is none)."""
    directory, name = os.path.split(rule_file)
    stem = os.path.splitext(name)[0]
    found: dict[str, str | None] = {}
    for kind in KINDS:
        path = os.path.join(directory, "tests", f"{stem}.{kind}.jsonl")
        found[kind] = path if os.path.isfile(path) else None
    return found


def _run(engine: Engine, events_file: str) -> tuple[list[list[Alert]], Rejects]:
    """Alerts per event (correlation alerts at the end go with the last event)."""
    per_event: list[list[Alert]] = []
    rejects = Rejects()

    def emit(record: Record) -> None:
        per_event.append(list(engine.process(record)))

    FileSource([events_file], k8s_audit.FORMAT, rejects).run(emit)
    if per_event:
        per_event[-1].extend(engine.flush())
    return per_event, rejects


def _check(rules: RuleSet, rule_file: str, kind: str, events_file: str) -> RuleTest:
    detection = [r.name for r in rules.rules if r.origin.split(":")[0] == rule_file]
    correlation = [c.name for c in rules.correlations if c.origin.split(":")[0] == rule_file]
    if correlation:
        engine = Engine(rules.rules, correlations=rules.correlations, match="all", lateness_ns=0)
        names = set(correlation)
    else:
        engine = Engine(rules.rules, match="all")
        names = set(detection)
    if not names:
        return RuleTest(rule_file, kind, events_file, False, "the file defines no rule")
    per_event, rejects = _run(engine, events_file)
    if rejects.count or not per_event:
        why = rejects.first[0].reason if rejects.first else "no events"
        return RuleTest(rule_file, kind, events_file, False, f"unusable test events: {why}")
    hits = [any(a.rule in names for a in alerts) for alerts in per_event]
    if kind == "nomatch":
        bad = [i + 1 for i, hit in enumerate(hits) if hit]
        detail = f"event(s) {bad} matched" if bad else f"{len(hits)} event(s), none matched"
        return RuleTest(rule_file, kind, events_file, not bad, detail)
    if correlation:
        fired = sum(hits)
        return RuleTest(rule_file, kind, events_file, fired > 0, f"{fired} alert(s) raised")
    missed = [i + 1 for i, hit in enumerate(hits) if not hit]
    detail = f"event(s) {missed} did not match" if missed else f"all {len(hits)} event(s) matched"
    return RuleTest(rule_file, kind, events_file, not missed, detail)


def run_rule_tests(specs: Sequence[str], *, require: bool = False) -> list[RuleTest]:
    """Test every rule file the specs name that has test files (or all, with `require`)."""
    rules = load_rules(list(specs))
    results: list[RuleTest] = []
    for spec in specs:
        for rule_file in resolve(spec):
            for kind, events_file in test_files(rule_file).items():
                if events_file is None:
                    if require:
                        results.append(
                            RuleTest(rule_file, kind, None, False, f"no {kind} test events")
                        )
                    continue
                results.append(_check(rules, rule_file, kind, events_file))
    return results
