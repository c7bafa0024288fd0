"""Suppression: 38 repeats of one alert within a window are one alert and one summary."""

from __future__ import annotations

from logwarden.detect.suppression import Suppressor
from logwarden.records import Alert, Origin

MIN = 60_000_000_000


def alert(second: int, key: str = "k", rule: str = "R") -> Alert:
    return Alert(
        rule=rule,
        priority="Warning",
        severity="medium",
        time=f"2024-05-17T08:{second // 60:02d}:{second % 60:02d}.000000000Z",
        source="k8s_audit",
        output=f"{rule} happened",
        audit_id=None,
        stage=None,
        tags=(),
        output_fields={},
        rule_format="sigma",
        origin=Origin(instance="f", seq=second, line=second),
        fingerprint=key,
    )


def test_repeats_in_the_window_become_one_summary() -> None:
    s = Suppressor({"R": 5 * MIN})
    passed = [out for i in range(38) for out in s.process(alert(i * 5))]  # 38 over 185 s
    assert [a.count for a in passed] == [1]
    (summary,) = s.flush()
    assert summary.count == 37
    assert summary.output == "R happened (and 37 more in 5m)"
    assert summary.first_time == passed[0].time
    assert summary.time == alert(37 * 5).time
    assert s.suppressed == 37


def test_a_closed_window_reports_when_time_moves_on() -> None:
    s = Suppressor({"R": MIN})
    assert [a.count for a in s.process(alert(0))] == [1]
    assert s.process(alert(10)) == []
    out = s.process(alert(100))  # the window closed at 60 s: its summary, then a new alert
    assert [(a.count, a.time[14:19]) for a in out] == [(1, "00:10"), (1, "01:40")]
    assert out[0].output.endswith("(and 1 more in 1m)")


def test_fingerprints_and_rules_are_separate() -> None:
    s = Suppressor({"R": MIN})
    out = [a for k in ("a", "b", "a") for a in s.process(alert(1, key=k))]
    assert [a.fingerprint for a in out] == ["a", "b"]
    other = Suppressor({"R": MIN})
    assert len(other.process(alert(1, rule="Q")) + other.process(alert(2, rule="Q"))) == 2


def test_no_window_passes_everything_and_a_default_applies_to_all() -> None:
    s = Suppressor({})
    assert len(s.process(alert(1)) + s.process(alert(2))) == 2
    d = Suppressor({}, default_ns=MIN)
    assert len(d.process(alert(1)) + d.process(alert(2))) == 1
