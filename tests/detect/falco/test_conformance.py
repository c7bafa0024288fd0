"""Falco's own k8s-audit test suite, every case, against the rule files it names.

Two statements of the same 66 cases: the Python regression suite of Falco 0.34.1
(falco_k8s_audit_tests.yaml, as JSON) and its Go port in falcosecurity/testing. Each case
runs in both matching modes, `first` (Falco's default) and `all`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import FALCO, run_detect

_RULES_0341 = {
    "falco_rules.yaml(falco-rules-0.1.0)": (
        "falcosecurity-rules@falco-rules-0.1.0/rules/falco_rules.yaml"
    ),
    "k8s_audit_rules.yaml(k8saudit-0.5.0)": (
        "falcosecurity-plugins@k8saudit-0.5.0/plugins/k8saudit/rules/k8s_audit_rules.yaml"
    ),
}
_OVERRIDES_0341 = "falcosecurity-falco@0.34.1/test/rules/k8s_audit"
_TESTING_RULES = "falcosecurity-testing@HEAD/tests/data/rules/k8saudit_yaml"
_RULES_TESTING = {
    # The port runs the syscall rules of falco-rules 1.0.1 for their lists; the nearest
    # release in the fixtures is 0.1.0, whose falco_* image lists are the ones used.
    "LegacyFalcoRules_v1_0_1": "falcosecurity-rules@falco-rules-0.1.0/rules/falco_rules.yaml",
    # the rules installed with Falco today: the k8saudit plugin's current file
    "K8SAuditRules": "falcosecurity-plugins@HEAD/plugins/k8saudit/rules/k8s_audit_rules.yaml",
}


def _rules_0341(names: list[str]) -> list[Path]:
    return [FALCO / _RULES_0341.get(n, f"{_OVERRIDES_0341}/{n}") for n in names]


def _rules_testing(names: list[str]) -> list[Path]:
    out = []
    for n in names:
        if n in _RULES_TESTING:
            out.append(FALCO / _RULES_TESTING[n])
        else:
            (found,) = (FALCO / _TESTING_RULES).glob(f"{n}__*.yaml")
            out.append(found)
    return out


def _cases(name: str) -> list[dict]:
    return json.loads((FALCO / name).read_text())


CASES_0341 = _cases("expectations_falco-0.34.1_k8s_audit.json")
CASES_TESTING = _cases("expectations_falcosecurity-testing_k8saudit.json")
MODES = ["first", "all"]


def test_the_suites_are_complete() -> None:
    assert len(CASES_0341) == 66
    assert len(CASES_TESTING) == 66
    assert sum(c["detect"] for c in CASES_0341) == 45


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES_0341, ids=[c["test"] for c in CASES_0341])
def test_falco_0341_suite(case: dict, mode: str) -> None:
    run = run_detect([FALCO / case["trace"]], _rules_0341(case["rules"]), match=mode)
    counts = Counter(a.rule for a in run.alerts)
    if not case["detect"]:
        # the Python harness: no alert line at all
        assert run.alerts == [], [a.output for a in run.alerts]
    else:
        assert run.alerts, "expected at least one alert"
        for rule, n in case["detect_counts"].items():
            assert counts[rule] == n, (rule, dict(counts))
        level = case["detect_level"]
        assert any(a.priority.upper().startswith(level[:4]) for a in run.alerts), level
    stderr = case["other"].get("stderr_contains")
    if stderr:
        # Falco says "data not recognized as a k8s audit event"; logwarden reports the
        # same input as file:line with the reason, and counts it
        assert stderr == "data not recognized as a k8s audit event"
        assert run.rejects.count == 1
        (bad,) = run.rejects.first
        assert bad.where.endswith("fal_01_003.json:1")
        assert bad.reason.startswith("not a Kubernetes audit event")
        assert bad.raw == '{"kind": 0}'


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES_TESTING, ids=[c["test"] for c in CASES_TESTING])
def test_falcosecurity_testing_suite(case: dict, mode: str) -> None:
    run = run_detect([FALCO / case["trace"]], _rules_testing(case["rules"]), match=mode)
    counts = Counter(a.rule for a in run.alerts)
    total = case["total_detections"]
    if total == "nonzero":
        assert run.alerts
    elif total == "zero":
        assert not run.alerts, [a.rule for a in run.alerts]
    else:
        assert total == "unchecked"
    for check in case["priority"]:
        n = sum(1 for a in run.alerts if a.priority.upper().startswith(check["priority"][:4]))
        assert (n > 0) if check["check"] == "NotZero" else (n == 0), check
    for rule, n in case["rule_counts"].items():
        assert counts[rule] == n, (rule, dict(counts))
    if "stderr_regexp" in case:
        assert run.rejects.count == 1


def test_first_mode_raises_one_alert_per_event_and_all_mode_more() -> None:
    """The modes differ where an event matches several rules (Falco's rule_matching)."""
    rules = [FALCO / _RULES_TESTING["K8SAuditRules"]]
    trace = FALCO / "falcosecurity-falco@0.34.1/test/trace_files/k8s_audit"
    trace = trace / "create_configmap_sensitive_values.json"
    first = run_detect([trace], rules, match="first")
    every = run_detect([trace], rules, match="all")
    # each of the 6 events creates a ConfigMap holding credentials
    assert Counter(a.rule for a in first.alerts) == {
        "Create/Modify Configmap With Private Credentials": 6
    }
    assert Counter(a.rule for a in every.alerts) == {
        "Create/Modify Configmap With Private Credentials": 6,
        "K8s ConfigMap Created": 6,
    }
    # in load order within each event
    assert [a.rule for a in every.alerts[:2]] == [
        "Create/Modify Configmap With Private Credentials",
        "K8s ConfigMap Created",
    ]
