"""The alert manager: occurrences in, notifications out (tracking, grouping, escalation).

`receive(alert, now)` folds an occurrence into its tracked alert (one per fingerprint:
count, first and last seen, links to its records). A new (or reopened) alert is routed
(`alerts.route`): it joins one aggregation group per route that takes it, and starts that
route's escalation policy. `tick(now)` returns the notifications that are due:

- a group is notified `group_wait` after it is made, then, when it changed (an alert
  joined, was acknowledged or resolved, or stopped being muted), no sooner than
  `group_interval` after its last notification, and, while something in it fires, again
  every `repeat_interval` (every `resend_interval` for receivers that forget alerts not
  re-sent, like Alertmanager). A receiver first hears of a group when something in it
  fires; resolved alerts leave the group once notified.
- an escalation notifies its first level at once, and each following level when the
  alert stayed unacknowledged for the level's timeout; after the last level it starts
  again, `repeat` more times. Acknowledging stops it; the receivers it reached then hear
  of the acknowledgement, and later of the resolution.
- muted alerts (matched by an active silence, or inhibited by a firing alert) are not
  notified and do not escalate.

Time is passed in (`now`, nanoseconds), so tests walk it; nothing here sleeps or does
I/O except `load` and `save` through the store. Notification ids are made from the
group or escalation, the alert's episode and the step, so a notification made again
after a crash carries the id it had (`Notification.id`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import msgspec

from logwarden.alerts.matchers import Matcher, matches, parse_matchers
from logwarden.alerts.model import LINKS_KEPT, AlertState, Link, Notification
from logwarden.alerts.route import RouteNode
from logwarden.alerts.state import AlertStore, Command, Silence
from logwarden.config.alerting import EscalationConfig, InhibitRule
from logwarden.normalize.k8s_audit import parse_rfc3339_ns
from logwarden.records import Alert, parse_duration

__all__ = ["AlertManager", "Inhibition", "Policy"]

log = logging.getLogger("logwarden.alerts")
_NEVER = 1 << 62


class _Sent(msgspec.Struct):
    hash: str
    at_ns: int
    seq: int


class _Group(msgspec.Struct, kw_only=True):
    key: str
    route: str
    labels: dict[str, str]
    created_ns: int
    due_ns: int
    fingerprints: list[str] = msgspec.field(default_factory=list)
    sent: dict[str, _Sent] = msgspec.field(default_factory=dict)


class _Escalation(msgspec.Struct, kw_only=True):
    key: str
    policy: str
    route: str
    fingerprint: str
    #: the alert's episode (its first_ns) this walk is about
    episode: int
    level: int = 0
    round: int = 1
    due_ns: int = 0
    reached: list[str] = msgspec.field(default_factory=list)
    #: acknowledged: no more steps; the reached receivers still hear of the resolution
    stopped: bool = False


@dataclass(frozen=True)
class Inhibition:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def of(cls, rule: InhibitRule) -> Inhibition:
        return cls(
            tuple(parse_matchers(rule.source_matchers)),
            tuple(parse_matchers(rule.target_matchers)),
            tuple(rule.equal),
        )


@dataclass(frozen=True)
class Policy:
    name: str
    levels: tuple[tuple[tuple[str, ...], int], ...]  # (receivers, timeout ns)
    repeat: int

    @classmethod
    def of(cls, name: str, config: EscalationConfig) -> Policy:
        levels = tuple((tuple(lv.receivers), parse_duration(lv.timeout)) for lv in config.levels)
        return cls(name, levels, config.repeat)


class AlertManager:
    """Tracked alerts, their groups and escalations (see the module doc)."""

    def __init__(
        self,
        routes: RouteNode,
        store: AlertStore,
        *,
        inhibitions: Iterable[Inhibition] = (),
        policies: Mapping[str, Policy] | None = None,
        resend_receivers: Iterable[str] = (),
        resend_ns: int = 60_000_000_000,
        resolve_timeout_ns: int = 0,
        external_url: str | None = None,
    ) -> None:
        self.routes = routes
        self._route_by_id = {node.id: node for node in _nodes(routes)}
        self.store = store
        self._inhibitions = list(inhibitions)
        self._policies = dict(policies or {})
        self._resend = set(resend_receivers)
        self._resend_ns = resend_ns
        self._resolve_timeout = resolve_timeout_ns
        self._url = external_url
        self.alerts: dict[str, AlertState] = {}
        self.groups: dict[str, _Group] = {}
        self.escalations: dict[str, _Escalation] = {}
        self._seen: dict[str, int] = {}
        self._silences: list[tuple[Silence, list[Matcher]]] = []
        self._active_silences: set[str] = set()
        self._dirty_alerts: set[str] = set()
        self._dirty_groups: set[str] = set()
        self._dirty_escalations: set[str] = set()
        self._forget: set[str] = set()
        #: escalations whose alert was acknowledged or resolved since the last tick
        self._pending_updates: list[str] = []

    # -- state --------------------------------------------------------------------------

    def load(self, now_ns: int) -> None:
        """Take up the state the store holds (after a restart)."""
        for alert in self.store.alerts():
            self.alerts[alert.fingerprint] = alert
            self._seen[alert.fingerprint] = now_ns
        for group in self.store.load("groups", _Group):
            self.groups[group.key] = group
        for esc in self.store.load("escalations", _Escalation):
            self.escalations[esc.key] = esc
        self.refresh_silences(now_ns)

    def save(self) -> None:
        """Write what changed since the last save, in one transaction."""
        if not (self._dirty_alerts or self._dirty_groups or self._dirty_escalations):
            return
        alerts = [self.alerts[f] for f in self._dirty_alerts if f in self.alerts]
        groups = [(k, self.groups.get(k)) for k in self._dirty_groups]
        escalations = [(k, self.escalations.get(k)) for k in self._dirty_escalations]
        self.store.save(alerts, groups, escalations, self._forget)
        self._dirty_alerts.clear()
        self._dirty_groups.clear()
        self._dirty_escalations.clear()
        self._forget.clear()

    def refresh_silences(self, now_ns: int) -> None:
        """Read the silences again; groups are looked at again when the active set changed."""
        self._silences = [
            (s, parse_matchers(s.matchers)) for s in self.store.silences(active_at=now_ns)
        ]
        active = {s.id for s, _ in self._silences if s.active(now_ns)}
        if active != self._active_silences:
            self._active_silences = active
            self._all_changed(now_ns)

    # -- occurrences ----------------------------------------------------------------------

    def receive(self, alert: Alert, now_ns: int) -> None:
        """One occurrence (or the end of a condition, for `alert.resolves`)."""
        fp = alert.fingerprint
        state = self.alerts.get(fp)
        if alert.resolves:
            if state is not None and state.status != "resolved":
                self._close(state, "resolved", "logwarden", now_ns)
            return
        at = _time_ns(alert.time, now_ns)
        origin = alert.origin
        link = Link(origin.instance, origin.seq, alert.time, alert.audit_id, origin.index)
        self._seen[fp] = now_ns
        self._dirty_alerts.add(fp)
        if state is not None and state.status != "resolved":
            state.count += alert.count
            state.last_ns = max(state.last_ns, at)
            state.annotations["summary"] = alert.output
            state.links.append(link)
            del state.links[:-LINKS_KEPT]
            return
        state = self.alerts[fp] = AlertState(
            fingerprint=fp,
            labels=_labels(alert),
            annotations={"summary": alert.output, "rule_format": alert.rule_format},
            severity=alert.severity,
            first_ns=at,
            last_ns=at,
            count=alert.count,
            links=[link],
        )
        if alert.author:
            state.annotations["author"] = alert.author
        self._forget.discard(fp)
        for node in self.routes.match(state.labels):
            self._join(node, state, now_ns)
            if node.escalation is not None and node.escalation in self._policies:
                self._escalate(node, state)
        if self._inhibitions:
            self._all_changed(now_ns)

    def _join(self, node: RouteNode, state: AlertState, now_ns: int) -> None:
        labels = node.group_labels(state.labels)
        key = node.id + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(
                key=key,
                route=node.id,
                labels=labels,
                created_ns=now_ns,
                due_ns=now_ns + node.group_wait_ns,
            )
        if state.fingerprint not in group.fingerprints:
            group.fingerprints.append(state.fingerprint)
        self._changed(group, now_ns)

    def _escalate(self, node: RouteNode, state: AlertState) -> None:
        policy = self._policies[node.escalation or ""]
        key = f"{policy.name}:{state.fingerprint}"
        if key in self.escalations and self.escalations[key].episode == state.first_ns:
            return
        self.escalations[key] = _Escalation(
            key=key,
            policy=policy.name,
            route=node.id,
            fingerprint=state.fingerprint,
            episode=state.first_ns,
        )
        self._dirty_escalations.add(key)

    # -- people ---------------------------------------------------------------------------

    def command(self, cmd: Command, now_ns: int) -> str:
        """Apply an `ack` or `resolve`; what it did, in a sentence."""
        state = self.alerts.get(cmd.target)
        if state is None:
            return f"no alert with fingerprint {cmd.target}"
        if state.status == "resolved":
            return f"alert {cmd.target} was already resolved"
        if cmd.kind == "ack":
            if state.status == "acknowledged":
                return f"alert {cmd.target} was already acknowledged by {state.acknowledged_by}"
            self._close(state, "acknowledged", cmd.by, now_ns)
            return f"alert {cmd.target} acknowledged by {cmd.by}"
        self._close(state, "resolved", cmd.by, now_ns)
        return f"alert {cmd.target} resolved by {cmd.by}"

    def _close(self, state: AlertState, status: str, by: str, now_ns: int) -> None:
        if status == "acknowledged":
            state.status = "acknowledged"
            state.acknowledged_by, state.acknowledged_ns = by, now_ns
        else:
            state.status = "resolved"
            state.resolved_by, state.resolved_ns = by, now_ns
        self._dirty_alerts.add(state.fingerprint)
        for group in self.groups.values():
            if state.fingerprint in group.fingerprints:
                self._changed(group, now_ns)
        if self._inhibitions:
            self._all_changed(now_ns)
        self._pending_updates.extend(
            e.key for e in self.escalations.values() if e.fingerprint == state.fingerprint
        )

    # -- time -----------------------------------------------------------------------------

    def tick(self, now_ns: int) -> list[Notification]:
        """Everything due at `now_ns`: resolutions by timeout, escalation steps, groups."""
        out: list[Notification] = []
        if self._resolve_timeout:
            for fp, seen in list(self._seen.items()):
                state = self.alerts.get(fp)
                if state is None or state.status == "resolved":
                    del self._seen[fp]
                elif now_ns - seen >= self._resolve_timeout:
                    self._close(state, "resolved", "logwarden (resolve_timeout)", now_ns)
                    del self._seen[fp]
        out += self.tick_updates(now_ns)
        for esc in list(self.escalations.values()):
            if not esc.stopped and esc.due_ns <= now_ns:
                out += self._step(esc, now_ns)
        for group in list(self.groups.values()):
            if group.due_ns <= now_ns:
                out += self._flush(group, now_ns)
        return out

    def drain(self, now_ns: int) -> list[Notification]:
        """What changed and was not yet notified, at once (the service is stopping): no
        group waits out its group_wait or group_interval, nothing repeats or escalates."""
        out = self.tick_updates(now_ns)
        for group in list(self.groups.values()):
            out += self._flush(group, now_ns, repeat=False)
        return out

    def tick_updates(self, now_ns: int) -> list[Notification]:
        out: list[Notification] = []
        for key in self._take_updates():
            out += self._escalation_update(key, now_ns)
        return out

    def next_due_ns(self) -> int:
        """When `tick` has something to do next (if nothing arrives before)."""
        due = [g.due_ns for g in self.groups.values()]
        due += [e.due_ns for e in self.escalations.values() if not e.stopped]
        if self._resolve_timeout and self._seen:
            due.append(min(self._seen.values()) + self._resolve_timeout)
        return min(due, default=_NEVER)

    def _take_updates(self) -> list[str]:
        updates = list(dict.fromkeys(self._pending_updates))
        self._pending_updates.clear()
        return updates

    # -- groups ---------------------------------------------------------------------------

    def _changed(self, group: _Group, now_ns: int) -> None:
        node = self._route_by_id.get(group.route)
        if node is not None:
            if group.sent:
                soonest = min(s.at_ns for s in group.sent.values()) + node.group_interval_ns
            else:  # nothing sent yet: its first notification after group_wait
                soonest = group.created_ns + node.group_wait_ns
            group.due_ns = min(group.due_ns, max(now_ns, soonest))
        self._dirty_groups.add(group.key)

    def _all_changed(self, now_ns: int) -> None:
        for group in self.groups.values():
            self._changed(group, now_ns)

    def _flush(self, group: _Group, now_ns: int, *, repeat: bool = True) -> list[Notification]:
        node = self._route_by_id.get(group.route)
        self._dirty_groups.add(group.key)
        if node is None:  # the route is gone from the config
            del self.groups[group.key]
            return []
        states = [self.alerts[f] for f in group.fingerprints if f in self.alerts]
        visible = [a for a in states if a.status == "resolved" or not self.muted(a, now_ns)]
        digest = _digest(visible)
        firing = any(a.status != "resolved" for a in visible)
        out = []
        for receiver in node.receivers:
            sent = group.sent.get(receiver)
            every = node.repeat_interval_ns
            if receiver in self._resend:
                every = min(every, self._resend_ns)
            if sent is None:
                due = firing
            else:
                again = repeat and firing and now_ns - sent.at_ns >= every
                due = bool(visible) and (digest != sent.hash or again)
            if not due:
                continue
            seq = sent.seq + 1 if sent is not None else 1
            group.sent[receiver] = _Sent(digest, now_ns, seq)
            out.append(self._group_notification(group, node, receiver, visible, seq, now_ns))
        # resolved alerts every receiver has heard of leave the group
        gone = {a.fingerprint for a in visible if a.status == "resolved"}
        if gone:
            group.fingerprints = [f for f in group.fingerprints if f not in gone]
            left = _digest([a for a in visible if a.fingerprint not in gone])
            for sent in group.sent.values():
                if sent.hash == digest:
                    sent.hash = left
        if not group.fingerprints:
            del self.groups[group.key]
            return out
        if firing and group.sent:
            group.due_ns = min(s.at_ns for s in group.sent.values()) + _min_repeat(
                node, self._resend, self._resend_ns
            )
        else:
            group.due_ns = _NEVER
        return out

    def _group_notification(
        self,
        group: _Group,
        node: RouteNode,
        receiver: str,
        alerts: list[AlertState],
        seq: int,
        now_ns: int,
    ) -> Notification:
        return Notification(
            id=f"{_short(group.key)}-{group.created_ns}/{receiver}/{seq}-{_digest(alerts)}",
            receiver=receiver,
            route=node.id,
            group_key=group.key,
            group_labels=group.labels,
            status="firing" if any(a.status != "resolved" for a in alerts) else "resolved",
            alerts=[_copy(a) for a in alerts],
            time_ns=now_ns,
            external_url=self._url,
        )

    # -- escalation -----------------------------------------------------------------------

    def _step(self, esc: _Escalation, now_ns: int) -> list[Notification]:
        state = self.alerts.get(esc.fingerprint)
        policy = self._policies.get(esc.policy)
        self._dirty_escalations.add(esc.key)
        if state is None or policy is None or state.first_ns != esc.episode:
            del self.escalations[esc.key]
            return []
        if state.status != "firing":
            esc.stopped = True
            return []
        if self.muted(state, now_ns):
            esc.due_ns = now_ns + 1_000_000_000  # looked at again once the mute ends
            return []
        if esc.level < len(policy.levels):
            esc.level += 1
        elif esc.round <= policy.repeat:
            esc.round, esc.level = esc.round + 1, 1
        else:
            log.warning(
                "alert %r (rule %r) walked every level of escalation %r %d time(s) "
                "unacknowledged; it stays open",
                state.fingerprint,
                state.rule,
                policy.name,
                esc.round,
            )
            esc.stopped = True
            return []
        receivers, timeout = policy.levels[esc.level - 1]
        esc.due_ns = now_ns + timeout
        for r in receivers:
            if r not in esc.reached:
                esc.reached.append(r)
        step = f"{esc.round}.{esc.level}"
        return [self._escalation_notification(esc, state, r, step, now_ns) for r in receivers]

    def _escalation_update(self, key: str, now_ns: int) -> list[Notification]:
        """The alert of an escalation was acknowledged or resolved: the receivers it
        reached hear of it; a resolved alert's escalation ends."""
        esc = self.escalations.get(key)
        state = self.alerts.get(esc.fingerprint) if esc is not None else None
        if esc is None or state is None:
            return []
        self._dirty_escalations.add(key)
        esc.stopped = True
        if state.status == "resolved":
            del self.escalations[key]
        return [
            self._escalation_notification(esc, state, r, state.status, now_ns) for r in esc.reached
        ]

    def _escalation_notification(
        self, esc: _Escalation, state: AlertState, receiver: str, step: str, now_ns: int
    ) -> Notification:
        return Notification(
            id=f"{_short(esc.key)}-{esc.episode}/{receiver}/{step}",
            receiver=receiver,
            route=esc.route,
            group_key=esc.key,
            group_labels={"alertname": state.labels.get("alertname", "")},
            status="resolved" if state.status == "resolved" else "firing",
            alerts=[_copy(state)],
            time_ns=now_ns,
            escalation=esc.policy,
            level=esc.level or None,
            round=esc.round,
            external_url=self._url,
        )

    # -- muting ---------------------------------------------------------------------------

    def muted(self, state: AlertState, now_ns: int) -> bool:
        """Silenced by an active silence, or inhibited by another firing alert."""
        labels = state.labels
        for silence, matchers in self._silences:
            if silence.active(now_ns) and matches(matchers, labels):
                return True
        for rule in self._inhibitions:
            if not matches(rule.target, labels):
                continue
            want = [labels.get(name, "") for name in rule.equal]
            for other in self.alerts.values():
                if (
                    other.status != "resolved"
                    and other.fingerprint != state.fingerprint
                    and matches(rule.source, other.labels)
                    and [other.labels.get(n, "") for n in rule.equal] == want
                ):
                    return True
        return False


def _labels(alert: Alert) -> dict[str, str]:
    labels = {
        "alertname": alert.rule,
        "rule": alert.rule,
        "severity": alert.severity,
        "source": alert.source,
        "fingerprint": alert.fingerprint,
    }
    if alert.tags:
        labels["tags"] = ",".join(alert.tags)
    for name, value in alert.labels.items():
        if value:
            labels.setdefault(name, value)
    return labels


def _time_ns(text: str, default: int) -> int:
    try:
        return parse_rfc3339_ns(text)
    except ValueError:
        return default


def _digest(alerts: Iterable[AlertState]) -> str:
    text = "\n".join(sorted(f"{a.fingerprint}:{a.status}" for a in alerts))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _short(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def _copy(state: AlertState) -> AlertState:
    return msgspec.structs.replace(
        state,
        labels=dict(state.labels),
        annotations=dict(state.annotations),
        links=list(state.links),
    )


def _nodes(node: RouteNode) -> list[RouteNode]:
    out = [node]
    for child in node.routes:
        out += _nodes(child)
    return out


def _min_repeat(node: RouteNode, resend: set[str], resend_ns: int) -> int:
    if any(r in resend for r in node.receivers):
        return min(node.repeat_interval_ns, resend_ns)
    return node.repeat_interval_ns
