"""Sigma correlation rules as the engine's `Correlation`s: references resolved to the
detection rules and correlations they name (made first: chained correlations), group-by
fields and aliases resolved to the fields of each rule, conditions checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule
from sigma.exceptions import SigmaError

from logwarden.detect.correlation import KINDS, Correlation
from logwarden.detect.ir import Field
from logwarden.detect.rule import Rule
from logwarden.detect.sigma.fields import resolve
from logwarden.detect.sigma.levels import level_of
from logwarden.errors import RuleError

if TYPE_CHECKING:
    from logwarden.detect.sigma.loader import _Loader

__all__ = ["Known", "build_correlation", "referenced_first"]


@dataclass
class Known:
    """What the references of a correlation may resolve to."""

    collection: SigmaCollection
    #: id(Sigma rule) -> its engine rule (on the rule's first source)
    rules: dict[int, Rule]
    #: id(Sigma correlation) -> the correlation made of it and the source of the records it
    #: counts (None: it has no rules); None if it failed
    made: dict[int, tuple[Correlation, str | None] | None]
    #: names more than one rule or correlation has (a referenced correlation needs its own)
    shared: set[str]


def referenced_first(parsed: list[Any]) -> list[SigmaCorrelationRule]:
    """The correlations, each after those it refers to (their alerts are its matches, so
    they are made first), otherwise in file order."""
    ordered: list[SigmaCorrelationRule] = []
    seen: set[int] = set()

    def visit(sigma: SigmaCorrelationRule) -> None:
        if id(sigma) in seen:
            return
        seen.add(id(sigma))
        for ref in sigma.rules or []:
            if isinstance(ref.rule, SigmaCorrelationRule):
                visit(ref.rule)
        ordered.append(sigma)

    for sigma in parsed:
        if isinstance(sigma, SigmaCorrelationRule):
            visit(sigma)
    return ordered


def build_correlation(
    loader: _Loader, sigma: SigmaCorrelationRule, known: Known
) -> tuple[Correlation, str | None] | None:
    """The correlation and the source of the records it counts (None if it has no rules),
    or None if it failed."""
    kind = sigma.type.name.lower()
    if kind not in KINDS:
        loader.fail(
            f"correlation type '{kind}' is not supported (supported: {', '.join(KINDS)})", sigma
        )
        return None
    refs = list(sigma.rules or [])
    cond = sigma.condition
    if not isinstance(cond, SigmaCorrelationCondition):
        loader.fail("extended (boolean) correlation conditions are not supported", sigma)
        return None
    try:
        targets = [_target(ref, known) for ref in refs]
        sources = {t.source if isinstance(t, Rule) else t[1] for t in targets} - {None}
        if len(sources) > 1:
            raise RuleError("its rules read records of different sources")
        _resolve_aliases(sigma, known.collection)
        group_by = list(sigma.group_by or [])
        group_fields, chained_group = _fields(sigma, refs, targets, group_by)
        value_fields: dict[str, Field] = {}
        chained_value: dict[str, str] = {}
        if kind == "value_count":
            base, chained = _fields(sigma, refs, targets, [_counted_field(cond)])
            value_fields = {name: fields[0] for name, fields in base.items()}
            chained_value = {name: fields[0] for name, fields in chained.items()}
    except RuleError as exc:
        loader.fail(exc.reason, sigma)
        return None
    priority, severity = level_of(sigma)
    file, line = loader.where.get(id(sigma), ("?", 0))
    correlation = Correlation(
        name=sigma.title,
        kind=kind,
        rules=tuple(t.name if isinstance(t, Rule) else t[0].name for t in targets),
        timespan_ns=int(sigma.timespan.seconds) * 1_000_000_000,
        op=cond.op.name.lower(),
        count=int(cond.count),
        group_by=tuple(group_by),
        group_fields=group_fields,
        value_fields=value_fields,
        chained_group=chained_group,
        chained_value=chained_value,
        priority=priority,
        severity=severity,
        tags=tuple(sorted({str(t) for t in sigma.tags})),
        desc=sigma.description or "",
        origin=f"{file}:{line}",
        generate=bool(sigma.generate),
    )
    return correlation, next(iter(sources), None)


def _target(ref: Any, known: Known) -> Rule | tuple[Correlation, str | None]:
    """The engine rule, or the correlation and its source, that a correlation's `ref` names."""
    if not isinstance(ref.rule, SigmaCorrelationRule):
        rule = known.rules.get(id(ref.rule))
        if rule is None:
            raise RuleError(f"refers to '{ref.reference}', which is not a loaded detection rule")
        return rule
    if id(ref.rule) not in known.made:  # made before whatever refers to it, unless in a cycle
        raise RuleError(
            f"refers to correlation '{ref.reference}', which refers back to it (directly or "
            "through others): correlations may not refer to each other in a cycle"
        )
    made = known.made[id(ref.rule)]
    if made is None:
        raise RuleError(f"refers to correlation '{ref.reference}', which failed to load")
    if made[0].name in known.shared:
        raise RuleError(
            f"refers to correlation '{ref.reference}', whose title '{made[0].name}' another "
            "rule or correlation has too: a correlation referred to needs a title of its own"
        )
    return made


def _resolve_aliases(sigma: SigmaCorrelationRule, collection: SigmaCollection) -> None:
    """Resolve the rule names that key the aliases (pySigma resolves only `rules`), so an
    alias applies to its rule whether `rules` refers to it by name or by id."""
    for alias in sigma.aliases:
        for ref in alias.mapping:
            try:
                ref.resolve(collection)
            except SigmaError as exc:
                raise RuleError(
                    f"alias '{alias.alias}' names rule '{ref.reference}', "
                    "which is not a loaded rule"
                ) from exc


def _counted_field(cond: SigmaCorrelationCondition) -> str:
    """The field whose distinct values a value_count correlation counts."""
    counted = cond.fieldref
    if isinstance(counted, list):
        counted = counted[0] if len(counted) == 1 else None
    if not counted:
        raise RuleError("value_count needs one field to count: condition: {field: ...}")
    return counted


def _fields(
    sigma: SigmaCorrelationRule,
    refs: list[Any],
    targets: list[Rule | tuple[Correlation, str | None]],
    names: list[str],
) -> tuple[dict[str, tuple[Field, ...]], dict[str, tuple[str, ...]]]:
    """What the fields `names` (group-by fields or aliases) stand for in each rule the
    correlation refers to: per base rule the fields to read, per correlation its group-by
    fields (whose values its alerts hold)."""
    base: dict[str, tuple[Field, ...]] = {}
    chained: dict[str, tuple[str, ...]] = {}
    for ref, target in zip(refs, targets, strict=True):
        if isinstance(target, Rule):
            base[target.name] = tuple(_group_field(sigma, ref, target, n) for n in names)
        else:
            chained[target[0].name] = tuple(_chained_field(sigma, ref, target[0], n) for n in names)
    return base, chained


def _aliased(sigma: SigmaCorrelationRule, ref: Any, name: str) -> str:
    """The field `name` (a group-by field or an alias of one) stands for in what `ref`
    refers to."""
    alias = sigma.aliases.aliases.get(name) if sigma.aliases else None
    if alias is None:
        return name
    mapped = next((f for r, f in alias.mapping.items() if r.rule is ref.rule), None)
    if mapped is None:
        raise RuleError(f"alias '{name}' has no field for rule '{ref.reference}'")
    return mapped


def _group_field(sigma: SigmaCorrelationRule, ref: Any, rule: Rule, name: str) -> Field:
    """The field `name` (a group-by field or an alias of one) stands for in `rule`."""
    return resolve(rule.source, _aliased(sigma, ref, name))


def _chained_field(
    sigma: SigmaCorrelationRule, ref: Any, referenced: Correlation, name: str
) -> str:
    """The group-by field of the `referenced` correlation that `name` (a group-by field or
    an alias of one) stands for: its alerts hold the values of those fields only."""
    field = _aliased(sigma, ref, name)
    if field not in referenced.group_by:
        grouped = ", ".join(referenced.group_by) or "none"
        raise RuleError(
            f"'{field}' is not a group-by field of correlation '{referenced.name}' "
            f"(its group-by: {grouped}), so its alerts do not hold it"
        )
    return field
