"""The route tree: which receivers an alert goes to, grouped how (Alertmanager's routing).

An alert enters at the top route, which matches everything. At each route that matches,
the children are tried in order: the first that matches takes the alert, and the
following siblings are tried too while the matching child says `continue`. A route none of
whose children matches is where the alert ends up. A child that leaves a setting out takes
its parent's. Group keys follow `group_by`: the values of those labels the alert has
(`...`: all labels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from logwarden.alerts.matchers import Matcher, matches, parse_matchers
from logwarden.config.alerting import Route
from logwarden.records import parse_duration

__all__ = ["RouteNode", "build_routes"]

_TOP_DEFAULTS = {"group_wait": "0s", "group_interval": "1m", "repeat_interval": "4h"}


@dataclass(frozen=True)
class RouteNode:
    """One route with its settings resolved (inherited where the config left them out)."""

    #: where it is in the config: `route`, `route.routes[0]`, ...
    id: str
    receivers: tuple[str, ...]
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait_ns: int
    group_interval_ns: int
    repeat_interval_ns: int
    continue_: bool
    escalation: str | None
    routes: tuple[RouteNode, ...] = field(default=())

    def match(self, labels: Mapping[str, str]) -> list[RouteNode]:
        """The routes that take an alert with `labels` (this one matches already)."""
        taken: list[RouteNode] = []
        for child in self.routes:
            if not matches(child.matchers, labels):
                continue
            taken += child.match(labels)
            if not child.continue_:
                break
        return taken or [self]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The values of this route's `group_by` labels (all labels for `...`) that the
        alert has, as Alertmanager's `getGroupLabels`: a label it lacks (or whose value is
        empty, the same thing) is left out, not shown as an empty value."""
        if "..." in self.group_by:
            return {name: value for name, value in sorted(labels.items()) if value}
        return {name: labels[name] for name in self.group_by if labels.get(name)}


def build_routes(route: Route, receivers: Sequence[str]) -> RouteNode:
    """The tree of `route`; a top route without a receiver sends to every one of
    `receivers`."""
    top = RouteNode(
        id="route",
        receivers=(route.receiver,) if route.receiver else tuple(receivers),
        matchers=tuple(parse_matchers(route.matchers)),
        group_by=tuple(route.group_by if route.group_by is not None else ["fingerprint"]),
        group_wait_ns=parse_duration(route.group_wait or _TOP_DEFAULTS["group_wait"]),
        group_interval_ns=parse_duration(route.group_interval or _TOP_DEFAULTS["group_interval"]),
        repeat_interval_ns=parse_duration(
            route.repeat_interval or _TOP_DEFAULTS["repeat_interval"]
        ),
        continue_=False,
        escalation=route.escalation,
    )
    return _with_children(top, route)


def _with_children(node: RouteNode, route: Route) -> RouteNode:
    children = []
    for i, child in enumerate(route.routes):
        resolved = RouteNode(
            id=f"{node.id}.routes[{i}]",
            receivers=(child.receiver,) if child.receiver else node.receivers,
            matchers=tuple(parse_matchers(child.matchers)),
            group_by=tuple(child.group_by) if child.group_by is not None else node.group_by,
            group_wait_ns=_or(child.group_wait, node.group_wait_ns),
            group_interval_ns=_or(child.group_interval, node.group_interval_ns),
            repeat_interval_ns=_or(child.repeat_interval, node.repeat_interval_ns),
            continue_=child.continue_,
            escalation=child.escalation if child.escalation is not None else node.escalation,
        )
        children.append(_with_children(resolved, child))
    return RouteNode(**{**node.__dict__, "routes": tuple(children)})


def _or(text: str | None, inherited: int) -> int:
    return parse_duration(text) if text is not None else inherited
