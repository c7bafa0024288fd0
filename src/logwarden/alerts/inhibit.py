"""Inhibition rules (Alertmanager's): while an alert matching a rule's source matchers is
open (firing or acknowledged), alerts matching its target matchers with the same values
of the `equal` labels are not notified. An alert does not inhibit itself.

`Inhibitor` counts, per rule, the open source alerts by their `equal` values, so asking
whether an alert is inhibited costs a lookup, not a walk over every alert.
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


@dataclass
class Inhibitor:
    rules: list[Inhibition]
    _open: list[Counter[tuple[str, ...]]] = field(default_factory=list)
    #: the fingerprints counted as sources, with the rules they count for
    _counted: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._open = [Counter() for _ in self.rules]

    def update(self, state: AlertState) -> bool:
        """Count `state` as a source while it is open; True if that changed anything."""
        if not self.rules:
            return False
        fp = state.fingerprint
        was = self._counted.pop(fp, [])
        for i in was:
            self._open[i][self.rules[i].key(state.labels)] -= 1
        now: list[int] = []
        if state.status != "resolved":
            now = [i for i, rule in enumerate(self.rules) if matches(rule.source, state.labels)]
            for i in now:
                self._open[i][self.rules[i].key(state.labels)] += 1
            if now:
                self._counted[fp] = now
        return was != now

    def inhibited(self, state: AlertState) -> bool:
        if not self.rules:
            return False
        counted = self._counted.get(state.fingerprint, ())
        for i, rule in enumerate(self.rules):
            if not matches(rule.target, state.labels):
                continue
            open_sources = self._open[i][rule.key(state.labels)]
            if i in counted:
                open_sources -= 1  # not by itself
            if open_sources > 0:
                return True
        return False
