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
- escalation walks (`alerts.escalation`) notify their levels;
- muted alerts (matched by an active silence, or inhibited by an open alert:
  `alerts.inhibit`) are not notified and do not escalate.

Deadlines are kept by key (`_timers`), so a tick looks only at what is due, and an
alert's groups are indexed, so acknowledging one does not walk every group. Resolved
alerts are forgotten `retention` after they were resolved.

Time is passed in (`now`, nanoseconds), so tests walk it; nothing here sleeps or does
I/O except `load` and `save` through the store. Notification ids are made from the
group or escalation, the alert's episode and the step, so a notification made again
after a crash carries the id it had (`Notification.id`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import msgspec

from logwarden.alerts._timers import NEVER, Timers
from logwarden.alerts._tracked import Tracked
from logwarden.alerts.escalation import Escalations, Policy, Walk
from logwarden.alerts.inhibit import Inhibition, Inhibitor
from logwarden.alerts.matchers import Matcher, matches, parse_matchers
from logwarden.alerts.model import LINKS_KEPT, AlertState, Link, Notification
from logwarden.alerts.route import RouteNode
from logwarden.alerts.state import AlertStore, Command, Silence
from logwarden.normalize.k8s_audit import parse_rfc3339_ns
from logwarden.records import Alert

__all__ = ["AlertManager", "Inhibition", "Policy"]

_SWEEP_NS = 1_000_000_000
#: tracked alerts (and groups) kept in memory; the others wait in the state file
HOT_ALERTS = 10_000
#: a group due sooner than this stays in memory when the others are parked
_SOON_NS = 60_000_000_000


class _Sent(msgspec.Struct, gc=False):
    hash: str
    at_ns: int
    seq: int


class _Group(msgspec.Struct, kw_only=True, gc=False):
    key: str
    route: str
    labels: dict[str, str]
    created_ns: int
    due_ns: int
    fingerprints: list[str] = msgspec.field(default_factory=list)
    sent: dict[str, _Sent] = msgspec.field(default_factory=dict)


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
        retention_ns: int = 7 * 86_400_000_000_000,
        external_url: str | None = None,
        hot_alerts: int = HOT_ALERTS,
    ) -> None:
        self.routes = routes
        self._route_by_id = {node.id: node for node in _nodes(routes)}
        self.store = store
        self._inhibitor = Inhibitor(list(inhibitions))
        self._resend = set(resend_receivers)
        self._resend_ns = resend_ns
        self._resolve_timeout = resolve_timeout_ns
        self._retention = retention_ns
        self._url = external_url
        self.alerts: Tracked[AlertState] = Tracked(store.alert, hot_alerts)
        self.groups: Tracked[_Group] = Tracked(self._read_group, hot_alerts)
        #: groups changed since they were last notified (kept in memory), and parked groups
        #: to look at again when due (`_all_changed`)
        self._pending: set[str] = set()
        self._recheck: set[str] = set()
        self._now = 0
        self.escalations = Escalations(policies or {}, self.muted, external_url)
        #: the groups each alert is in (tuples: most alerts are in one group, and a set
        #: would take four times the memory)
        self._groups_of: dict[str, tuple[str, ...]] = {}
        self._group_timers = Timers()
        #: open alerts by when an occurrence last arrived, the longest quiet first (an
        #: occurrence moves its alert to the end), and resolved alerts by when they were
        #: resolved: each sweep looks only at what is due
        self._seen: dict[str, int] = {}
        self._resolved: dict[str, int] = {}
        self._swept = 0
        self._silences: list[tuple[Silence, list[Matcher]]] = []
        self._active_silences: set[str] = set()
        self._dirty_alerts: set[str] = set()
        self._dirty_groups: set[str] = set()
        self._forget: set[str] = set()
        #: what escalations say about alerts acknowledged or resolved since the last tick:
        #: made when it happens, before a new occurrence can start the alert's next walk
        self._escalated: list[Notification] = []

    # -- state --------------------------------------------------------------------------

    def load(self, now_ns: int) -> None:
        """Take up the state the store holds (after a restart), a page at a time: the most
        recently seen alerts (and every group still to notify) are kept in memory, the
        others only by key (parked)."""
        hot = self.store.newest(self.alerts.hot_max)
        resolved: list[tuple[int, str]] = []
        for page in self.store.pages("alerts", AlertState):
            for alert in page:
                fp = alert.fingerprint
                if fp in hot:
                    self.alerts[fp] = alert
                else:
                    self.alerts.add_parked(fp)
                self._inhibitor.update(alert)
                if alert.status != "resolved":
                    self._seen[fp] = now_ns
                elif alert.resolved_ns is not None:
                    resolved.append((alert.resolved_ns, fp))
        self._resolved.update((fp, at) for at, fp in sorted(resolved))
        for page in self.store.pages("groups", _Group):
            for group in page:
                self._keep(group)
                node = self._route_by_id.get(group.route)
                if (
                    node is None
                    or not group.sent
                    or group.due_ns
                    < min(s.at_ns for s in group.sent.values())
                    + _min_repeat(node, self._resend, self._resend_ns)
                ):
                    self._pending.add(group.key)  # due before its repeat: a change waits
            self._dirty_groups.clear()
            self._now = now_ns
            self._park()
        self.escalations.load(self.store.load("escalations", Walk))
        self._dirty_groups.clear()
        self.escalations.dirty.clear()
        self.refresh_silences(now_ns)
        self._now = now_ns
        self._park()

    def save(self) -> None:
        """Write what changed since the last save, in one transaction."""
        walks = self.escalations.dirty
        if not (self._dirty_alerts or self._dirty_groups or walks or self._forget):
            return
        alerts = [a for f in self._dirty_alerts if (a := self.alerts.get(f)) is not None]
        groups = [(k, self.groups.get(k)) for k in self._dirty_groups]
        escalations = [(k, self.escalations.walks.get(k)) for k in walks]
        self.store.save(alerts, groups, escalations, self._forget)
        self._dirty_alerts.clear()
        self._dirty_groups.clear()
        walks.clear()
        self._forget.clear()
        self._park()

    def _park(self) -> None:
        """Leave in the state file what it holds and was least recently used (`Tracked`):
        not what changed since the last save, nor a group due soon."""
        self.alerts.park(lambda fp, state: fp in self._dirty_alerts)
        soon = self._now + _SOON_NS
        self.groups.park(
            lambda key, group: (
                key in self._dirty_groups or key in self._pending or group.due_ns < soon
            )
        )

    def _read_group(self, key: str) -> _Group | None:
        group: _Group | None = self.store.row("groups", key, _Group)
        return group

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
        self._seen.pop(fp, None)
        self._seen[fp] = now_ns
        self._dirty_alerts.add(fp)
        if state is not None and state.status != "resolved":
            state.count += alert.count
            state.last_ns = max(state.last_ns, at)
            state.annotations["summary"] = alert.output
            state.links.append(link)
            del state.links[:-LINKS_KEPT]
            return
        if state is not None and at <= state.first_ns:
            # a new episode starts after the last one (its walks and notifications are
            # told apart by it), even when its event is no newer
            at = state.first_ns + 1
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
        self._resolved.pop(fp, None)
        for node in self.routes.match(state.labels):
            self._join(node, state, now_ns)
            if node.escalation is not None:
                self.escalations.start(node.escalation, node.id, state, now_ns)
        if self._inhibitor.update(state):
            self._all_changed(now_ns)

    def _join(self, node: RouteNode, state: AlertState, now_ns: int) -> None:
        labels = node.group_labels(state.labels)
        key = node.id + "{" + ",".join(f"{k}={_quoted(v)}" for k, v in labels.items()) + "}"
        group = self.groups.get(key)
        if group is None:
            group = _Group(
                key=key,
                route=node.id,
                labels=labels,
                created_ns=now_ns,
                due_ns=now_ns + node.group_wait_ns,
            )
            self._keep(group)
        if state.fingerprint not in group.fingerprints:
            group.fingerprints.append(state.fingerprint)
            self._in_group(state.fingerprint, key)
        self._changed(group, now_ns)

    def _keep(self, group: _Group) -> None:
        self.groups[group.key] = group
        for fp in group.fingerprints:
            self._in_group(fp, group.key)
        self._group_timers.set(group.key, group.due_ns)
        self._dirty_groups.add(group.key)

    def _in_group(self, fp: str, key: str) -> None:
        keys = self._groups_of.get(fp, ())
        if key not in keys:
            self._groups_of[fp] = (*keys, key)

    def _out_of_group(self, fp: str, key: str) -> None:
        keys = self._groups_of.get(fp, ())
        if key in keys:
            self._groups_of[fp] = tuple(k for k in keys if k != key)

    def _drop(self, group: _Group) -> None:
        self.groups.pop(group.key)
        self._recheck.discard(group.key)
        self._pending.discard(group.key)
        for fp in group.fingerprints:
            self._out_of_group(fp, group.key)
        self._group_timers.discard(group.key)
        self._dirty_groups.add(group.key)

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
            self._seen.pop(state.fingerprint, None)
            self._resolved[state.fingerprint] = now_ns
        self._dirty_alerts.add(state.fingerprint)
        for key in self._groups_of.get(state.fingerprint, ()):
            self._changed(self.groups[key], now_ns)
        if self._inhibitor.update(state):
            self._all_changed(now_ns)
        self._escalated += self.escalations.changed(state, now_ns)

    # -- time -----------------------------------------------------------------------------

    def tick(self, now_ns: int) -> list[Notification]:
        """Everything due at `now_ns`: resolutions by timeout, escalation steps, groups."""
        self._now = now_ns
        if now_ns - self._swept >= _SWEEP_NS:
            self._sweep(now_ns)
        out = self._updates()
        out += self.escalations.due(now_ns, self.alerts.get)
        for key in self._group_timers.due(now_ns):
            group = self.groups.get(key)
            if group is None:
                continue
            if key in self._recheck:  # changed while parked: due when `_changed` says
                self._recheck.discard(key)
                self._changed(group, now_ns)
                if group.due_ns > now_ns:
                    continue
            out += self._flush(group, now_ns)
        return out

    def drain(self, now_ns: int) -> list[Notification]:
        """What changed and was not yet notified, at once (the service is stopping): no
        group waits out its group_wait or group_interval, nothing repeats or escalates."""
        out = self._updates()
        for key in self._recheck:  # the parked groups that may have changed
            self.groups.get(key)
        self._recheck.clear()
        for group in self.groups.hot():  # (a parked group is as it was last notified)
            out += self._flush(group, now_ns, repeat=False)
        return out

    def next_due_ns(self) -> int:
        """When `tick` has something to do next (if nothing arrives before)."""
        due = min(self._group_timers.next_ns(), self.escalations.next_ns())
        if self._escalated:
            return 0
        if self._resolve_timeout and self._seen:
            due = min(due, self._swept + _SWEEP_NS)
        return due

    def _updates(self) -> list[Notification]:
        out, self._escalated = self._escalated, []
        return out

    def _sweep(self, now_ns: int) -> None:
        """Resolve alerts quiet for resolve_timeout; forget those resolved long ago (both
        walks stop at the first alert not yet due)."""
        self._swept = now_ns
        if self._resolve_timeout:
            quiet = []
            for fp, seen in self._seen.items():
                if now_ns - seen < self._resolve_timeout:
                    break
                quiet.append(fp)
            for fp in quiet:
                self._close(self.alerts[fp], "resolved", "logwarden (resolve_timeout)", now_ns)
        old = []
        for fp, done in self._resolved.items():
            if now_ns - done < self._retention:
                break
            if not self._groups_of.get(fp):  # still to be notified: looked at next time
                old.append(fp)
        for fp in old:
            self.alerts.pop(fp)
            del self._resolved[fp]
            self._groups_of.pop(fp, None)
            self._forget.add(fp)
            self._dirty_alerts.discard(fp)

    # -- groups ---------------------------------------------------------------------------

    def _changed(self, group: _Group, now_ns: int) -> None:
        node = self._route_by_id.get(group.route)
        if node is not None:
            if group.sent:
                soonest = min(s.at_ns for s in group.sent.values()) + node.group_interval_ns
            else:  # nothing sent yet: its first notification after group_wait
                soonest = group.created_ns + node.group_wait_ns
            group.due_ns = min(group.due_ns, max(now_ns, soonest))
            self._group_timers.set(group.key, group.due_ns)
        self._dirty_groups.add(group.key)
        self._pending.add(group.key)

    def _all_changed(self, now_ns: int) -> None:
        for key in self.groups:
            if self.groups.parked(key):  # read back when due, and looked at then
                self._recheck.add(key)
                self._group_timers.set(key, now_ns)
            else:
                self._changed(self.groups[key], now_ns)

    def _flush(self, group: _Group, now_ns: int, *, repeat: bool = True) -> list[Notification]:
        node = self._route_by_id.get(group.route)
        self._dirty_groups.add(group.key)
        self._pending.discard(group.key)
        if node is None:  # the route is gone from the config
            self._drop(group)
            return []
        states = [a for f in group.fingerprints if (a := self.alerts.get(f)) is not None]
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
            for fp in gone:
                self._out_of_group(fp, group.key)
            left = _digest([a for a in visible if a.fingerprint not in gone])
            for sent in group.sent.values():
                if sent.hash == digest:
                    sent.hash = left
        if not group.fingerprints:
            self._drop(group)
            return out
        if firing and group.sent:
            group.due_ns = min(s.at_ns for s in group.sent.values()) + _min_repeat(
                node, self._resend, self._resend_ns
            )
        else:
            group.due_ns = NEVER
        self._group_timers.set(group.key, group.due_ns)
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
            alerts=alerts,  # rendered before anything changes them (Dispatcher.submit)
            time_ns=now_ns,
            external_url=self._url,
        )

    # -- muting ---------------------------------------------------------------------------

    def muted(self, state: AlertState, now_ns: int) -> bool:
        """Silenced by an active silence, or inhibited by another open alert."""
        labels = state.labels
        for silence, matchers in self._silences:
            if silence.active(now_ns) and matches(matchers, labels):
                return True
        return self._inhibitor.inhibited(state)


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


def _nodes(node: RouteNode) -> list[RouteNode]:
    out = [node]
    for child in node.routes:
        out += _nodes(child)
    return out


def _min_repeat(node: RouteNode, resend: set[str], resend_ns: int) -> int:
    if any(r in resend for r in node.receivers):
        return min(node.repeat_interval_ns, resend_ns)
    return node.repeat_interval_ns


def _quoted(value: str) -> str:
    """A label value in a group key, quoted and escaped as JSON: two label sets never give
    one key (a value may hold `",`)."""
    return msgspec.json.encode(value).decode()
