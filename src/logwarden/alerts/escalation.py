"""Escalation policies: ordered levels an unacknowledged alert walks.

An alert a route with `escalation:` takes starts a walk of that policy (one walk per
policy and alert episode). The first level is notified at the next tick; when the alert
is still firing (not acknowledged, not resolved) after a level's timeout, the next level
is notified; after the last level the walk starts again, `repeat` more times, then stops
(the alert stays open). A muted alert does not escalate: its walk waits. Acknowledging
stops the walk and tells every receiver it reached; resolving tells them too and ends it.

Notifications of a walk carry one alert, the policy, the level (from 1) and the round
(from 1); their ids are made from the walk, the alert's episode and the step, so a step
made again after a restart has the id it had.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec

from logwarden.alerts._timers import NEVER, Timers
from logwarden.alerts.model import AlertState, Notification
from logwarden.config.alerting import EscalationConfig
from logwarden.records import parse_duration

__all__ = ["Escalations", "Policy", "Walk"]

log = logging.getLogger("logwarden.alerts")
_RECHECK_NS = 1_000_000_000


@dataclass(frozen=True)
class Policy:
    name: str
    levels: tuple[tuple[tuple[str, ...], int], ...]  # (receivers, timeout ns)
    repeat: int

    @classmethod
    def of(cls, name: str, config: EscalationConfig) -> Policy:
        levels = tuple((tuple(lv.receivers), parse_duration(lv.timeout)) for lv in config.levels)
        return cls(name, levels, config.repeat)


class Walk(msgspec.Struct, kw_only=True):
    """One alert's walk through one policy (saved in the state file)."""

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


class Escalations:
    """Every walk, with its deadline; `dirty` names the walks changed since the last save."""

    def __init__(
        self,
        policies: Mapping[str, Policy],
        muted: Callable[[AlertState, int], bool],
        external_url: str | None = None,
    ) -> None:
        self.policies = dict(policies)
        self._muted = muted
        self._url = external_url
        self.walks: dict[str, Walk] = {}
        self._of_alert: dict[str, set[str]] = {}
        self._timers = Timers()
        self.dirty: set[str] = set()

    def load(self, walks: list[Walk]) -> None:
        for walk in walks:
            self._keep(walk)

    def _keep(self, walk: Walk) -> None:
        self.walks[walk.key] = walk
        self._of_alert.setdefault(walk.fingerprint, set()).add(walk.key)
        self._timers.set(walk.key, NEVER if walk.stopped else walk.due_ns)
        self.dirty.add(walk.key)

    def _drop(self, walk: Walk) -> None:
        del self.walks[walk.key]
        self._of_alert.get(walk.fingerprint, set()).discard(walk.key)
        self._timers.discard(walk.key)
        self.dirty.add(walk.key)

    def start(self, policy: str, route: str, state: AlertState, now_ns: int) -> None:
        if policy not in self.policies:
            return
        key = f"{policy}:{state.fingerprint}"
        walk = self.walks.get(key)
        if walk is not None and walk.episode == state.first_ns:
            return
        self._keep(
            Walk(
                key=key,
                policy=policy,
                route=route,
                fingerprint=state.fingerprint,
                episode=state.first_ns,
                due_ns=now_ns,
            )
        )

    def next_ns(self) -> int:
        return self._timers.next_ns()

    def due(self, now_ns: int, alert: Callable[[str], AlertState | None]) -> list[Notification]:
        out: list[Notification] = []
        for key in self._timers.due(now_ns):
            walk = self.walks.get(key)
            if walk is not None:
                out += self._step(walk, alert(walk.fingerprint), now_ns)
        return out

    def changed(self, state: AlertState, now_ns: int) -> list[Notification]:
        """The alert was acknowledged or resolved: the receivers its walks reached hear of
        it; acknowledged walks stop, resolved ones end."""
        out: list[Notification] = []
        for key in sorted(self._of_alert.get(state.fingerprint, ())):
            walk = self.walks[key]
            if walk.episode != state.first_ns:
                continue
            walk.stopped = True
            self._timers.discard(key)
            self.dirty.add(key)
            out += [self._notification(walk, state, r, state.status, now_ns) for r in walk.reached]
            if state.status == "resolved":
                self._drop(walk)
        return out

    def _step(self, walk: Walk, state: AlertState | None, now_ns: int) -> list[Notification]:
        policy = self.policies.get(walk.policy)
        self.dirty.add(walk.key)
        if state is None or policy is None or state.first_ns != walk.episode:
            self._drop(walk)
            return []
        if state.status != "firing":
            walk.stopped = True
            return []
        if self._muted(state, now_ns):
            walk.due_ns = now_ns + _RECHECK_NS  # looked at again once the mute ends
            self._timers.set(walk.key, walk.due_ns)
            return []
        if walk.level < len(policy.levels):
            walk.level += 1
        elif walk.round <= policy.repeat:
            walk.round, walk.level = walk.round + 1, 1
        else:
            log.warning(
                "alert %r (rule %r) walked every level of escalation %r %d time(s) "
                "unacknowledged; it stays open",
                state.fingerprint,
                state.rule,
                policy.name,
                walk.round,
            )
            walk.stopped = True
            return []
        receivers, timeout = policy.levels[walk.level - 1]
        walk.due_ns = now_ns + timeout
        self._timers.set(walk.key, walk.due_ns)
        for r in receivers:
            if r not in walk.reached:
                walk.reached.append(r)
        step = f"{walk.round}.{walk.level}"
        return [self._notification(walk, state, r, step, now_ns) for r in receivers]

    def _notification(
        self, walk: Walk, state: AlertState, receiver: str, step: str, now_ns: int
    ) -> Notification:
        short = hashlib.blake2b(walk.key.encode(), digest_size=8).hexdigest()
        return Notification(
            id=f"{short}-{walk.episode}/{receiver}/{step}",
            receiver=receiver,
            route=walk.route,
            group_key=walk.key,
            group_labels={"alertname": state.labels.get("alertname", "")},
            status="resolved" if state.status == "resolved" else "firing",
            alerts=[state],  # rendered before anything changes it (Dispatcher.submit)
            time_ns=now_ns,
            escalation=walk.policy,
            level=walk.level or None,
            round=walk.round,
            external_url=self._url,
        )
