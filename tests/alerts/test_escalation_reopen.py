"""Alerts whose notifications once went astray: an alert resolved and firing again before
the next tick (the receivers the first episode's escalation reached hear that it resolved,
and the new episode walks anew), and label values that looked like another group's."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from alerts import test_manager as tm
from logwarden.alerts.model import Notification

S, T0 = tm.S, tm.T0


@pytest.fixture(autouse=True, params=["in memory", "parked"])
def parking(request: pytest.FixtureRequest) -> None:
    tm.PARKING = request.param == "parked"


def steps(notes: list[Notification]) -> list[tuple[str, str, int | None]]:
    return [(n.receiver, n.status, n.level) for n in notes if n.escalation]


@pytest.mark.parametrize("later", [False, True], ids=["same event time", "later event time"])
def test_a_resolution_and_a_new_occurrence_in_one_batch(tmp_path: Path, later: bool) -> None:
    m = tm.manager(tmp_path, tm.ESCALATION)
    notes: list[Notification] = []

    def tick(at: int) -> list[tuple[str, str, int | None]]:
        out = m.tick(at)
        notes.extend(out)
        return steps(out)

    m.receive(tm.alert(), T0)
    assert tick(T0) == [("b", "firing", 1)]
    assert tick(T0 + 300 * S) == [("c", "firing", 2)]
    again = tm.alert()
    if later:
        again = msgspec.structs.replace(again, time="2024-05-17T08:10:00.000000000Z")
    m.receive(tm.alert(resolves=True), T0 + 400 * S)  # both before the stage's next tick
    m.receive(again, T0 + 400 * S)
    assert tick(T0 + 400 * S) == [
        ("b", "resolved", 2),
        ("c", "resolved", 2),
        ("b", "firing", 1),  # the new episode's walk starts over
    ]
    assert tick(T0 + 700 * S) == [("c", "firing", 2)]
    # the outbox keeps one copy per notification id: the new episode's are its own
    assert len({n.id for n in notes}) == len(notes)


def test_label_values_with_quotes_and_commas_do_not_merge_groups(tmp_path: Path) -> None:
    m = tm.manager(tmp_path, "route:\n  receiver: a\n  group_by: [user, namespace]\n", ("a",))
    m.receive(tm.alert(user='x",namespace="y', namespace="z"), T0)
    m.receive(tm.alert(user="x", namespace='y",namespace="z'), T0)
    notes = m.tick(T0 + 60 * S)
    assert sorted(len(n.alerts) for n in notes) == [1, 1]
    assert len({n.group_key for n in notes}) == 2
