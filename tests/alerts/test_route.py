"""The route tree as Alertmanager builds it: group labels, and the routes its config
refuses."""

from __future__ import annotations

import pytest

from logwarden.alerts.route import build_routes
from logwarden.config import ConfigError, load_text
from logwarden.config.alerting import Route


def test_group_labels_hold_only_the_group_by_labels_an_alert_has() -> None:
    node = build_routes(Route(group_by=["team", "namespace"]), ["a"])
    assert node.group_labels({"namespace": "prod", "user": "alice"}) == {"namespace": "prod"}
    # an empty value is a missing label: both make the same group
    assert node.group_labels({"namespace": "prod", "team": ""}) == {"namespace": "prod"}
    assert node.group_labels({"namespace": "prod", "team": "db"}) == {
        "team": "db",
        "namespace": "prod",
    }
    assert node.group_labels({"user": "alice"}) == {}
    every = build_routes(Route(group_by=["..."]), ["a"])
    assert every.group_labels({"user": "alice", "team": ""}) == {"user": "alice"}


def problems(alerts: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_text("receivers: {a: {type: stdout}}\nalerts:\n" + alerts, "logwarden.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_top_route_refuses_matchers() -> None:
    assert problems("  route:\n    receiver: a\n    matchers: ['severity=\"critical\"']\n") == [
        "logwarden.yaml:5: alerts.route.matchers: the top route takes every alert and must not "
        "have matchers (put them on a route under routes)"
    ]


def test_group_by_every_label_refuses_other_labels() -> None:
    assert problems(
        "  route:\n"  # 3
        "    group_by: ['...', namespace]\n"  # 4
        "    routes:\n"
        "      - group_by: ['...']\n"  # 6: alone, as it should be
        "      - group_by: [namespace, '...']\n"  # 7
    ) == [
        f"logwarden.yaml:{line}: alerts.{path}.group_by: '...' groups by every label: list it "
        "alone, without other labels"
        for line, path in ((4, "route"), (7, "route.routes[1]"))
    ]


def test_the_top_route_refuses_continue_and_group_by_refuses_repeats_and_bad_names() -> None:
    assert problems(
        "  route:\n"  # 3
        "    continue: true\n"  # 4
        "    group_by: [namespace, namespace, 9lives, user]\n"  # 5
    ) == [
        "logwarden.yaml:4: alerts.route.continue: the top route has no route after it: "
        "drop continue",
        "logwarden.yaml:5: alerts.route.group_by: 'namespace' is listed more than once",
        "logwarden.yaml:5: alerts.route.group_by: '9lives' is not a label name (letters, "
        "digits and _, not starting with a digit)",
    ]
