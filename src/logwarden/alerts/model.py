"""What the alert side of `logwarden run` hands around: tracked alerts and notifications.

Detection raises one `records.Alert` per occurrence. The alert manager (`alerts.manager`)
folds the occurrences of one fingerprint into one tracked `AlertState`: its labels, first
and last seen, how often it occurred, where its records are in the ledger, and whether
someone acknowledged or resolved it. A `Notification` is one message to one receiver about
a group of tracked alerts (or one alert, on an escalation level); notifiers turn it into
bytes (`render`) and deliver them (`send`), with `Notification.id` as the idempotency key
the receiver can use to see a message it already has.

The structs here hold no reference cycles (strings, numbers, and lists and dicts of them),
so they are kept out of the cycle collector (`gc=False`): with a hundred thousand alerts
tracked its passes would otherwise walk every one.

Labels every tracked alert carries (the names routes, inhibitions and silences match on):
`alertname` (the rule), `rule`, `severity`, `source`, `namespace`, `user`, `resource`,
`tags` (comma-joined) and `fingerprint`; a label with no value is absent.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["AlertState", "Link", "Notification", "Status"]

#: firing: open; acknowledged: someone owns it (escalation stops, still open);
#: resolved: closed (by a person, or by `resolve_timeout` without occurrences)
Status = Literal["firing", "acknowledged", "resolved"]


class Link(msgspec.Struct, frozen=True, gc=False):
    """One record behind an alert: where it is in the ledger, and its audit ID if any."""

    #: the source instance and its per-instance sequence number (the ledger's `seq`)
    instance: str
    seq: int
    #: the event's time, RFC 3339
    time: str
    audit_id: str | None = None
    #: the ledger entry (`logwarden prove --index`); -1 when not in the ledger
    index: int = -1


class AlertState(msgspec.Struct, kw_only=True, gc=False):
    """One tracked alert: every occurrence of one fingerprint."""

    fingerprint: str
    labels: dict[str, str]
    #: `summary` (the rule's rendered output of the newest occurrence), `description`
    annotations: dict[str, str]
    severity: str
    status: Status = "firing"
    #: nanoseconds since the epoch (event time of the first and newest occurrence)
    first_ns: int
    last_ns: int
    #: occurrences, counting those a suppression summary stands for
    count: int = 1
    #: the newest records behind it (at most `LINKS_KEPT`), oldest first
    links: list[Link] = msgspec.field(default_factory=list)
    acknowledged_by: str | None = None
    acknowledged_ns: int | None = None
    resolved_by: str | None = None
    resolved_ns: int | None = None

    @property
    def rule(self) -> str:
        return self.labels.get("rule", "")


#: how many record links a tracked alert keeps (the newest)
LINKS_KEPT = 20


class Notification(msgspec.Struct, kw_only=True, gc=False):
    """One message to one receiver.

    `id` is stable for this message (the idempotency key: a message sent twice carries the
    same id). `status` is ``resolved`` when every alert in it is resolved, else ``firing``.
    `group_labels` are the values of the route's `group_by` labels; `group_key` identifies
    the group (route and those values). On an escalation step, `escalation` names the
    policy, `level` (from 1) and `round` (from 1). `alerts` are the tracked alerts
    themselves, not copies: a notification is rendered when it is made (the manager hands
    it to `Dispatcher.submit` before it changes anything again).
    """

    id: str
    receiver: str
    route: str
    group_key: str
    group_labels: dict[str, str]
    status: Literal["firing", "resolved"]
    alerts: list[AlertState]
    #: when the message was made, nanoseconds since the epoch
    time_ns: int
    escalation: str | None = None
    level: int | None = None
    round: int | None = None
    #: the service's URL for people (links to the alert in the API), if it has one
    external_url: str | None = None
