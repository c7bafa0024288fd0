"""Falco rules files (YAML) to definitions: lists, macros and rules, merged across files.

Files are applied in order, as Falco does:

* a list, macro or rule with a known name and no `append`/`override` replaces the earlier
  one (a rule keeps its original place in the evaluation order);
* `append: true` extends a list's items, a macro's or rule's condition (joined with a
  space, so precedence is that of the joined text) and a rule's exceptions; appending to
  something undefined is an error;
* `override: {key: append|replace}` does the same per key (`items`, `condition`,
  `output`, `desc`, `priority`, `tags`, `exceptions`, `enabled`);
* a rule item with only `rule` and `enabled` switches an existing rule on or off;
* `required_engine_version` and `required_plugin_versions` are accepted and recorded;
  null items (a stray `-`) are ignored.

Every error is a RuleError naming file:line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from logwarden.errors import RuleError
from logwarden.records import normalize_priority

__all__ = ["Definitions", "ExceptionDef", "ListDef", "Loc", "MacroDef", "RuleDef"]


@dataclass(frozen=True)
class Loc:
    file: str
    line: int
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    def error(
        self, message: str, *, line: int | None = None, kind: type[RuleError] = RuleError
    ) -> RuleError:
        return kind(message, file=self.file, line=line or self.line, column=self.column)


@dataclass
class ListDef:
    name: str
    items: list[str]
    loc: Loc


@dataclass
class MacroDef:
    name: str
    condition: str
    loc: Loc


@dataclass
class ExceptionDef:
    name: str
    #: a list of field names (tuple form) or one field name (single form); None when the
    #: item only appends values to an exception defined earlier
    fields: list[str] | str | None
    comps: list[str] | str | None
    #: tuple form: a list of tuples (each a list of str or list[str]); single form: values
    values: list[Any]
    loc: Loc


@dataclass
class RuleDef:
    name: str
    condition: str
    output: str
    desc: str
    priority: str
    source: str
    tags: list[str]
    enabled: bool
    exceptions: list[ExceptionDef]
    loc: Loc
    #: Falco's `skip-if-unknown-filter`: a rule naming an unknown field is skipped, not an error
    skip_unknown: bool = False


_RULE_KEYS = {
    "rule",
    "condition",
    "output",
    "desc",
    "priority",
    "source",
    "tags",
    "enabled",
    "exceptions",
    "append",
    "override",
    "warn_evttypes",
    "skip-if-unknown-filter",
}
_RULE_OVERRIDES = {  # as Falco's rule loader: which keys may be appended or replaced
    "condition": {"append", "replace"},
    "output": {"append", "replace"},
    "desc": {"append", "replace"},
    "priority": {"replace"},
    "tags": {"append", "replace"},
    "exceptions": {"append", "replace"},
    "enabled": {"replace"},
    "warn_evttypes": {"replace"},
    "skip-if-unknown-filter": {"replace"},
}
_TRUE = {"true", "yes", "on", "y"}
_FALSE = {"false", "no", "off", "n"}


class _Item:
    """One top-level YAML mapping with access helpers that raise located RuleErrors."""

    def __init__(self, node: yaml.MappingNode, file: str) -> None:
        self.file = file
        self.node = node
        self.keys: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise self.error("keys must be strings", key)
            if key.value in self.keys:
                raise self.error(f"key '{key.value}' appears twice", key)
            self.keys[key.value] = value
        self.loc = Loc(file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, message: str, node: yaml.Node | None = None) -> RuleError:
        n = node if node is not None else self.node
        return RuleError(
            message, file=self.file, line=n.start_mark.line + 1, column=n.start_mark.column + 1
        )

    def has(self, key: str) -> bool:
        return key in self.keys

    def node_of(self, key: str) -> yaml.Node:
        return self.keys[key]

    def line_of(self, key: str) -> int:
        return int(self.keys[key].start_mark.line) + 1

    def text(self, key: str, what: str) -> str:
        node = self.keys[key]
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(f"{what}: '{key}' must be a string", node)
        return str(node.value)

    def flag(self, key: str, what: str) -> bool:
        node = self.keys[key]
        if isinstance(node, yaml.ScalarNode):
            text = str(node.value).lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        raise self.error(f"{what}: '{key}' must be true or false", node)

    def strings(self, key: str, what: str) -> list[str]:
        node = self.keys[key]
        return _strings(node, self.file, f"{what}: '{key}'")


def _strings(node: yaml.Node, file: str, what: str) -> list[str]:
    """A YAML sequence of scalars (nested sequences flattened); null means empty."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag.endswith(":null"):
            return []
        raise RuleError(f"{what} must be a list", file=file, line=node.start_mark.line + 1)
    if not isinstance(node, yaml.SequenceNode):
        raise RuleError(f"{what} must be a list", file=file, line=node.start_mark.line + 1)
    out: list[str] = []
    for item in node.value:
        if isinstance(item, yaml.SequenceNode):
            out.extend(_strings(item, file, what))
        elif isinstance(item, yaml.ScalarNode):
            if not item.tag.endswith(":null"):
                out.append(str(item.value))
        else:
            raise RuleError(
                f"{what}: items must be strings", file=file, line=item.start_mark.line + 1
            )
    return out


def _plain(node: yaml.Node, file: str, what: str) -> Any:
    """A YAML value as str or nested lists of str (exception values)."""
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    if isinstance(node, yaml.SequenceNode):
        return [_plain(n, file, what) for n in node.value]
    raise RuleError(f"{what} must be a string or a list", file=file, line=node.start_mark.line + 1)


@dataclass
class Definitions:
    """Everything loaded so far, in definition order."""

    lists: dict[str, ListDef] = field(default_factory=dict)
    macros: dict[str, MacroDef] = field(default_factory=dict)
    rules: dict[str, RuleDef] = field(default_factory=dict)
    engine_versions: list[str] = field(default_factory=list)
    plugin_versions: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: when set, errors are collected here and loading goes on with the next item
    errors: list[RuleError] | None = None

    def _error(self, error: RuleError) -> None:
        if self.errors is None:
            raise error
        self.errors.append(error)

    def load_file(self, path: str, text: str | None = None) -> None:
        """Apply one rules file (read from `path` unless `text` is given)."""
        try:
            self._load_file(path, text)
        except RuleError as exc:
            self._error(exc)

    def _load_file(self, path: str, text: str | None) -> None:
        if text is None:
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError as exc:
                raise RuleError(
                    f"cannot read rules file: {exc.strerror or exc}", file=path
                ) from exc
            except UnicodeDecodeError as exc:
                raise RuleError(f"rules file is not UTF-8 text: {exc}", file=path) from exc
        try:
            roots = list(yaml.compose_all(text, Loader=yaml.CSafeLoader))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            line = mark.line + 1 if mark is not None else 0
            column = mark.column + 1 if mark is not None else 0
            raise RuleError(
                f"invalid YAML: {exc.problem or exc}", file=path, line=line, column=column
            ) from exc
        except yaml.YAMLError as exc:
            raise RuleError(f"invalid YAML: {exc}", file=path) from exc
        for root in roots:  # every YAML document of the file, as Falco reads them
            self._document(root, path)

    def _document(self, root: yaml.Node | None, path: str) -> None:
        if root is None:
            return
        if not isinstance(root, yaml.SequenceNode):
            raise RuleError(
                "a rules file is a YAML list of rule, macro and list items",
                file=path,
                line=root.start_mark.line + 1,
            )
        for node in root.value:
            if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
                continue  # a stray '-' (k8saudit 0.5.0 has one)
            if not isinstance(node, yaml.MappingNode):
                self._error(
                    RuleError(
                        "each item must be a mapping (rule, macro, list, ...)",
                        file=path,
                        line=node.start_mark.line + 1,
                    )
                )
                continue
            try:
                self._item(_Item(node, path))
            except RuleError as exc:
                self._error(exc)

    def _item(self, item: _Item) -> None:
        if item.has("rule"):
            self._rule(item)
        elif item.has("macro"):
            self._macro(item)
        elif item.has("list"):
            self._list(item)
        elif item.has("required_engine_version"):
            self.engine_versions.append(item.text("required_engine_version", "item"))
        elif item.has("required_plugin_versions"):
            self._plugins(item)
        else:  # Falco warns and goes on
            keys = ", ".join(sorted(item.keys)) or "nothing"
            self.notes.append(
                f"{item.loc}: item with keys {keys} ignored: not a rule, macro, list, "
                "required_engine_version or required_plugin_versions"
            )

    def _plugins(self, item: _Item) -> None:
        node = item.node_of("required_plugin_versions")
        if not isinstance(node, yaml.SequenceNode):
            raise item.error("required_plugin_versions must be a list", node)
        for entry in node.value:
            if not isinstance(entry, yaml.MappingNode):
                raise item.error(
                    "required_plugin_versions: each entry needs name and version", entry
                )
            sub = _Item(entry, item.file)
            if not (sub.has("name") and sub.has("version")):
                raise item.error(
                    "required_plugin_versions: each entry needs name and version", entry
                )
            self.plugin_versions.append((sub.text("name", "plugin"), sub.text("version", "plugin")))

    def _override(
        self, item: _Item, what: str, allowed: dict[str, set[str]], kind: str
    ) -> dict[str, str]:
        node = item.node_of("override")
        if not isinstance(node, yaml.MappingNode):
            raise item.error(f"{what}: 'override' must map keys to append or replace", node)
        sub = _Item(node, item.file)
        out: dict[str, str] = {}
        for key in sub.keys:
            how = sub.text(key, f"{what}: override")
            if key not in allowed:
                raise item.error(f"{what}: '{key}' cannot be overridden", sub.node_of(key))
            if how not in allowed[key]:
                choices = " or ".join(sorted(allowed[key]))
                raise item.error(f"{what}: override of '{key}' must be {choices}", sub.node_of(key))
            if not item.has(key):
                raise item.error(f"{what}: override names '{key}' but gives no '{key}'", node)
            out[key] = how
        for key in item.keys:
            if key not in out and key not in (kind, "override"):
                self.notes.append(f"{item.loc}: {what}: '{key}' ignored: it has no override entry")
        return out

    # --- lists and macros ---------------------------------------------------------------

    def _how(self, item: _Item, what: str, kind: str, key: str, defined: bool) -> str:
        """'append' or 'replace' for the one key a list (items) or macro (condition) changes."""
        if item.has("override"):
            how = self._override(item, what, {key: {"append", "replace"}}, kind)[key]
            if not defined:
                raise item.error(f"{what}: override of a {kind} that is not defined")
            return how
        if item.has("append") and item.flag("append", what):
            if not defined:
                raise item.error(f"{what}: append to a {kind} that is not defined")
            return "append"
        return "replace"

    def _list(self, item: _Item) -> None:
        name = item.text("list", "list")
        what = f"list '{name}'"
        if not item.has("items"):
            raise item.error(f"{what}: missing 'items'")
        items = item.strings("items", what)
        existing = self.lists.get(name)
        how = self._how(item, what, "list", "items", existing is not None)
        if how == "append" and existing is not None:
            existing.items.extend(items)
        else:
            self.lists[name] = ListDef(name, items, item.loc)

    def _macro(self, item: _Item) -> None:
        name = item.text("macro", "macro")
        what = f"macro '{name}'"
        if not item.has("condition"):
            raise item.error(f"{what}: missing 'condition'")
        cond = item.text("condition", what).strip()
        existing = self.macros.get(name)
        how = self._how(item, what, "macro", "condition", existing is not None)
        if how == "append" and existing is not None:
            existing.condition = f"{existing.condition} {cond}"
        else:
            self.macros[name] = MacroDef(name, cond, Loc(item.file, item.line_of("condition")))

    # --- rules ------------------------------------------------------------------------------

    def _rule(self, item: _Item) -> None:
        name = item.text("rule", "rule")
        what = f"rule '{name}'"
        for key in item.keys:
            if key not in _RULE_KEYS:
                self.notes.append(f"{item.loc}: {what}: key '{key}' is not known and was ignored")
        existing = self.rules.get(name)
        if item.has("override"):
            if existing is None:
                raise item.error(f"{what}: override of a rule that is not defined")
            for key, how in self._override(item, what, _RULE_OVERRIDES, "rule").items():
                self._apply(existing, item, key, how, what)
            return
        if item.has("append") and item.flag("append", what):
            if existing is None:
                raise item.error(f"{what}: append to a rule that is not defined")
            for key in item.keys:
                if key in ("rule", "append"):
                    continue
                if key in ("condition", "exceptions"):
                    self._apply(existing, item, key, "append", what)
                else:  # as Falco: only condition and exceptions are appended
                    self.notes.append(
                        f"{item.loc}: {what}: '{key}' ignored: 'append: true' extends only "
                        "condition and exceptions"
                    )
            return
        given = set(item.keys) - {"rule"}
        if given and given <= {"enabled"}:
            if existing is None:
                raise item.error(f"{what}: enabled set for a rule that is not defined")
            existing.enabled = item.flag("enabled", what)
            return
        for key in ("condition", "output", "desc", "priority"):
            if not item.has(key):
                raise item.error(f"{what}: missing '{key}'")
        rule = RuleDef(
            name=name,
            condition=item.text("condition", what).strip(),
            output=item.text("output", what).strip(),
            desc=item.text("desc", what).strip(),
            priority=self._priority(item, what),
            source=item.text("source", what) if item.has("source") else "syscall",
            tags=item.strings("tags", what) if item.has("tags") else [],
            enabled=item.flag("enabled", what) if item.has("enabled") else True,
            exceptions=self._exceptions(item, what) if item.has("exceptions") else [],
            loc=Loc(item.file, item.line_of("condition")),
            skip_unknown=(
                item.flag("skip-if-unknown-filter", what)
                if item.has("skip-if-unknown-filter")
                else False
            ),
        )
        self.rules[name] = rule  # a redefinition keeps its place: dicts keep key order

    def _priority(self, item: _Item, what: str) -> str:
        text = item.text("priority", what)
        priority = normalize_priority(text)
        if priority is None:
            raise item.error(
                f"{what}: priority '{text}' is not one of emergency, alert, critical, error, "
                "warning, notice, informational, debug",
                item.node_of("priority"),
            )
        return priority

    def _apply(self, rule: RuleDef, item: _Item, key: str, how: str, what: str) -> None:
        if key == "condition":
            text = item.text("condition", what).strip()
            rule.condition = f"{rule.condition} {text}" if how == "append" else text
        elif key in ("output", "desc"):
            text = item.text(key, what).strip()
            setattr(rule, key, f"{getattr(rule, key)} {text}" if how == "append" else text)
        elif key == "priority":
            rule.priority = self._priority(item, what)
        elif key == "tags":
            tags = item.strings("tags", what)
            rule.tags = rule.tags + tags if how == "append" else tags
        elif key == "enabled":
            rule.enabled = item.flag("enabled", what)
        elif key == "skip-if-unknown-filter":
            rule.skip_unknown = item.flag(key, what)
        elif key == "warn_evttypes":
            item.flag(key, what)  # accepted; it concerns syscall event types only
        elif key == "exceptions":
            new = self._exceptions(item, what, appending=how == "append")
            if how == "replace":
                rule.exceptions = new
            else:
                self._merge_exceptions(rule, new, item, what)

    def _merge_exceptions(
        self, rule: RuleDef, new: list[ExceptionDef], item: _Item, what: str
    ) -> None:
        by_name = {e.name: e for e in rule.exceptions}
        for exc in new:
            old = by_name.get(exc.name)
            if old is None:
                if exc.fields is None:
                    raise exc.loc.error(f"{what}: exception '{exc.name}' is new and needs 'fields'")
                if not exc.values:
                    raise exc.loc.error(
                        f"{what}: exception '{exc.name}' is added by append and needs 'values'"
                    )
                rule.exceptions.append(exc)
                by_name[exc.name] = exc
            else:
                if exc.fields is not None or exc.comps is not None:
                    raise exc.loc.error(
                        f"{what}: exception '{exc.name}' exists: append only 'values' to it, "
                        "not 'fields' or 'comps'"
                    )
                if isinstance(old.fields, list):
                    for i, value in enumerate(exc.values):
                        if not isinstance(value, list) or len(value) != len(old.fields):
                            raise exc.loc.error(
                                f"{what}: exception '{exc.name}': value {i + 1} must be a list "
                                f"of {len(old.fields)} (one per field), got {value!r}"
                            )
                old.values.extend(exc.values)

    def _exceptions(self, item: _Item, what: str, appending: bool = False) -> list[ExceptionDef]:
        node = item.node_of("exceptions")
        if not isinstance(node, yaml.SequenceNode):
            raise item.error(f"{what}: 'exceptions' must be a list", node)
        out: list[ExceptionDef] = []
        for entry in node.value:
            if not isinstance(entry, yaml.MappingNode):
                raise item.error(f"{what}: each exception is a mapping with a name", entry)
            exc = self._exception(_Item(entry, item.file), what, appending)
            if any(e.name == exc.name for e in out):
                raise exc.loc.error(f"{what}: exception '{exc.name}' is given twice")
            out.append(exc)
        return out

    def _exception(self, sub: _Item, what: str, appending: bool) -> ExceptionDef:
        if not sub.has("name"):
            raise sub.error(f"{what}: exception without a name")
        name = sub.text("name", what)
        where = f"{what}: exception '{name}'"
        fields: list[str] | str | None = None
        comps: list[str] | str | None = None
        if sub.has("fields"):
            fnode = sub.node_of("fields")
            fields = (
                sub.text("fields", where)
                if isinstance(fnode, yaml.ScalarNode)
                else sub.strings("fields", where)
            )
        elif not appending:
            raise sub.error(f"{where}: missing 'fields'")
        if sub.has("comps"):
            cnode = sub.node_of("comps")
            comps = (
                sub.text("comps", where)
                if isinstance(cnode, yaml.ScalarNode)
                else sub.strings("comps", where)
            )
        values: list[Any] = []
        if sub.has("values"):
            vnode = sub.node_of("values")
            if isinstance(vnode, yaml.ScalarNode) and vnode.tag.endswith(":null"):
                values = []
            elif not isinstance(vnode, yaml.SequenceNode):
                raise sub.error(f"{where}: 'values' must be a list", vnode)
            else:
                values = [_plain(v, sub.file, f"{where}: values") for v in vnode.value]
        loc = Loc(sub.file, sub.loc.line)
        if isinstance(fields, list):
            if isinstance(comps, str):
                raise loc.error(f"{where}: with a list of fields, 'comps' must be a list")
            if comps is not None and len(comps) != len(fields):
                raise loc.error(f"{where}: {len(fields)} fields but {len(comps)} comps")
            for i, value in enumerate(values):
                if not isinstance(value, list) or len(value) != len(fields):
                    raise loc.error(
                        f"{where}: value {i + 1} must be a list of {len(fields)} "
                        f"(one per field), got {value!r}"
                    )
        elif isinstance(fields, str) and isinstance(comps, list):
            raise loc.error(f"{where}: with a single field, 'comps' must be a single operator")
        return ExceptionDef(name, fields, comps, values, loc)
