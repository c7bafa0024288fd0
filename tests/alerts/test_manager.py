"""The alert manager on a test clock: routing, grouping, inhibition, silences, escalation,
acknowledgement, and state that survives a restart."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from logwarden.alerts.manager import AlertManager, Inhibition, Policy
from logwarden.alerts.model import Notification
from logwarden.alerts.route import build_routes
from logwarden.alerts.state import AlertStore, Command
from logwarden.config.alerting import AlertsConfig
from logwarden.records import Alert, Origin, fingerprint, format_time_ns

S = 1_000_000_000
T0 = 1_700_000_000 * S


def alert(
    rule: str = "Secret Read",
    severity: str = "high",
    user: str = "alice",
    namespace: str = "prod",
    *,
    audit_id: str = "a1",
    resolves: bool = False,
) -> Alert:
    return Alert(
        rule=rule,
        priority="Error",
        severity=severity,
        time="2024-05-17T08:00:00.000000000Z",
        source="k8s_audit",
        output=f"{rule} by {user} in {namespace}",
        audit_id=audit_id,
        stage="ResponseComplete",
        tags=("K05",),
        output_fields={},
        rule_format="sigma",
        origin=Origin(instance="audit", seq=7, line=0),
        fingerprint=fingerprint(rule, [user, namespace]),
        labels={"user": user, "namespace": namespace, "resource": "secrets"},
        resolves=resolves,
    )


class ParkingManager(AlertManager):
    """Saves after every step, as the stage does every second, keeping nothing in memory
    it need not: every test below runs with this one too, and must not see a difference."""

    def receive(self, alert: Alert, now_ns: int) -> None:
        super().receive(alert, now_ns)
        self.save()

    def tick(self, now_ns: int) -> list[Notification]:
        out = super().tick(now_ns)
        self.save()
        return out

    def command(self, cmd: Command, now_ns: int) -> str:
        result = super().command(cmd, now_ns)
        self.save()
        return result


@pytest.fixture(autouse=True, params=["in memory", "parked"])
def parking(request: pytest.FixtureRequest) -> bool:
    global PARKING
    PARKING = request.param == "parked"
    return PARKING


PARKING = False


def manager(tmp: Path, yaml: str, receivers: tuple[str, ...] = ("a", "b", "c")) -> AlertManager:
    config = msgspec.yaml.decode(yaml.encode(), type=AlertsConfig) if yaml else AlertsConfig()
    m = (ParkingManager if PARKING else AlertManager)(
        build_routes(config.route, list(receivers)),
        AlertStore(tmp / "alerts.db"),
        inhibitions=[Inhibition.of(r) for r in config.inhibit_rules],
        policies={n: Policy.of(n, p) for n, p in config.escalations.items()},
        resend_receivers=("a",) if "resend" in yaml else (),
        hot_alerts=0 if PARKING else 10_000,
    )
    m.load(T0)
    return m


def sent(notes: list[Notification]) -> list[tuple[str, list[str], list[str]]]:
    """(receiver, alert names, alert statuses) of each notification."""
    return [
        (n.receiver, [a.labels["alertname"] for a in n.alerts], [a.status for a in n.alerts])
        for n in notes
    ]


def test_an_occurrence_becomes_a_tracked_alert_with_labels_links_and_counts(tmp_path: Path) -> None:
    m = manager(tmp_path, "")
    m.receive(alert(audit_id="a1"), T0)
    m.receive(alert(audit_id="a2"), T0 + S)
    (state,) = m.alerts.values()
    assert state.count == 2 and state.status == "firing"
    assert state.labels == {
        "alertname": "Secret Read",
        "rule": "Secret Read",
        "severity": "high",
        "source": "k8s_audit",
        "fingerprint": state.fingerprint,
        "tags": "K05",
        "user": "alice",
        "namespace": "prod",
        "resource": "secrets",
    }
    assert [(link.audit_id, link.seq) for link in state.links] == [("a1", 7), ("a2", 7)]
    assert state.first_ns == state.last_ns == 1_715_932_800 * S  # the events' own time


def test_the_default_route_notifies_every_receiver_at_once_and_repeats_rarely(
    tmp_path: Path,
) -> None:
    m = manager(tmp_path, "")
    m.receive(alert(), T0)
    assert sent(m.tick(T0)) == [(r, ["Secret Read"], ["firing"]) for r in ("a", "b", "c")]
    m.receive(alert(), T0 + S)  # a repeat is not a change
    assert m.tick(T0 + 120 * S) == []
    assert len(m.tick(T0 + 4 * 3600 * S)) == 3  # repeat_interval 4h


GROUPING = """
route:
  receiver: a
  group_by: [namespace]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
"""


def test_group_wait_collects_alerts_into_one_notification_per_group(tmp_path: Path) -> None:
    m = manager(tmp_path, GROUPING)
    m.receive(alert("Secret Read", user="alice"), T0)
    m.receive(alert("Pod Exec", user="bob"), T0 + 10 * S)
    m.receive(alert("Pod Exec", user="eve", namespace="dev"), T0 + 20 * S)
    assert m.tick(T0 + 29 * S) == []
    notes = m.tick(T0 + 30 * S)
    assert sent(notes) == [("a", ["Secret Read", "Pod Exec"], ["firing", "firing"])]
    assert notes[0].group_labels == {"namespace": "prod"}
    assert sent(m.tick(T0 + 50 * S)) == [("a", ["Pod Exec"], ["firing"])]  # dev's own wait


def test_group_labels_leave_out_the_group_by_labels_an_alert_lacks(tmp_path: Path) -> None:
    m = manager(tmp_path, "route:\n  receiver: a\n  group_by: [team, namespace]\n")
    m.receive(alert("Secret Read", user="alice"), T0)
    m.receive(alert("Pod Exec", user="bob"), T0)
    (note,) = m.tick(T0)
    assert note.group_labels == {"namespace": "prod"} and len(note.alerts) == 2


def test_a_changed_group_waits_for_group_interval_and_a_resolution_is_sent(tmp_path: Path) -> None:
    m = manager(tmp_path, GROUPING)
    m.receive(alert("Secret Read"), T0)
    assert len(m.tick(T0 + 30 * S)) == 1
    m.receive(alert("Pod Exec"), T0 + 60 * S)
    assert m.tick(T0 + 60 * S) == []
    assert sent(m.tick(T0 + 330 * S)) == [("a", ["Secret Read", "Pod Exec"], ["firing", "firing"])]
    fp = alert("Secret Read").fingerprint
    assert m.command(Command(1, "resolve", fp, "alice", "", T0), T0 + 400 * S).endswith("alice")
    assert m.tick(T0 + 400 * S) == []
    assert sent(m.tick(T0 + 630 * S)) == [
        ("a", ["Secret Read", "Pod Exec"], ["resolved", "firing"])
    ]
    assert sent(m.tick(T0 + 630 * S + 3600 * S)) == [("a", ["Pod Exec"], ["firing"])]  # repeat


ROUTES = """
route:
  receiver: a
  routes:
    - matchers: ['severity="critical"']
      receiver: b
      continue: true
    - matchers: ['namespace=~"prod|staging"']
      receiver: c
    - matchers: ['namespace="prod"']
      receiver: b
"""


@pytest.mark.parametrize(
    ("severity", "namespace", "receivers"),
    [
        ("critical", "prod", ["b", "c"]),  # continue: the next sibling matches too
        ("high", "prod", ["c"]),  # the first match stops (no continue)
        ("high", "staging", ["c"]),
        ("critical", "dev", ["b"]),
        ("low", "dev", ["a"]),  # no child matches: the parent takes it
    ],
)
def test_routes_match_like_alertmanager(
    tmp_path: Path, severity: str, namespace: str, receivers: list[str]
) -> None:
    m = manager(tmp_path, ROUTES)
    m.receive(alert(severity=severity, namespace=namespace), T0)
    assert sorted(n.receiver for n in m.tick(T0)) == receivers


def test_inhibition_mutes_targets_with_equal_labels_while_the_source_fires(tmp_path: Path) -> None:
    m = manager(
        tmp_path,
        """
inhibit_rules:
  - source_matchers: ['alertname="Log Source Stopped Sending"']
    target_matchers: ['severity="low"']
    equal: [namespace]
""",
        receivers=("a",),
    )
    m.receive(alert("Log Source Stopped Sending", "high"), T0)
    m.receive(alert("Noise", "low", namespace="prod"), T0)
    m.receive(alert("Noise", "low", namespace="dev"), T0)
    notes = m.tick(T0)
    assert sorted(
        (n.alerts[0].labels["alertname"], n.alerts[0].labels["namespace"]) for n in notes
    ) == [
        ("Log Source Stopped Sending", "prod"),
        ("Noise", "dev"),
    ]
    m.receive(alert("Log Source Stopped Sending", "high", resolves=True), T0 + S)
    notes = m.tick(T0 + 61 * S)  # the source resolved: the target is no longer muted
    assert ("a", ["Noise"], ["firing"]) in sent(notes)


def test_alerts_on_both_sides_of_an_inhibition_do_not_mute_each_other(tmp_path: Path) -> None:
    m = manager(
        tmp_path,
        """
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['namespace="prod"']
    equal: [namespace]
""",
        receivers=("a",),
    )
    sources = [alert("Pod Exec", "critical", user=user) for user in ("alice", "bob")]
    for source in sources:
        m.receive(source, T0)
    m.receive(alert("Secret Read", "low", user="carol"), T0)
    assert sorted(n.alerts[0].labels["user"] for n in m.tick(T0)) == ["alice", "bob"]
    for i, source in enumerate(sources):
        m.command(Command(i, "resolve", source.fingerprint, "x", "", T0), T0 + S)
    assert ("a", ["Secret Read"], ["firing"]) in sent(m.tick(T0 + 61 * S))


def test_a_silence_mutes_matching_alerts_until_it_ends(tmp_path: Path) -> None:
    m = manager(tmp_path, "", receivers=("a",))
    m.store.add_silence(['user="alice"'], T0, T0 + 600 * S, "bob", "maintenance")
    m.refresh_silences(T0)
    m.receive(alert(user="alice"), T0)
    m.receive(alert(user="eve"), T0)
    assert [n.alerts[0].labels["user"] for n in m.tick(T0)] == ["eve"]
    m.refresh_silences(T0 + 601 * S)
    assert [n.alerts[0].labels["user"] for n in m.tick(T0 + 601 * S)] == ["alice"]


ESCALATION = """
route:
  receiver: a
  escalation: oncall
escalations:
  oncall:
    levels:
      - receivers: [b]
        timeout: 5m
      - receivers: [c]
        timeout: 10m
    repeat: 1
"""


def test_escalation_walks_its_levels_repeats_and_then_stops(tmp_path: Path) -> None:
    m = manager(tmp_path, ESCALATION)
    m.receive(alert(), T0)
    first = m.tick(T0)
    assert sorted((n.receiver, n.level, n.round) for n in first) == [
        ("a", None, None),
        ("b", 1, 1),
    ]
    assert m.tick(T0 + 299 * S) == []
    assert [(n.receiver, n.level, n.round) for n in m.tick(T0 + 300 * S)] == [("c", 2, 1)]
    assert [(n.receiver, n.level) for n in m.tick(T0 + 900 * S)] == [("b", 1)]
    assert [(n.receiver, n.round) for n in m.tick(T0 + 1200 * S)] == [("c", 2)]
    assert m.tick(T0 + 1800 * S) == []  # repeat 1: two rounds, then it stays open
    assert m.alerts[alert().fingerprint].status == "firing"


def test_acknowledging_stops_escalation_and_tells_the_receivers_it_reached(tmp_path: Path) -> None:
    m = manager(tmp_path, ESCALATION)
    fp = alert().fingerprint
    m.receive(alert(), T0)
    m.tick(T0)
    m.tick(T0 + 300 * S)  # b and c reached
    result = m.command(Command(1, "ack", fp, "alice", "on it", T0), T0 + 400 * S)
    assert result == f"alert {fp} acknowledged by alice"
    notes = m.tick(T0 + 400 * S)
    updates = [n for n in notes if n.escalation]
    assert sorted(n.receiver for n in updates) == ["b", "c"]
    assert {n.alerts[0].status for n in updates} == {"acknowledged"}
    assert not [n for n in m.tick(T0 + 3600 * S) if n.escalation]  # no more steps
    m.command(Command(2, "resolve", fp, "alice", "", T0), T0 + 4000 * S)
    resolved = [n for n in m.tick(T0 + 4000 * S) if n.escalation]
    assert sorted((n.receiver, n.status) for n in resolved) == [
        ("b", "resolved"),
        ("c", "resolved"),
    ]
    assert m.escalations.walks == {}
    again = m.command(Command(3, "ack", fp, "bob", "", T0), T0 + 4001 * S)
    assert again == f"alert {fp} was already resolved"


def test_state_survives_a_restart_and_ids_are_stable(tmp_path: Path) -> None:
    m = manager(tmp_path, ESCALATION)
    m.receive(alert(), T0)
    before = m.tick(T0)
    m.save()
    m.store.close()
    after = manager(tmp_path, ESCALATION)  # a new process reading the same state
    assert after.alerts[alert().fingerprint].count == 1
    assert [n.receiver for n in after.tick(T0 + 300 * S)] == ["c"]  # the walk goes on
    assert len({n.id for n in before}) == 2


def test_a_reopened_alert_gets_new_notification_ids(tmp_path: Path) -> None:
    m = manager(tmp_path, "", receivers=("a",))
    m.receive(alert(), T0)
    (first,) = m.tick(T0)
    m.command(Command(1, "resolve", alert().fingerprint, "x", "", T0), T0 + S)
    m.tick(T0 + 61 * S)
    m.receive(alert(), T0 + 100 * S)
    (reopened,) = m.tick(T0 + 100 * S)
    assert reopened.alerts[0].count == 1 and reopened.id != first.id


def test_commands_about_unknown_alerts_say_so(tmp_path: Path) -> None:
    m = manager(tmp_path, "")
    assert m.command(Command(1, "ack", "nope", "x", "", T0), T0) == "no alert with fingerprint nope"


def test_resolve_timeout_closes_quiet_alerts(tmp_path: Path) -> None:
    config = AlertsConfig()
    m = AlertManager(
        build_routes(config.route, ["a"]), AlertStore(tmp_path / "s.db"), resolve_timeout_ns=60 * S
    )
    m.receive(alert(), T0)
    m.tick(T0)
    assert m.next_due_ns() <= T0 + 60 * S  # looked at every second
    assert sent(m.tick(T0 + 60 * S)) == [("a", ["Secret Read"], ["resolved"])]
    assert m.alerts[alert().fingerprint].resolved_by == "logwarden (resolve_timeout)"


def test_receivers_that_forget_get_firing_alerts_again_every_resend_interval(
    tmp_path: Path,
) -> None:
    m = manager(tmp_path, "resend_interval: 1m  # resend\n", receivers=("a", "b"))
    m.receive(alert(), T0)
    assert len(m.tick(T0)) == 2
    assert [n.receiver for n in m.tick(T0 + 60 * S)] == ["a"]


def test_draining_notifies_changes_at_once_but_repeats_and_escalates_nothing(
    tmp_path: Path,
) -> None:
    m = manager(tmp_path, GROUPING)
    m.receive(alert("Secret Read"), T0)
    assert len(m.tick(T0 + 30 * S)) == 1
    m.receive(alert("Pod Exec"), T0 + 40 * S)  # a change, due only at group_interval
    assert sent(m.drain(T0 + 41 * S)) == [("a", ["Secret Read", "Pod Exec"], ["firing", "firing"])]
    assert m.drain(T0 + 7200 * S) == []  # an unchanged group is not repeated


def test_draining_does_not_step_an_escalation(tmp_path: Path) -> None:
    m = manager(tmp_path, ESCALATION)
    m.receive(alert(), T0)
    m.tick(T0)
    assert [n for n in m.drain(T0 + 3600 * S) if n.escalation] == []


def test_parked_alerts_and_groups_leave_memory_and_come_back_as_they_were(
    tmp_path: Path, parking: bool
) -> None:
    if not parking:
        pytest.skip("about parking")
    m = manager(tmp_path, "")
    for user in ("alice", "bob", "carol"):
        m.receive(alert(user=user), T0)
    assert len(m.tick(T0)) == 9  # three alerts, each its own group, to three receivers
    assert m.alerts.hot() == [] and m.groups.hot() == []  # saved, so parked
    assert len(m.alerts) == 3 and len(m.groups) == 3
    reads = m.alerts.reads
    m.receive(alert(user="bob", audit_id="a2"), T0 + S)
    assert m.alerts.reads == reads + 1  # bob, read back to count the occurrence
    bob = m.alerts[alert(user="bob").fingerprint]
    assert bob.count == 2 and [link.audit_id for link in bob.links] == ["a1", "a2"]
    assert m.tick(T0 + 2 * S) == []  # nothing changed that a receiver must hear
    reads = m.groups.reads
    repeats = m.tick(T0 + 4 * 3600 * S)  # repeat_interval: the groups are read back
    assert len(repeats) == 9 and m.groups.reads == reads + 3


def test_a_restart_reads_the_state_a_page_at_a_time_keeping_the_newest_in_memory(
    tmp_path: Path, parking: bool
) -> None:
    if parking:
        pytest.skip("sets its own limit")
    m = manager(tmp_path, "")
    for i in range(4500):  # more than two pages of the store, one second apart
        when = format_time_ns(T0 + i * S)
        m.receive(msgspec.structs.replace(alert(user=f"user-{i}"), time=when), T0 + i * S)
    m.tick(T0 + 4500 * S)
    m.save()
    again = AlertManager(
        build_routes(AlertsConfig().route, ["a", "b", "c"]),
        AlertStore(tmp_path / "alerts.db"),
        hot_alerts=100,
    )
    again.load(T0 + 4501 * S)
    assert len(again.alerts) == 4500 and len(again.groups) == 4500
    assert len(again.alerts.hot()) == 100 and again.alerts.reads == 0
    newest = {a.labels["user"] for a in again.alerts.hot()}
    assert newest == {f"user-{i}" for i in range(4400, 4500)}
    again.receive(alert(user="user-7", audit_id="b7"), T0 + 4502 * S)  # parked: read back
    assert again.alerts[alert(user="user-7").fingerprint].count == 2
    assert again.alerts.reads == 1
    assert again.tick(T0 + 4503 * S) == []  # nothing new to tell, nothing lost
