"""Sigma correlation in a stream: windows over event time, groups, order, bounds."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import run_detect
from detect.sigma.events import edit, trace, write_events
from logwarden.detect.engine import Engine
from logwarden.detect.rulesets import load_rules
from logwarden.errors import RuleError

SECRET = edit(trace("create_secret.json"), verb="get")  # minikube-user reads a secret
BASE = """
title: Secret read
name: secret_read
logsource: {product: kubernetes, service: audit}
detection:
    sel: {objectRef.resource: secrets, verb: get}
    condition: sel
---
title: Exec
name: exec
logsource: {product: kubernetes, service: audit}
detection:
    sel: {objectRef.subresource: exec}
    condition: sel
"""


def at(event: dict[str, Any], second: float, **changes: Any) -> dict[str, Any]:
    """The event at 2024-05-17 08:00:00 + `second`, with a unique audit ID."""
    whole, frac = divmod(round(second * 1_000_000), 1_000_000)
    ts = f"2024-05-17T08:{whole // 60:02d}:{whole % 60:02d}.{frac:06d}Z"
    n = round(second * 1000)
    return edit(
        event,
        stageTimestamp=ts,
        requestReceivedTimestamp=ts,
        auditID=f"00000000-0000-4000-8000-{n:012d}",
        **changes,
    )


def run(tmp_path: Path, correlation: str, events: list[dict[str, Any]], **kw: Any) -> list[Any]:
    rules = tmp_path / "rules.yml"
    rules.write_text(BASE + "---\n" + textwrap.dedent(correlation))
    return run_detect(
        [write_events(tmp_path / "events.jsonl", events)], [rules], match="all", **kw
    ).alerts


EVENT_COUNT = """
title: Many reads
correlation:
    type: event_count
    rules: [secret_read]
    group-by: [user.username]
    timespan: 1m
    condition: {gte: 3}
"""


def test_event_count_fires_when_the_sliding_window_holds_enough(tmp_path: Path) -> None:
    events = [at(SECRET, s) for s in (0, 50, 100, 110)]  # 3 within a minute only at 110
    alerts = run(tmp_path, EVENT_COUNT, events)
    assert [a.rule for a in alerts] == ["Many reads"]
    (alert,) = alerts
    assert alert.output_fields["count"] == 3
    assert alert.output_fields["user.username"] == "minikube-user"
    assert alert.time.startswith("2024-05-17T08:01:50")
    assert alert.source == "correlation" and alert.rule_format == "sigma-correlation"
    assert len(alert.output_fields["audit_ids"]) == 3


def test_groups_are_separate(tmp_path: Path) -> None:
    events = [at(SECRET, s, user__username=f"u{s % 2}") for s in range(4)]  # 2 per user
    assert run(tmp_path, EVENT_COUNT, events) == []
    events += [at(SECRET, 5, user__username="u1")]
    assert [a.output_fields["user.username"] for a in run(tmp_path, EVENT_COUNT, events)] == ["u1"]


def test_base_rules_do_not_alert_unless_generate(tmp_path: Path) -> None:
    events = [at(SECRET, 0)]
    assert run(tmp_path, EVENT_COUNT, events) == []
    generating = EVENT_COUNT.replace(
        "    condition: {gte: 3}", "    condition: {gte: 3}\n    generate: true"
    )
    assert [a.rule for a in run(tmp_path, generating, events)] == ["Secret read"]


def test_after_firing_a_group_starts_over(tmp_path: Path) -> None:
    events = [at(SECRET, s) for s in range(7)]
    assert len(run(tmp_path, EVENT_COUNT, events)) == 2  # at the 3rd and the 6th


def test_lt_is_judged_when_the_window_closes(tmp_path: Path) -> None:
    few = EVENT_COUNT.replace("{gte: 3}", "{lt: 3}").replace("Many reads", "Few reads")
    events = [at(SECRET, 0), at(SECRET, 10), at(SECRET, 200, user__username="other")]
    alerts = run(tmp_path, few, events)
    # minikube-user's window [0, 60] closes with 2 reads; other's closes at the end with 1
    assert sorted((a.output_fields["user.username"], a.output_fields["count"]) for a in alerts) == [
        ("minikube-user", 2),
        ("other", 1),
    ]


VALUE_COUNT = """
title: Many namespaces
correlation:
    type: value_count
    rules: [secret_read]
    group-by: [user]
    aliases:
        user:
            secret_read: user.username
    timespan: 10m
    condition: {gte: 3, field: objectRef.namespace}
"""


def test_value_count_counts_distinct_values_with_aliases(tmp_path: Path) -> None:
    same = [at(SECRET, s, objectRef__namespace=n) for s, n in enumerate(["a", "b", "a", "b"])]
    assert run(tmp_path, VALUE_COUNT, same) == []
    spread = [*same, at(SECRET, 9, objectRef__namespace="c")]
    (alert,) = run(tmp_path, VALUE_COUNT, spread)
    assert alert.output_fields == {**alert.output_fields, "user": "minikube-user", "count": 3}


def test_value_count_forgets_values_that_left_the_window(tmp_path: Path) -> None:
    # a at 0 s leaves the 10-minute window before c at 700 s; b (110 s) is still in it
    events = [at(SECRET, s, objectRef__namespace=n) for s, n in [(0, "a"), (110, "b"), (700, "c")]]
    assert run(tmp_path, VALUE_COUNT, events) == []
    events.append(at(SECRET, 705, objectRef__namespace="d"))
    (alert,) = run(tmp_path, VALUE_COUNT, events)
    assert alert.output_fields["count"] == 3 and alert.time.startswith("2024-05-17T08:11:45")


BY_CODE = """
title: Reads by response code
correlation:
    type: event_count
    rules: [secret_read]
    group-by: [responseStatus.code]
    timespan: 1m
    condition: {gte: 2}
---
title: Response codes per user
correlation:
    type: value_count
    rules: [secret_read]
    group-by: [user.username]
    timespan: 1m
    condition: {gte: 2, field: responseStatus.code}
"""


def test_grouping_and_counting_by_response_code_read_the_code(tmp_path: Path) -> None:
    # the field mapping that reads SigmaHQ's `responseStatus.code: ALLOW` as the
    # authorizer's decision applies to a rule's detection, not to a correlation's fields
    events = [
        at(
            SECRET,
            0,
            responseStatus__code=200,
            annotations={"authorization.k8s.io/decision": "allow"},
        ),
        at(
            SECRET,
            1,
            responseStatus__code=403,
            annotations={"authorization.k8s.io/decision": "forbid"},
        ),
        at(
            SECRET,
            2,
            responseStatus__code=403,
            annotations={"authorization.k8s.io/decision": "forbid"},
        ),
    ]
    alerts = {a.rule: a for a in run(tmp_path, BY_CODE, events)}
    assert alerts["Reads by response code"].output_fields["responseStatus.code"] == "403"
    assert alerts["Reads by response code"].output_fields["count"] == 2
    assert alerts["Response codes per user"].output_fields["count"] == 2  # 200 and 403
    assert set(alerts) == {"Reads by response code", "Response codes per user"}


TEMPORAL = """
title: Read and exec
correlation:
    type: {kind}
    rules: [secret_read, exec]
    group-by: [user.username]
    timespan: 5m
"""


def test_temporal_any_order_within_the_window(tmp_path: Path) -> None:
    corr = TEMPORAL.format(kind="temporal")
    exec_ = trace("exec_pod.json")
    assert len(run(tmp_path, corr, [at(exec_, 0), at(SECRET, 100)])) == 1
    assert run(tmp_path, corr, [at(exec_, 0), at(SECRET, 400)]) == []


def test_temporal_ordered_needs_the_order(tmp_path: Path) -> None:
    corr = TEMPORAL.format(kind="temporal_ordered")
    exec_ = trace("exec_pod.json")
    assert len(run(tmp_path, corr, [at(SECRET, 0), at(exec_, 100)])) == 1
    assert run(tmp_path, corr, [at(exec_, 0), at(SECRET, 100)]) == []
    assert run(tmp_path, corr, [at(SECRET, 0), at(exec_, 400)]) == []


def test_out_of_order_within_lateness_gives_the_sorted_result(tmp_path: Path) -> None:
    rnd = random.Random(5)
    times = sorted(rnd.uniform(0, 600) for _ in range(60))
    events = [at(SECRET, t, user__username=f"u{i % 3}") for i, t in enumerate(times)]
    shuffled = list(events)
    for i in range(0, len(shuffled) - 1, 2):  # swap neighbours: at most a few seconds apart
        if times[i + 1] - times[i] < 4:
            shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    sorted_alerts = run(tmp_path, EVENT_COUNT, events)
    shuffled_alerts = run(tmp_path, EVENT_COUNT, shuffled)
    assert sorted_alerts and shuffled != events
    key = [(a.time, a.fingerprint, a.output_fields["count"]) for a in sorted_alerts]
    assert [(a.time, a.fingerprint, a.output_fields["count"]) for a in shuffled_alerts] == key
    # and the same again: replay is deterministic
    assert [(a.time, a.fingerprint) for a in run(tmp_path, EVENT_COUNT, events)] == [
        k[:2] for k in key
    ]


def _engine(tmp_path: Path, correlation: str, **kw: Any) -> Engine:
    rules = tmp_path / "rules.yml"
    rules.write_text(BASE + "---\n" + textwrap.dedent(correlation))
    loaded = load_rules([str(rules)])
    return Engine(loaded.rules, correlations=loaded.correlations, match="all", **kw)


def _records(tmp_path: Path, events: list[dict[str, Any]]) -> list[Any]:
    return run_detect([write_events(tmp_path / "r.jsonl", events)], []).records


def test_events_later_than_the_lateness_are_counted_not_used(tmp_path: Path) -> None:
    engine = _engine(tmp_path, EVENT_COUNT, lateness_ns=1_000_000_000)
    records = _records(tmp_path, [at(SECRET, 0), at(SECRET, 30), at(SECRET, 1), at(SECRET, 31)])
    alerts = [a for r in records for a in engine.process(r)] + list(engine.flush())
    assert engine.late == 1  # the read at 1 s
    assert [a.output_fields["count"] for a in alerts] == [3]


def test_state_is_bounded_and_overflow_counted(tmp_path: Path) -> None:
    engine = _engine(tmp_path, EVENT_COUNT, lateness_ns=0, max_groups=5)
    records = _records(tmp_path, [at(SECRET, i, user__username=f"u{i}") for i in range(12)])
    for record in records:
        engine.process(record)
    assert engine.overflow == 7
    assert all(len(groups) <= 5 for groups in engine.correlators["k8s_audit"]._groups)


def test_expired_groups_are_evicted(tmp_path: Path) -> None:
    engine = _engine(tmp_path, EVENT_COUNT, lateness_ns=0)
    events = [at(SECRET, i, user__username=f"u{i}") for i in range(50)] + [at(SECRET, 500)]
    for record in _records(tmp_path, events):
        engine.process(record)
    assert sum(len(g) for g in engine.correlators["k8s_audit"]._groups) == 1


def test_a_correlation_of_a_rule_that_failed_to_load_is_an_error_not_a_crash(
    tmp_path: Path,
) -> None:
    (tmp_path / "base.yml").write_text("title: Broken\nname: base\ndetection: [not, a, map]\n")
    (tmp_path / "burst.yml").write_text(
        "title: Burst\nname: burst\ncorrelation:\n  type: event_count\n  rules: [base]\n"
        "  group-by: [user.username]\n  timespan: 1m\n  condition: {gte: 3}\nlevel: high\n"
    )
    with pytest.raises(RuleError) as caught:
        load_rules([str(tmp_path)])
    assert "burst.yml" in str(caught.value) or "base" in str(caught.value)
