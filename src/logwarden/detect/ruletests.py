"""Rule tests: every rule file may bring events it must match and events it must not.

For a rule file `DIR/NAME.yml`, the tests are `DIR/tests/NAME.match.jsonl` and
`DIR/tests/NAME.nomatch.jsonl` (`.log` for a format of text lines, such as web access logs;
or a directory of that name, for container logs, whose pod comes from the file's path
`pods/<namespace>_<pod>_<uid>/<container>/0.log`). For a detection rule, every event of the
match file must raise an alert of that rule and no event of the nomatch file may; for a
correlation rule, the match file (a sequence of events) must raise at least one alert of
the correlation and the nomatch file none. Detection rules are tested on their own
(correlations off, so base rules alert too); correlations with every rule of the set.

Test events are in the format of the records the rule reads (`normalize.FORMATS` of the
rule's source: Kubernetes audit events, Events, journald entries, Hubble flows, ...), read
by `FileSource` as `detect` reads them (container logs, journald and Hubble files framed as
a whole). A rule of several sources (a web rule: ingress-nginx, nginx and Envoy) takes its
test events in the first of those formats that reads them without a reject.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from logwarden.detect.engine import Engine
from logwarden.detect.rule import RuleSet
from logwarden.detect.rulesets import load_rules, resolve
from logwarden.normalize import FORMATS, k8s_audit
from logwarden.normalize.base import Format
from logwarden.records import Alert, Record
from logwarden.rejects import Rejects
from logwarden.sources.files import FileSource

__all__ = ["RuleTest", "run_rule_tests", "test_files"]

KINDS = ("match", "nomatch")
#: how a test file may end, in the order looked for (a directory has no suffix)
SUFFIXES = (".jsonl", ".log", "")


@dataclass
class RuleTest:
    """The outcome of one test file of one rule file."""

    rule_file: str
    kind: str  # "match" | "nomatch"
    events_file: str | None
    passed: bool
    detail: str


def test_files(rule_file: str) -> dict[str, str | None]:
    """The test event files (or directories) of a rule file, by kind (None where there
    is none): `tests/NAME.KIND.jsonl`, else `.log`, else a directory `tests/NAME.KIND`."""
    directory, name = os.path.split(rule_file)
    stem = os.path.splitext(name)[0]
    found: dict[str, str | None] = {}
    for kind in KINDS:
        base = os.path.join(directory, "tests", f"{stem}.{kind}")
        found[kind] = next((base + s for s in SUFFIXES if _exists(base + s, s)), None)
    return found


def _exists(path: str, suffix: str) -> bool:
    return os.path.isfile(path) if suffix else os.path.isdir(path)


def _formats(rules: RuleSet, names: set[str]) -> list[Format]:
    """The formats of the records the named rules read, in rule order (audit events when
    none is known)."""
    sources = dict.fromkeys(r.source for r in rules.rules if r.name in names)
    found = [FORMATS[s] for s in sources if s in FORMATS]
    return found or [k8s_audit.FORMAT]


def _read(events_file: str, formats: list[Format]) -> tuple[list[Record], Rejects, str]:
    """The test events, in the first format that reads them all without a reject (else
    what the first format made of them), and that format's source."""
    tried: list[tuple[list[Record], Rejects, str]] = []
    for fmt in formats:
        records: list[Record] = []
        rejects = Rejects()
        FileSource([events_file], fmt, rejects).run(records.append)
        if not rejects.count and records:
            return records, rejects, fmt.source
        tried.append((records, rejects, fmt.source))
    return tried[0]


def _run(engine: Engine, records: list[Record]) -> list[list[Alert]]:
    """Alerts per event (correlation alerts at the end go with the last event)."""
    per_event = [list(engine.process(record)) for record in records]
    if per_event:
        per_event[-1].extend(engine.flush())
    return per_event


def _check(rules: RuleSet, rule_file: str, kind: str, events_file: str) -> RuleTest:
    detection = [r.name for r in rules.rules if r.origin.split(":")[0] == rule_file]
    correlations = [c for c in rules.correlations if c.origin.split(":")[0] == rule_file]
    if correlations:
        engine = Engine(rules.rules, correlations=rules.correlations, match="all", lateness_ns=0)
        names = {c.name for c in correlations}
        read = {name for c in correlations for name in c.rules}
    else:
        engine = Engine(rules.rules, match="all")
        names = read = set(detection)
    if not names:
        return RuleTest(rule_file, kind, events_file, False, "the file defines no rule")
    records, rejects, source = _read(events_file, _formats(rules, read))
    if rejects.count or not records:
        why = rejects.first[0].reason if rejects.first else "no events"
        detail = f"unusable test events ({source}): {why}"
        return RuleTest(rule_file, kind, events_file, False, detail)
    per_event = _run(engine, records)
    hits = [any(a.rule in names for a in alerts) for alerts in per_event]
    if kind == "nomatch":
        bad = [i + 1 for i, hit in enumerate(hits) if hit]
        detail = f"event(s) {bad} matched" if bad else f"{len(hits)} event(s), none matched"
        return RuleTest(rule_file, kind, events_file, not bad, detail)
    if correlations:
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
