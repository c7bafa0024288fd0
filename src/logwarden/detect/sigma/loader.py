"""Sigma rule files to engine rules and correlations.

Files are parsed with pySigma (pinned in pyproject: its parser, modifiers and condition
language are Sigma's reference implementation), the processing pipelines are applied (by
default logwarden's field mapping for Kubernetes audit events, `pipelines/*.yml`), and
each rule's `logsource` chooses the records it sees (`LOGSOURCES`). Correlation rules may
refer to rules of any loaded file, by `name` or `id`, and to other correlations (Sigma's
chaining: the referenced correlation's alerts are matches of the one referring to it).

pySigma records no line numbers; errors name the file and the line where the rule's YAML
document starts. With `errors` given, every problem is collected there and loading goes on
(for `rules lint`); otherwise the first one is raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from logwarden.detect.rule import Rule, RuleSet
from logwarden.detect.sigma.compiler import compile_condition, fields_used
from logwarden.detect.sigma.correlations import Known, build_correlation, referenced_first
from logwarden.detect.sigma.fields import resolve
from logwarden.detect.sigma.levels import level_of
from logwarden.detect.sigma.output import compile_output
from logwarden.errors import RuleError
from logwarden.normalize.k8s_audit import SOURCE as K8S_AUDIT
from logwarden.records import parse_duration

__all__ = ["DEFAULT_PIPELINES", "LOGSOURCES", "load_sigma", "source_of", "sources_of"]

#: logsource (the keys given must all match) -> the Record.sources its rules apply to. The
#: first that matches wins. SigmaHQ's own logsources come first; `kubernetes/events`,
#: `kubernetes/containers`, `linux/journald`, `cilium/hubble`, `azure/aks_audit` and
#: `aws/eks_audit` are logwarden's, for its own rules (docs/sigma.md).
LOGSOURCES: list[tuple[dict[str, str], tuple[str, ...]]] = [
    ({"product": "kubernetes", "service": "audit"}, (K8S_AUDIT,)),
    ({"product": "kubernetes", "service": "events"}, ("k8s_event",)),
    ({"product": "kubernetes", "service": "containers"}, ("container_log",)),
    ({"product": "gcp", "service": "gcp.audit"}, ("gke_audit",)),
    ({"product": "azure", "service": "aks_audit"}, ("aks_audit",)),
    ({"product": "aws", "service": "eks_audit"}, ("eks_audit",)),
    ({"product": "aws", "service": "cloudtrail"}, ("aws_cloudtrail",)),
    ({"product": "azure", "service": "activitylogs"}, ("azure_activitylogs",)),
    ({"category": "webserver"}, ("ingress_nginx", "nginx_access", "envoy_access")),
    ({"category": "proxy"}, ("ingress_nginx", "nginx_access", "envoy_access")),
    ({"product": "cilium", "service": "hubble"}, ("hubble_flow",)),
    ({"product": "linux", "service": "journald"}, ("journald",)),
    ({"product": "linux", "service": "auth"}, ("journald",)),
    ({"product": "linux", "service": "sshd"}, ("journald",)),
    ({"product": "linux", "service": "syslog"}, ("journald",)),
]

DEFAULT_PIPELINES = ("kubernetes_audit.yml",)

# context worth showing in an alert, after the fields the rule itself reads
_CONTEXT = {K8S_AUDIT: ("user.username", "objectRef.namespace", "objectRef.name")}


def sources_of(logsource: Any) -> tuple[str, ...]:
    """The Record.sources a rule with this logsource applies to (none: it is skipped)."""
    given = {k: getattr(logsource, k) for k in ("category", "product", "service")}
    for keys, sources in LOGSOURCES:
        if all(given.get(k) == v for k, v in keys.items()):
            return sources
    return ()


def source_of(logsource: Any) -> str | None:
    """The first Record.source a rule with this logsource applies to, or None."""
    found = sources_of(logsource)
    return found[0] if found else None


def _pipeline(names: Sequence[str]) -> ProcessingPipeline:
    pipeline = ProcessingPipeline()
    for name in names:
        path = resources.files("logwarden") / "detect" / "sigma" / "pipelines" / name
        pipeline = pipeline + ProcessingPipeline.from_yaml(path.read_text(encoding="utf-8"))
    return pipeline


def _document_lines(text: str) -> list[int]:
    """The first line of each YAML document of a file (1-based)."""
    try:
        return [
            node.start_mark.line + 1
            for node in yaml.compose_all(text, Loader=yaml.CSafeLoader)
            if node is not None
        ]
    except yaml.YAMLError:
        return []


class _Loader:
    def __init__(self, errors: list[RuleError] | None) -> None:
        self.errors = errors
        self.out = RuleSet()
        self.where: dict[int, tuple[str, int]] = {}  # id(sigma rule) -> (file, line)

    def fail(self, message: str, sigma: Any = None, file: str | None = None, line: int = 0) -> None:
        if sigma is not None:
            file, line = self.where.get(id(sigma), (file or "?", line))
            title = getattr(sigma, "title", None)
            if title:
                message = f"rule '{title}': {message}"
        error = RuleError(message, file=file, line=line)
        if self.errors is None:
            raise error
        self.errors.append(error)

    def read(self, path: str) -> list[Any]:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.fail(f"cannot read rules file: {exc}", file=path)
            return []
        try:
            collection = SigmaCollection.from_yaml(
                text,
                collect_errors=True,
                source=SigmaRuleLocation(Path(path)),
                resolve_references=False,
            )
        except (SigmaError, yaml.YAMLError) as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
            self.fail(f"not a Sigma rules file: {exc}", file=path, line=line)
            return []
        lines = _document_lines(text)
        rules = list(collection.rules)
        for n, rule in enumerate(rules):
            self.where[id(rule)] = (path, lines[n] if n < len(lines) else 1)
            for error in rule.errors:
                self.fail(str(error), rule)
        return [r for r in rules if not r.errors]


def load_sigma(
    paths: Sequence[str],
    *,
    pipelines: Sequence[str] = DEFAULT_PIPELINES,
    errors: list[RuleError] | None = None,
) -> RuleSet:
    """Load Sigma rule files (rules and correlations) for the engine."""
    loader = _Loader(errors)
    parsed: list[Any] = []
    for path in paths:
        parsed.extend(loader.read(path))
    loader.out.files.extend(paths)
    try:  # the collection resolves references as it is made (a rule file may have failed)
        collection = SigmaCollection(parsed)
        collection.resolve_rule_references()
    except SigmaError as exc:
        loader.fail(
            f"correlation refers to an unknown rule: {exc}", file=paths[0] if paths else None
        )
        return loader.out
    pipeline = _pipeline(pipelines)
    engine_rules: dict[int, Rule] = {}
    names: set[str] = set()
    for sigma in parsed:
        try:
            pipeline.apply(sigma)
        except SigmaError as exc:
            loader.fail(f"processing pipeline: {exc}", sigma)
            continue
        if isinstance(sigma, SigmaRule):
            made = _rules(loader, sigma, names)
            if made:  # a correlation counts the rule's matches on its first source
                engine_rules[id(sigma)] = made[0]
                loader.out.rules.extend(made)
    titles = Counter(s.title for s in parsed if isinstance(s, SigmaCorrelationRule))
    shared = {title for title, n in titles.items() if n > 1 or title in names}
    known = Known(collection, engine_rules, {}, shared)
    for sigma in referenced_first(parsed):
        correlation = build_correlation(loader, sigma, known)
        known.made[id(sigma)] = correlation
        if correlation is not None:
            loader.out.correlations.append(correlation[0])
    return loader.out


def _options(loader: _Loader, sigma: Any) -> tuple[int, list[str]]:
    """logwarden's own options in a rule: `logwarden: {suppress: 5m, suppress_by: [...]}`."""
    custom = (getattr(sigma, "custom_attributes", None) or {}).get("logwarden") or {}
    if not isinstance(custom, dict):
        loader.fail("'logwarden' must be a mapping (suppress, suppress_by)", sigma)
        return 0, []
    unknown = set(custom) - {"suppress", "suppress_by"}
    if unknown:
        loader.fail(f"'logwarden' has unknown keys: {', '.join(sorted(unknown))}", sigma)
    window = 0
    if "suppress" in custom:
        try:
            window = parse_duration(str(custom["suppress"]))
        except ValueError as exc:
            loader.fail(f"logwarden.suppress: {exc}", sigma)
    by = custom.get("suppress_by") or []
    if not isinstance(by, list) or not all(isinstance(f, str) for f in by):
        loader.fail("logwarden.suppress_by must be a list of field names", sigma)
        by = []
    return window, by


def _rules(loader: _Loader, sigma: SigmaRule, names: set[str]) -> list[Rule]:
    """The rule compiled for each source its logsource covers (web rules: ingress-nginx,
    nginx and Envoy records), one name for all."""
    file, line = loader.where.get(id(sigma), ("?", 0))
    sources = sources_of(sigma.logsource)
    if not sources:
        loader.out.notes.append(
            f"{file}:{line}: rule '{sigma.title}' skipped: logsource "
            f"{sigma.logsource.product}/{sigma.logsource.service}/{sigma.logsource.category} "
            "is not one logwarden reads"
        )
        return []
    name = sigma.title
    if name in names:  # titles need not be unique in Sigma; alert names must be
        name = f"{sigma.title} [{sigma.id or sigma.name or len(names)}]"
    names.add(name)
    made = []
    for source in sources:
        rule = _rule(loader, sigma, name, source, f"{file}:{line}")
        if rule is None:
            return []
        made.append(rule)
    return made


def _rule(loader: _Loader, sigma: SigmaRule, name: str, source: str, origin: str) -> Rule | None:
    try:
        predicate = compile_condition(sigma, source)
        shown = list(sigma.fields or []) or fields_used(sigma)
        shown += [f for f in _CONTEXT.get(source, ()) if f not in shown]
        render = compile_output(sigma.title, [(n, resolve(source, n)) for n in shown[:10]])
        window, by = _options(loader, sigma)
        key_fields = tuple(resolve(source, f) for f in by)
    except (RuleError, SigmaError) as exc:
        loader.fail(getattr(exc, "reason", str(exc)), sigma)
        return None
    priority, severity = level_of(sigma)
    return Rule(
        name=name,
        format="sigma",
        source=source,
        priority=priority,
        severity=severity,
        predicate=predicate,
        render=render,
        tags=tuple(sorted({str(t) for t in sigma.tags})),
        desc=sigma.description or "",
        origin=origin,
        key_fields=key_fields,
        suppress_ns=window,
        author=str(sigma.author or ""),
    )
