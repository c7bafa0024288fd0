"""The `alerts:` section of `logwarden.yaml`: the route tree, inhibition rules, escalation
policies and the alerts API, named as Alertmanager names them.

`route` is Alertmanager's route: `receiver`, `matchers`, `group_by`, `group_wait`,
`group_interval`, `repeat_interval`, `continue` and child `routes`; a child that leaves a
setting out takes its parent's. logwarden adds `escalation` (a policy of `escalations`).
Durations are written as Alertmanager writes them: `30s`, `5m`, `4h`, `1h30m`.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from msgspec import Meta

from logwarden.config._base import Found, _Section
from logwarden.config.checks import DURATION, HOST_PORT, ID, MATCHER, PATH

__all__ = [
    "AlertsApiConfig",
    "AlertsConfig",
    "EscalationConfig",
    "InhibitRule",
    "LevelConfig",
    "Route",
]

_Matchers = Annotated[
    list[Annotated[str, MATCHER]],
    Meta(
        description='Label matchers, all of which must match: severity="high", '
        'namespace=~"prod-.*", user!="system:admin".'
    ),
]


class Route(_Section, frozen=True, kw_only=True):
    """One node of the route tree (Alertmanager's `route`)."""

    receiver: Annotated[
        str | None,
        Meta(
            description="The receiver of this route's notifications; a child without one "
            "takes its parent's."
        ),
        ID,
    ] = None
    matchers: _Matchers = msgspec.field(default_factory=list)
    group_by: Annotated[
        list[str] | None,
        Meta(
            description="Labels whose values split alerts into groups (one notification "
            "per group); `...`, alone, groups by every label; default: the parent's, at the "
            "top [fingerprint] (each alert its own group)."
        ),
    ] = None
    group_wait: Annotated[
        str | None,
        Meta(
            description="How long a new group waits for more alerts before its first "
            "notification (top default: 0s)."
        ),
        DURATION,
    ] = None
    group_interval: Annotated[
        str | None,
        Meta(
            description="How long after a notification a group that changed (a new alert, "
            "an alert acknowledged or resolved) is notified again (top default: 1m)."
        ),
        DURATION,
    ] = None
    repeat_interval: Annotated[
        str | None,
        Meta(
            description="How long after a notification an unchanged group with firing "
            "alerts is notified again (top default: 4h)."
        ),
        DURATION,
    ] = None
    continue_: Annotated[
        bool,
        Meta(description="After this route matches, go on matching its later siblings."),
    ] = msgspec.field(default=False, name="continue")
    escalation: Annotated[
        str | None,
        Meta(
            description="An escalation policy (under alerts.escalations) every alert this "
            "route takes walks until it is acknowledged or resolved."
        ),
        ID,
    ] = None
    routes: Annotated[
        list[Route],
        Meta(
            description="Child routes, tried in order; the first that matches takes the "
            "alert (and later ones too while they say `continue: true`)."
        ),
    ] = msgspec.field(default_factory=list)


class InhibitRule(_Section, frozen=True, kw_only=True):
    """While an alert matching `source_matchers` fires, alerts matching `target_matchers`
    with the same values of the `equal` labels are not notified (Alertmanager's rule)."""

    source_matchers: _Matchers
    target_matchers: _Matchers
    equal: Annotated[
        list[str],
        Meta(description="Labels whose values must be equal in source and target."),
    ] = msgspec.field(default_factory=list)


class LevelConfig(_Section, frozen=True, kw_only=True):
    """One step of an escalation policy."""

    receivers: Annotated[
        list[Annotated[str, ID]],
        Meta(min_length=1, description="Receivers notified when an alert reaches this level."),
    ]
    timeout: Annotated[
        str,
        Meta(
            description="How long an alert may stay unacknowledged at this level before it "
            "moves to the next."
        ),
        DURATION,
    ] = "15m"


class EscalationConfig(_Section, frozen=True, kw_only=True):
    """Ordered levels an unacknowledged alert walks; acknowledging or resolving it stops
    the walk."""

    levels: Annotated[list[LevelConfig], Meta(min_length=1, description="The levels, in order.")]
    repeat: Annotated[
        int,
        Meta(
            ge=0,
            description="How many more times the levels are walked after the first "
            "round, while the alert stays unacknowledged.",
        ),
    ] = 0


class AlertsApiConfig(_Section, frozen=True, kw_only=True):
    """The alerts API (`/api/v1/alerts`, `/api/v1/silences`) over HTTPS, behind a token."""

    enabled: Annotated[bool, Meta(description="Serve the alerts API.")] = True
    listen: Annotated[str, Meta(description="host:port the HTTPS API listens on."), HOST_PORT] = (
        "127.0.0.1:9443"
    )
    token_file: Annotated[
        str,
        Meta(
            description="File holding the token a client must send as 'Authorization: "
            "Bearer'; generated on first start if absent.",
            extra={"default": "<data_dir>/api.token"},
        ),
        PATH,
    ] = ""
    tls_cert_file: Annotated[
        str | None,
        Meta(description="PEM server certificate; default: the one generated in data_dir."),
        PATH,
    ] = None
    tls_key_file: Annotated[
        str | None, Meta(description="PEM private key of tls_cert_file."), PATH
    ] = None

    def problems(self) -> Found:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            return [((), "set tls_cert_file and tls_key_file together, or neither")]
        return []


_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _default_route() -> Route:
    return Route()


class AlertsConfig(_Section, frozen=True, kw_only=True):
    """How alerts become notifications: routing, grouping, inhibition, escalation."""

    route: Annotated[
        Route,
        Meta(
            description="The route tree. The top route matches every alert (it takes no "
            "matchers); without a receiver it sends to every receiver."
        ),
    ] = msgspec.field(default_factory=_default_route)
    inhibit_rules: Annotated[
        list[InhibitRule], Meta(description="Alerts that mute other alerts while they fire.")
    ] = msgspec.field(default_factory=list)
    escalations: Annotated[
        dict[Annotated[str, ID], EscalationConfig],
        Meta(description="Escalation policies, by id, for routes' `escalation`."),
    ] = msgspec.field(default_factory=dict)
    resolve_timeout: Annotated[
        str,
        Meta(
            description="An alert with no new occurrence for this long is resolved; 0s "
            "never (it stays open until someone resolves it)."
        ),
        DURATION,
    ] = "24h"
    resend_interval: Annotated[
        str,
        Meta(
            description="How often firing alerts are sent again to receivers that forget "
            "alerts not re-sent (Alertmanager)."
        ),
        DURATION,
    ] = "1m"
    api: Annotated[AlertsApiConfig, Meta(description="The HTTP API of the alerts.")] = (
        msgspec.field(default_factory=AlertsApiConfig)
    )

    def problems(self) -> Found:
        found: Found = []
        if self.route.matchers:
            found.append(
                (
                    ("route", "matchers"),
                    "the top route takes every alert and must not have matchers "
                    "(put them on a route under routes)",
                )
            )
        if self.route.continue_:
            found.append(
                (("route", "continue"), "the top route has no route after it: drop continue")
            )
        for path, route in _walk(self.route, ("route",)):
            if route.escalation is not None and route.escalation not in self.escalations:
                found.append(
                    (
                        (*path, "escalation"),
                        f"no escalation policy '{route.escalation}' under alerts.escalations",
                    )
                )
            group_by = route.group_by or []
            for name in sorted({n for n in group_by if group_by.count(n) > 1}):
                found.append(((*path, "group_by"), f"'{name}' is listed more than once"))
            for name in group_by:
                if name != "..." and not _LABEL_NAME.fullmatch(name):
                    found.append(
                        (
                            (*path, "group_by"),
                            f"'{name}' is not a label name (letters, digits and _, not "
                            "starting with a digit)",
                        )
                    )
            if "..." in group_by and any(name != "..." for name in group_by):
                found.append(
                    (
                        (*path, "group_by"),
                        "'...' groups by every label: list it alone, without other labels",
                    )
                )
        return found

    def receivers_named(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every receiver the section names, with where (for the file's check)."""
        out = []
        for path, route in _walk(self.route, ("route",)):
            if route.receiver is not None:
                out.append(((*path, "receiver"), route.receiver))
        for name, policy in self.escalations.items():
            for i, level in enumerate(policy.levels):
                for j, receiver in enumerate(level.receivers):
                    where = ("escalations", name, "levels", i, "receivers", j)
                    out.append((where, receiver))
        return out


def _walk(route: Route, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], Route]]:
    out = [(path, route)]
    for i, child in enumerate(route.routes):
        out += _walk(child, (*path, "routes", i))
    return out
