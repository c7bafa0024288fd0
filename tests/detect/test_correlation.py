"""Sigma correlation in a stream: windows over event time, groups, order, bounds."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import run_detect
from detect.sigma.events import edit, trace, write_events
from logwarden.detect.correlation import Correlator
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


def test_an_unfinished_ordered_chain_keeps_only_its_latest_matches(tmp_path: Path) -> None:
    engine = _engine(tmp_path, TEMPORAL.format(kind="temporal_ordered"), lateness_ns=0)
    for record in _records(tmp_path, [at(SECRET, 60 * i) for i in range(60)]):  # no exec
        engine.process(record)
    (groups,) = [g for g in engine.correlators["k8s_audit"]._groups if g]
    (group,) = groups.values()
    assert len(group.recent) <= 20  # the latest reads for its alert, not all 60


def _correlator(tmp_path: Path, correlation: str, **kw: Any) -> Correlator:
    rules = tmp_path / "rules.yml"
    rules.write_text(BASE + "---\n" + textwrap.dedent(correlation))
    return Correlator(load_rules([str(rules)]).correlations, lambda _s, _v: (None, None), **kw)


def _feed(correlator: Correlator, records: list[Any]) -> list[Any]:
    return [a for r in records for a in correlator.observe(["Secret read"], r)]


LONG_VALUE_COUNT = VALUE_COUNT.replace("timespan: 10m", "timespan: 1h")


def test_a_flood_of_one_value_holds_no_more_than_its_values(tmp_path: Path) -> None:
    # a, b, then 2,000 reads in namespace a within the hour, then c: three values, however
    # many matches; what a group holds does not grow with the matches
    namespaces = ["a", "b"] + ["a"] * 2000
    events = [at(SECRET, i / 10, objectRef__namespace=n) for i, n in enumerate(namespaces)]
    correlator = _correlator(tmp_path, LONG_VALUE_COUNT, lateness_ns=0, max_held=3)
    records = _records(tmp_path, [*events, at(SECRET, 300, objectRef__namespace="c")])
    assert _feed(correlator, records[:-1]) == []
    (groups,) = correlator._groups
    (group,) = groups.values()
    assert len(group.seen or ()) == 2 and len(group.recent) <= 20
    (alert,) = _feed(correlator, records[-1:])  # fires at once
    assert alert.output_fields["count"] == 3 and correlator.crowded == 0
    # the three values were each last seen from b's read (at 0.1 s) on
    assert alert.output_fields["first_time"].startswith("2024-05-17T08:00:00.100")


def test_a_window_judged_at_its_close_counts_without_holding_the_matches(tmp_path: Path) -> None:
    not_five = EVENT_COUNT.replace("{gte: 3}", "{neq: 5}").replace("timespan: 1m", "timespan: 1h")
    correlator = _correlator(tmp_path, not_five, lateness_ns=0, max_held=3)
    records = _records(tmp_path, [at(SECRET, i / 10) for i in range(500)])
    assert _feed(correlator, records) == []
    (group,) = correlator._groups[0].values()
    assert group.times is None and len(group.recent) <= 20
    (alert,) = correlator.flush()
    assert alert.output_fields["count"] == 500 and correlator.crowded == 0


def test_past_max_held_values_the_oldest_is_dropped_and_counted(tmp_path: Path) -> None:
    correlator = _correlator(tmp_path, LONG_VALUE_COUNT, lateness_ns=0, max_held=2)
    events = [at(SECRET, i, objectRef__namespace=n) for i, n in enumerate("abcd")]
    assert _feed(correlator, _records(tmp_path, events)) == []  # never more than 2 held
    (group,) = correlator._groups[0].values()
    assert list(group.seen or ()) == ["c", "d"] and correlator.crowded == 2
    # a sliding event_count holds no more times than its threshold: that is not capped,
    # so a threshold past max_held still fires
    sliding = _correlator(tmp_path, EVENT_COUNT, lateness_ns=0, max_held=2)
    (alert,) = _feed(sliding, _records(tmp_path, [at(SECRET, i) for i in range(3)]))
    assert alert.rule == "Many reads" and sliding.crowded == 0


def test_an_event_lacking_a_group_by_field_counts_in_no_group(tmp_path: Path) -> None:
    # as Sigma backends do (Splunk's `stats count by user.username` leaves it out)
    anonymous = [at(SECRET, s, user__username=None) for s in range(3)]
    assert run(tmp_path, EVENT_COUNT, anonymous) == []
    mixed = [at(SECRET, 0), *anonymous, at(SECRET, 4), at(SECRET, 5)]
    (alert,) = run(tmp_path, EVENT_COUNT, mixed)
    assert alert.output_fields["user.username"] == "minikube-user"
    # the base rule still alerts when it generates
    generating = EVENT_COUNT.replace(
        "    condition: {gte: 3}", "    condition: {gte: 3}\n    generate: true"
    )
    assert [a.rule for a in run(tmp_path, generating, anonymous)] == ["Secret read"] * 3
    namespaces = [
        at(SECRET, s, user__username=None, objectRef__namespace=n) for s, n in enumerate("abc")
    ]
    assert run(tmp_path, VALUE_COUNT, namespaces) == []


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


EXEC_BY_ID = """
title: Exec by ID
name: exec_by_id
id: 5638f7c0-ac70-491d-8465-2a65075e0d86
logsource: {product: kubernetes, service: audit}
detection:
    sel: {objectRef.subresource: exec}
    condition: sel
---
"""


def test_an_alias_keyed_by_name_applies_where_rules_give_the_id(tmp_path: Path) -> None:
    # Sigma: alias keys are rule names; `rules` may refer to the same rule by its id
    corr = EXEC_BY_ID + textwrap.dedent("""
        title: Read then exec by one user
        correlation:
            type: temporal
            rules: [secret_read, 5638f7c0-ac70-491d-8465-2a65075e0d86]
            group-by: [who]
            timespan: 1m
            aliases:
                who:
                    secret_read: user.username
                    exec_by_id: user.username
        """)
    alerts = run(tmp_path, corr, [at(SECRET, 0), at(trace("exec_pod.json"), 10)])
    (alert,) = [a for a in alerts if a.source == "correlation"]
    assert alert.output_fields["who"] == "minikube-user"


def test_an_alias_naming_an_unknown_rule_is_an_error(tmp_path: Path) -> None:
    corr = EVENT_COUNT.replace("group-by: [user.username]", "group-by: [who]") + textwrap.indent(
        "aliases:\n    who:\n        secret_reed: user.username\n", "    "
    )
    with pytest.raises(RuleError, match="alias 'who' names rule 'secret_reed'"):
        run(tmp_path, corr, [])


CHAINED = """
title: Many reads
name: many_reads
correlation:
    type: event_count
    rules: [secret_read]
    group-by: [user.username]
    timespan: 1m
    condition: {gte: 2}
---
title: Many reads then exec
correlation:
    type: temporal_ordered
    rules: [many_reads, exec]
    group-by: [user.username]
    timespan: 5m
"""


def test_a_correlation_may_refer_to_a_correlation(tmp_path: Path) -> None:
    # the spec's example: many failed logins followed by a successful login
    exec_ = trace("exec_pod.json")
    alerts = run(tmp_path, CHAINED, [at(SECRET, 0), at(SECRET, 10), at(exec_, 100)])
    (alert,) = alerts  # the referenced correlation raises no alert of its own
    assert alert.rule == "Many reads then exec"
    assert alert.output_fields["user.username"] == "minikube-user"
    assert alert.output_fields["count"] == 2
    assert alert.time.startswith("2024-05-17T08:01:40")
    assert run(tmp_path, CHAINED, [at(exec_, 0), at(SECRET, 10), at(SECRET, 20)]) == []
    assert run(tmp_path, CHAINED, [at(SECRET, 0), at(exec_, 5), at(SECRET, 10)]) == []
    others = [at(SECRET, 0), at(SECRET, 10), at(exec_, 100, user__username="other")]
    assert run(tmp_path, CHAINED, others) == []  # grouped by the reads' user


def test_generate_makes_a_referenced_correlation_alert_too(tmp_path: Path) -> None:
    generating = CHAINED + "    generate: true\n"
    events = [at(SECRET, 0), at(SECRET, 10), at(trace("exec_pod.json"), 100)]
    # what the correlation refers to raises its alerts: the correlation and the base rule
    assert sorted(a.rule for a in run(tmp_path, generating, events)) == [
        "Exec",
        "Many reads",
        "Many reads then exec",
    ]


QUIET_THEN_EXEC = """
title: Quiet reader
name: quiet_reader
correlation:
    type: event_count
    rules: [secret_read]
    group-by: [user.username]
    timespan: 1m
    condition: {lt: 2}
---
title: Quiet reader then exec
correlation:
    type: temporal_ordered
    rules: [quiet_reader, exec]
    group-by: [user.username]
    timespan: 5m
"""


def test_a_referenced_window_close_matches_at_the_end_of_its_window(tmp_path: Path) -> None:
    # the quiet window [0 s, 60 s] is known only when it closes: an exec at 30 s is before it
    exec_ = trace("exec_pod.json")
    for after in (61, 90):  # found closed as the exec is processed, or by a scan before it
        (alert,) = run(tmp_path, QUIET_THEN_EXEC, [at(SECRET, 0), at(exec_, after)])
        assert alert.rule == "Quiet reader then exec"
    assert run(tmp_path, QUIET_THEN_EXEC, [at(SECRET, 0), at(exec_, 30)]) == []
    assert run(tmp_path, QUIET_THEN_EXEC, [at(SECRET, 0), at(SECRET, 5), at(exec_, 90)]) == []


def test_windows_closing_together_take_the_referenced_matches_first(tmp_path: Path) -> None:
    # at 115 s (the watermark, 5 s behind the read at 120 s) the quiet window [1 s, 61 s]
    # and the window [0 s, 100 s] of the correlation referring to it close: the quiet match
    # at 61 s falls in the latter, so it counts there before that window is judged
    quiet_and_exec = QUIET_THEN_EXEC.replace("then exec", "and exec").replace(
        "type: temporal_ordered", "type: event_count"
    )
    quiet_and_exec = quiet_and_exec.replace(
        "timespan: 5m", "timespan: 100s\n    condition: {eq: 2}"
    )
    events = [at(trace("exec_pod.json"), 0), at(SECRET, 1), at(SECRET, 120, user__username="b")]
    (alert,) = run(tmp_path, quiet_and_exec, events)
    assert alert.output_fields == {
        **alert.output_fields,
        "user.username": "minikube-user",
        "count": 2,
    }


@pytest.mark.parametrize("chained", [CHAINED, QUIET_THEN_EXEC])
def test_chained_correlations_replay_out_of_order_as_sorted(tmp_path: Path, chained: str) -> None:
    rnd = random.Random(7)
    exec_ = trace("exec_pod.json")
    times = sorted(rnd.uniform(0, 900) for _ in range(80))
    events = [
        at(SECRET if rnd.random() < 0.7 else exec_, t, user__username=f"u{i % 3}")
        for i, t in enumerate(times)
    ]
    shuffled = list(events)
    for i in range(0, len(shuffled) - 1, 2):  # swap neighbours: at most a few seconds apart
        if times[i + 1] - times[i] < 4:
            shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    key = sorted((a.rule, a.time, a.fingerprint) for a in run(tmp_path, chained, events))
    assert key and shuffled != events
    assert sorted((a.rule, a.time, a.fingerprint) for a in run(tmp_path, chained, shuffled)) == key


def test_chained_group_by_must_be_a_group_by_field_of_the_referenced_correlation(
    tmp_path: Path,
) -> None:
    corr = CHAINED.replace(
        "    group-by: [user.username]\n    timespan: 5m", "    group-by: [verb]\n    timespan: 5m"
    )
    with pytest.raises(
        RuleError, match="'verb' is not a group-by field of correlation 'Many reads'"
    ):
        run(tmp_path, corr, [])


def test_correlations_may_not_refer_to_each_other_in_a_cycle(tmp_path: Path) -> None:
    corr = CHAINED.replace("rules: [secret_read]", "rules: [secret_read, after_reads]")
    corr += "name: after_reads\n"
    with pytest.raises(RuleError, match="cycle"):
        run(tmp_path, corr, [])


ANY_GET = """
title: Any get
name: any_get
logsource: {product: kubernetes, service: audit}
detection:
    sel: {verb: get}
    condition: sel
---
"""


def test_event_count_counts_an_event_once_whatever_rules_it_matches(tmp_path: Path) -> None:
    corr = ANY_GET + EVENT_COUNT.replace("[secret_read]", "[secret_read, any_get]").replace(
        "{gte: 3}", "{gte: 2}"
    )
    assert run(tmp_path, corr, [at(SECRET, 0)]) == []
    alerts = run(tmp_path, corr, [at(SECRET, 0), at(SECRET, 1), at(SECRET, 2)])
    (alert,) = alerts  # the second read fires; the third starts over, alone
    assert alert.output_fields["count"] == 2
    assert len(set(alert.output_fields["audit_ids"])) == 2


def test_alerts_list_each_audit_id_once(tmp_path: Path) -> None:
    corr = ANY_GET + TEMPORAL.format(kind="temporal").replace("exec]", "any_get]")
    (alert,) = run(tmp_path, corr, [at(SECRET, 0)])  # one event matches both rules
    assert alert.output_fields["count"] == 2
    assert alert.output_fields["audit_ids"] == ["00000000-0000-4000-8000-000000000000"]


def test_temporal_ordered_judges_its_condition_on_the_rules_matched_in_order(
    tmp_path: Path,
) -> None:
    exec_ = trace("exec_pod.json")
    partial = TEMPORAL.format(kind="temporal_ordered") + "    condition: {gte: 1}\n"
    (alert,) = run(tmp_path, partial, [at(SECRET, 0)])
    assert alert.output_fields["count"] == 1
    assert run(tmp_path, partial, [at(exec_, 0)]) == []  # exec alone is not the order's start
    unfinished = TEMPORAL.format(kind="temporal_ordered") + "    condition: {lt: 2}\n"
    (alert,) = run(tmp_path, unfinished, [at(SECRET, 0)])  # judged when the window closes
    assert alert.output_fields["count"] == 1
    assert run(tmp_path, unfinished, [at(SECRET, 0), at(exec_, 10)]) == []
