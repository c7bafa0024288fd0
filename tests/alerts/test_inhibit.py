"""Inhibition as Alertmanager's `inhibit.go` does it: an alert that matches both the
source and the target matchers of a rule is inhibited only by open sources that do not
match the target matchers too."""

from __future__ import annotations

from logwarden.alerts.inhibit import Inhibition, Inhibitor
from logwarden.alerts.model import AlertState, Status
from logwarden.config.alerting import InhibitRule


def state(
    user: str, severity: str, namespace: str = "prod", status: Status = "firing"
) -> AlertState:
    return AlertState(
        fingerprint=f"{user}-{severity}-{namespace}",
        labels={"severity": severity, "namespace": namespace, "user": user},
        annotations={},
        severity=severity,
        status=status,
        first_ns=0,
        last_ns=0,
    )


def inhibitor(equal: list[str]) -> Inhibitor:
    rule = InhibitRule(
        source_matchers=['severity="critical"'], target_matchers=['namespace="prod"'], equal=equal
    )
    return Inhibitor([Inhibition.of(rule)])


def test_alerts_on_both_sides_of_a_rule_do_not_mute_each_other() -> None:
    rules = inhibitor(["namespace"])
    alice, bob, carol = state("alice", "critical"), state("bob", "critical"), state("carol", "low")
    for alert in (alice, bob, carol):
        rules.update(alert)
    assert [rules.inhibited(a) for a in (alice, bob, carol)] == [False, False, True]


def test_a_source_on_the_source_side_only_mutes_alerts_on_both_sides() -> None:
    rules = inhibitor([])
    alice, bob = state("alice", "critical"), state("bob", "critical")
    dave, carol = state("dave", "critical", "dev"), state("carol", "low")
    for alert in (alice, bob, carol):
        rules.update(alert)
    assert [rules.inhibited(a) for a in (alice, bob, carol)] == [False, False, True]
    assert rules.update(dave)  # a source that is no target
    assert [rules.inhibited(a) for a in (alice, bob, carol, dave)] == [True, True, True, False]
    assert rules.update(state("dave", "critical", "dev", status="resolved"))
    assert [rules.inhibited(a) for a in (alice, bob, carol)] == [False, False, True]
    rules.update(state("alice", "critical", status="resolved"))
    assert [rules.inhibited(a) for a in (bob, carol)] == [False, True]
    rules.update(state("bob", "critical", status="acknowledged"))  # still open
    assert rules.inhibited(carol)
    rules.update(state("bob", "critical", status="resolved"))
    assert not rules.inhibited(carol)
