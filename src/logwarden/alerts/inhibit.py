"""Inhibition rules (Alertmanager's): while an alert matching a rule's source matchers is
open (firing or acknowledged), alerts matching its target matchers with the same values
of the `equal` labels are not notified. An alert that matches both the source and the
target matchers is inhibited only by sources that do not match the target matchers too,
so alerts on both sides of a rule do not mute each other (and none mutes itself).

`Inhibitor` counts, per rule, the open source alerts by their `equal` values, and among
them those that match the target matchers too, so asking whether an alert is inhibited
costs a lookup, not a walk over every alert.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from logwarden.alerts.matchers import Matcher, matches, parse_matchers
from logwarden.alerts.model import AlertState
from logwarden.config.alerting import InhibitRule

__all__ = ["Inhibition", "Inhibitor"]


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

    def key(self, labels: dict[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(name, "") for name in self.equal)


#: how one open source is counted for one rule: (rule index, its `equal` values, whether
#: it matches the rule's target matchers too)
_Count = tuple[int, tuple[str, ...], bool]


@dataclass
class Inhibitor:
    rules: list[Inhibition]
    #: per rule, the open sources by their `equal` values
    _open: list[Counter[tuple[str, ...]]] = field(default_factory=list)
    #: per rule, the open sources that match the target matchers too
    _both: list[Counter[tuple[str, ...]]] = field(default_factory=list)
    #: the fingerprints counted as sources, with how they are counted
    _counted: dict[str, list[_Count]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._open = [Counter() for _ in self.rules]
        self._both = [Counter() for _ in self.rules]

    def update(self, state: AlertState) -> bool:
        """Count `state` as a source while it is open; True if that changed anything."""
        if not self.rules:
            return False
        fp = state.fingerprint
        was = self._counted.pop(fp, [])
        for i, key, both in was:
            _less(self._open[i], key)
            if both:
                _less(self._both[i], key)
        now: list[_Count] = []
        if state.status != "resolved":
            labels = state.labels
            for i, rule in enumerate(self.rules):
                if matches(rule.source, labels):
                    now.append((i, rule.key(labels), matches(rule.target, labels)))
            for i, key, both in now:
                self._open[i][key] += 1
                if both:
                    self._both[i][key] += 1
            if now:
                self._counted[fp] = now
        return was != now

    def inhibited(self, state: AlertState) -> bool:
        labels = state.labels
        for i, rule in enumerate(self.rules):
            if not matches(rule.target, labels):
                continue
            key = rule.key(labels)
            sources = self._open[i][key]
            if matches(rule.source, labels):
                sources -= self._both[i][key]  # not by alerts on both sides, itself included
            if sources > 0:
                return True
        return False


def _less(counts: Counter[tuple[str, ...]], key: tuple[str, ...]) -> None:
    """One fewer under `key`, forgetting keys that reach zero (so the counters stay as
    small as the open alerts)."""
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]
