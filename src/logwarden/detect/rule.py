"""A rule as the engine runs it, whatever format it was written in, and a loaded set of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from logwarden.detect.ir import Field, Node
from logwarden.records import Record

if TYPE_CHECKING:
    from logwarden.detect.correlation import Correlation

__all__ = ["Rule", "RuleSet"]

#: Renders a matching record as (output text, output fields).
Renderer = Callable[[Record], tuple[str, dict[str, Any]]]


@dataclass
class Rule:
    """One compiled rule.

    `source` is the `Record.source` it applies to; `priority` is the Falco priority name
    (`records.FALCO_PRIORITIES`), `severity` the logwarden severity; `origin` names the
    file and line the rule was defined at.
    """

    name: str
    format: str
    source: str
    priority: str
    severity: str
    predicate: Node
    render: Renderer
    tags: tuple[str, ...] = ()
    desc: str = ""
    enabled: bool = True
    origin: str = ""
    #: the fields whose values, with the rule, identify an alert (its fingerprint);
    #: empty means the values of the output fields
    key_fields: tuple[Field, ...] = ()
    #: repeats of one alert within this window are folded into one summary (0: never)
    suppress_ns: int = 0
    #: the rule's author, shown with its alerts where its license asks for it (Sigma's DRL)
    author: str = ""


@dataclass
class RuleSet:
    """Rules in load order, plus notes about what was loaded and what was skipped."""

    rules: list[Rule] = field(default_factory=list)
    correlations: list[Correlation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def extend(self, other: RuleSet) -> None:
        self.rules.extend(other.rules)
        self.correlations.extend(other.correlations)
        self.notes.extend(other.notes)
        self.files.extend(other.files)

    @property
    def enabled(self) -> list[Rule]:
        return [r for r in self.rules if r.enabled]
