"""Falco rules files: how files merge (append, override, redefinition, enabled) and how
errors name file:line. Each behaviour is checked by running the rules on a real event."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

from conftest import TRACES, run_detect
from logwarden.detect.falco.compiler import load_falco
from logwarden.errors import RuleError

PRIV_POD = (
    TRACES / "create_nginx_pod_privileged.json"
)  # nginx, privileged, by replicaset-controller
NAMESPACE = TRACES / "some-user_creates_namespace_foo.json"  # some-user creates namespace foo

BASE = """
- list: users
  items: [admin]
- macro: created
  condition: ka.verb=create
- rule: Namespace made
  desc: a namespace was created
  condition: created and ka.target.resource=namespaces and not ka.user.name in (users)
  output: ns %ka.target.name by %ka.user.name
  priority: warning
  source: k8s_audit
- rule: Pod made
  desc: a pod was created
  condition: created and ka.target.resource=pods
  output: pod by %ka.user.name
  priority: INFO
  source: k8s_audit
"""


def rule_z(condition: str, output: str = "o") -> str:
    """BASE plus a rule 'Z' whose condition is on line 20 of the file."""
    return (
        BASE
        + f"- rule: Z\n  desc: d\n  condition: {condition}\n  output: {output}\n"
        + "  priority: info\n  source: k8s_audit\n"
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def rules_of(tmp_path: Path, *texts: str) -> list[Path]:
    return [write(tmp_path, f"r{i}.yaml", t) for i, t in enumerate(texts)]


def fired(tmp_path: Path, trace: Path, *texts: str, match: str = "all") -> Counter[str]:
    run = run_detect([trace], rules_of(tmp_path, *texts), match=match)
    return Counter(a.rule for a in run.alerts)


def test_base_rules_fire(tmp_path: Path) -> None:
    assert fired(tmp_path, NAMESPACE, BASE) == {"Namespace made": 1}
    assert fired(tmp_path, PRIV_POD, BASE) == {"Pod made": 1}


def test_list_append_and_override(tmp_path: Path) -> None:
    legacy = "- list: users\n  items: [some-user]\n  append: true\n"
    assert fired(tmp_path, NAMESPACE, BASE, legacy) == {}
    modern = "- list: users\n  items: [some-user]\n  override:\n    items: append\n"
    assert fired(tmp_path, NAMESPACE, BASE, modern) == {}
    replaced = "- list: users\n  items: [nobody]\n  override:\n    items: replace\n"
    assert fired(tmp_path, NAMESPACE, BASE, replaced) == {"Namespace made": 1}


def test_list_redefinition_replaces(tmp_path: Path) -> None:
    again = "- list: users\n  items: [some-user]\n"
    assert fired(tmp_path, NAMESPACE, BASE, again) == {}


def test_macro_append_joins_condition_text(tmp_path: Path) -> None:
    # 'ka.verb=create and ka.user.name=nobody': the namespace event no longer matches
    more = "- macro: created\n  condition: and ka.user.name=nobody\n  append: true\n"
    assert fired(tmp_path, NAMESPACE, BASE, more) == {}


def test_rule_condition_override_append_and_replace(tmp_path: Path) -> None:
    append = """
    - rule: Namespace made
      condition: and ka.target.name=bar
      override:
        condition: append
    """
    assert fired(tmp_path, NAMESPACE, BASE, append) == {}
    replace = """
    - rule: Pod made
      condition: ka.target.resource=namespaces
      override:
        condition: replace
    """
    assert fired(tmp_path, NAMESPACE, BASE, replace) == {"Namespace made": 1, "Pod made": 1}


def test_priority_and_output_override(tmp_path: Path) -> None:
    change = """
    - rule: Namespace made
      priority: critical
      output: changed %ka.verb
      override:
        priority: replace
        output: replace
    """
    run = run_detect([NAMESPACE], rules_of(tmp_path, BASE, change))
    (alert,) = run.alerts
    assert (alert.priority, alert.severity, alert.output) == (
        "Critical",
        "critical",
        "changed create",
    )


def test_enabled_only_item_switches_a_rule(tmp_path: Path) -> None:
    off = "- rule: Namespace made\n  enabled: false\n"
    assert fired(tmp_path, NAMESPACE, BASE, off) == {}
    back_on = "- rule: Namespace made\n  enabled: true\n"
    assert fired(tmp_path, NAMESPACE, BASE, off, back_on) == {"Namespace made": 1}


def test_redefined_rule_keeps_its_place_in_first_mode(tmp_path: Path) -> None:
    both = """
    - rule: First
      desc: d
      condition: ka.verb=create
      output: first
      priority: notice
      source: k8s_audit
    - rule: Second
      desc: d
      condition: ka.verb=create
      output: second
      priority: notice
      source: k8s_audit
    """
    redefine_first = """
    - rule: First
      desc: d
      condition: ka.verb=create and ka.target.resource=namespaces
      output: first again
      priority: notice
      source: k8s_audit
    """
    run = run_detect([NAMESPACE], rules_of(tmp_path, both, redefine_first), match="first")
    assert [a.output for a in run.alerts] == ["first again"]


def test_exceptions_tuple_form_and_append(tmp_path: Path) -> None:
    with_exc = """
    - rule: Namespace made
      exceptions:
        - name: known
          fields: [ka.user.name, ka.target.name]
          comps: [=, startswith]
          values:
            - [some-user, ba]
      override:
        exceptions: append
    """
    assert fired(tmp_path, NAMESPACE, BASE, with_exc) == {"Namespace made": 1}
    more_values = """
    - rule: Namespace made
      exceptions:
        - name: known
          values:
            - [some-user, fo]
      append: true
    """
    assert fired(tmp_path, NAMESPACE, BASE, with_exc, more_values) == {}


def test_exceptions_single_field_form_expands_lists(tmp_path: Path) -> None:
    exc = """
    - list: trusted
      items: [some-user]
    - rule: Namespace made
      exceptions:
        - name: trusted_users
          fields: ka.user.name
          values: [trusted]
      override:
        exceptions: append
    """
    assert fired(tmp_path, NAMESPACE, BASE, exc) == {}


def test_exception_with_in_comparison(tmp_path: Path) -> None:
    exc = """
    - rule: Namespace made
      exceptions:
        - name: by_name
          fields: [ka.target.name]
          comps: [in]
          values:
            - [[foo, bar]]
      override:
        exceptions: append
    """
    assert fired(tmp_path, NAMESPACE, BASE, exc) == {}


def test_other_sources_are_skipped_with_a_note(tmp_path: Path) -> None:
    syscall = (
        BASE
        + """
- rule: Shell in container
  desc: d
  condition: evt.type = execve and proc.name = bash
  output: shell
  priority: warning
"""
    )
    rules = load_falco([str(write(tmp_path, "r.yaml", syscall))])
    assert [r.name for r in rules.rules] == ["Namespace made", "Pod made"]
    assert any("1 Falco rule for source 'syscall' skipped" in n for n in rules.notes)


def test_required_versions_and_stray_null_items_are_accepted(tmp_path: Path) -> None:
    text = (
        "- required_engine_version: 15\n"
        "- required_plugin_versions:\n  - name: k8saudit\n    version: 0.18.0\n"
        "-\n" + BASE
    )
    rules = load_falco([str(write(tmp_path, "r.yaml", text))])
    assert len(rules.rules) == 2


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "- rule: X\n  desc: d\n  output: o\n  priority: warning\n",
            1,
            "rule 'X': missing 'condition'",
        ),
        (
            rule_z("ka.verb=create").replace("info", "loud"),
            22,
            "priority 'loud' is not one of",
        ),
        ("- list: nope\n  items: [a]\n  append: true\n", 1, "append to a list that is not defined"),
        (
            "- rule: Nope\n  condition: a\n  append: true\n",
            1,
            "append to a rule that is not defined",
        ),
        ("- rule: Nope\n  enabled: false\n", 1, "enabled set for a rule that is not defined"),
        (
            "- macro: m\n  condition: x\n  override:\n    condition: append\n",
            1,
            "override of a macro that is not defined",
        ),
        (
            BASE + "- rule: Pod made\n  condition: and x\n  override:\n    condition: merge\n",
            21,
            "must be append or replace",
        ),
        (
            BASE + "- rule: Pod made\n  priority: info\n  override:\n    priority: append\n",
            21,
            "override of 'priority' must be replace",
        ),
        (
            BASE + "- rule: Pod made\n  source: syscall\n  override:\n    source: replace\n",
            21,
            "'source' cannot be overridden",
        ),
        (
            BASE
            + "- rule: Pod made\n  exceptions:\n    - name: e\n      fields: [ka.verb]\n"
            + "      values: [[create]]\n    - name: e\n      fields: [ka.uri]\n"
            + "      values: [[x]]\n  override:\n    exceptions: append\n",
            23,
            "exception 'e' is given twice",
        ),
        ("rule: x\n", 1, "a rules file is a YAML list"),
        ("- rule: [unclosed\n", 2, "invalid YAML"),
        (
            rule_z("ka.verb in (a"),
            20,
            "rule 'Z': condition: list is not closed with ')' (column 14 of the condition)",
        ),
        (
            rule_z("ka.nope = 1"),
            20,
            "unknown field 'ka.nope'",
        ),
        (
            rule_z("missing_macro"),
            20,
            "'missing_macro' is not a defined macro",
        ),
        (
            rule_z("users"),
            20,
            "'users' is a list, not a macro",
        ),
        (
            rule_z("created", "o %ka.nope"),
            20,
            "output: invalid formatting token '%ka.nope'",
        ),
        (
            "- macro: a\n  condition: b\n- macro: b\n  condition: a\n" + rule_z("a")[len(BASE) :],
            4,
            "macros refer to each other in a loop: a -> b -> a",
        ),
        (
            BASE
            + "- rule: Pod made\n  exceptions:\n    - name: e\n"
            + "      fields: [ka.verb, ka.uri]\n      values:\n        - [create]\n"
            + "  override:\n    exceptions: append\n",
            20,
            "value 1 must be a list of 2",
        ),
        (
            rule_z("ka.uri bcontains zz"),
            20,
            "'bcontains' takes hexadecimal bytes",
        ),
        (
            rule_z("ka.uri regex '('"),
            20,
            "invalid regular expression",
        ),
    ],
)
def test_rule_file_errors_name_file_line_and_what(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(RuleError) as err:
        load_falco([str(path)])
    assert message in str(err.value)
    assert err.value.file == str(path)
    assert err.value.line == line, str(err.value)
    assert str(err.value).startswith(f"{path}:{line}")


def test_unreadable_rules_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read rules file"):
        load_falco([str(tmp_path / "absent.yaml")])


def test_unknown_items_and_unused_keys_are_notes_not_errors(tmp_path: Path) -> None:
    extra = """
    - thing: x
    - rule: Pod made
      output: changed
      desc: not applied
      override:
        output: replace
    """
    rules = load_falco([str(p) for p in rules_of(tmp_path, BASE, extra)])
    assert any("item with keys thing ignored" in n for n in rules.notes)
    assert any("'desc' ignored: it has no override entry" in n for n in rules.notes)
    pod = next(r for r in rules.rules if r.name == "Pod made")
    assert pod.desc == "a pod was created"


def test_legacy_append_extends_only_condition_and_exceptions(tmp_path: Path) -> None:
    append = """
    - rule: Namespace made
      condition: and ka.target.name=foo
      enabled: false
      output: ignored
      append: true
    """
    rules = load_falco([str(p) for p in rules_of(tmp_path, BASE, append)])
    assert sum("ignored: 'append: true' extends only" in n for n in rules.notes) == 2
    # still enabled, condition extended: the namespace foo still fires
    assert fired(tmp_path, NAMESPACE, BASE, append) == {"Namespace made": 1}


def test_skip_if_unknown_filter(tmp_path: Path) -> None:
    rule = rule_z("ka.no.such.field = x") + "  skip-if-unknown-filter: true\n"
    rules = load_falco([str(write(tmp_path, "r.yaml", rule))])
    assert [r.name for r in rules.rules] == ["Namespace made", "Pod made"]
    assert any("unknown field 'ka.no.such.field'" in n and "skipped" in n for n in rules.notes)


def test_every_yaml_document_of_a_file_is_read(tmp_path: Path) -> None:
    second = "---\n- list: users\n  items: [some-user]\n  append: true\n"
    assert fired(tmp_path, NAMESPACE, BASE + second) == {}


def test_exception_append_rules(tmp_path: Path) -> None:
    first = """
    - rule: Namespace made
      exceptions:
        - name: known
          fields: [ka.user.name]
          values: [[nobody]]
      override:
        exceptions: append
    """
    refields = """
    - rule: Namespace made
      exceptions:
        - name: known
          fields: [ka.target.name]
          values: [[foo]]
      override:
        exceptions: append
    """
    with pytest.raises(RuleError, match="append only 'values' to it"):
        load_falco([str(p) for p in rules_of(tmp_path, BASE, first, refields)])
    no_values = """
    - rule: Namespace made
      exceptions:
        - name: fresh
          fields: [ka.user.name]
      override:
        exceptions: append
    """
    with pytest.raises(RuleError, match="is added by append and needs 'values'"):
        load_falco([str(p) for p in rules_of(tmp_path, BASE, no_values)])


def test_tags_are_a_sorted_set(tmp_path: Path) -> None:
    tagged = BASE.replace("  priority: INFO\n", "  priority: INFO\n  tags: [zeta, alpha, zeta]\n")
    rules = load_falco([str(write(tmp_path, "r.yaml", tagged))])
    pod = next(r for r in rules.rules if r.name == "Pod made")
    assert pod.tags == ("alpha", "zeta")
