"""Sigma matching semantics, each on real-format events."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import run_detect
from detect.sigma.events import edit, trace, write_events
from logwarden.detect.rulesets import load_rules
from logwarden.errors import RuleError

EXEC = trace("exec_pod.json")  # minikube-user execs bash in nginx-deployment-7998647bdf-phvq7


def matches(tmp_path: Path, detection: str, *events: dict[str, Any]) -> list[bool]:
    """Which events a rule with this detection block matches."""
    rule = tmp_path / "rule.yml"
    rule.write_text(
        "title: T\nlogsource: {product: kubernetes, service: audit}\ndetection:\n"
        + textwrap.indent(textwrap.dedent(detection), "    ")
    )
    out = []
    for i, event in enumerate(events):
        path = write_events(tmp_path / f"e{i}.jsonl", [event])
        out.append(bool(run_detect([path], [rule], match="all").alerts))
    return out


def test_strings_compare_case_insensitively(tmp_path: Path) -> None:
    det = "sel: {user.username: MINIKUBE-User}\ncondition: sel\n"
    assert matches(tmp_path, det, EXEC, edit(EXEC, user__username="minikube")) == [True, False]


def test_cased_compares_exactly(tmp_path: Path) -> None:
    det = "sel: {user.username|cased: MINIKUBE-User}\ncondition: sel\n"
    assert matches(tmp_path, det, EXEC, edit(EXEC, user__username="MINIKUBE-User")) == [False, True]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("nginx-*", True),
        ("*-phvq7", True),
        ("*deployment*", True),
        ("nginx-deployment-7998647bdf-phvq?", True),
        ("nginx-?eployment*", True),
        ("nginx-deployment", False),
        ("*", True),
        ("ngin\\*", False),  # an escaped * is a literal asterisk
    ],
)
def test_wildcards(tmp_path: Path, value: str, expected: bool) -> None:
    det = f"sel:\n    objectRef.name: '{value}'\ncondition: sel\n"
    assert matches(tmp_path, det, EXEC) == [expected]


def test_escaped_wildcard_matches_a_literal_asterisk(tmp_path: Path) -> None:
    det = "sel:\n    objectRef.name: 'a\\*b'\ncondition: sel\n"
    assert matches(
        tmp_path, det, edit(EXEC, objectRef__name="a*b"), edit(EXEC, objectRef__name="axb")
    ) == [True, False]


def test_contains_startswith_endswith_and_all(tmp_path: Path) -> None:
    det = """
    sel:
        requestURI|contains|all:
            - command=bash
            - stdin=true
        objectRef.name|startswith: NGINX
        objectRef.namespace|endswith: ULT
    condition: sel
    """
    assert matches(tmp_path, det, EXEC, edit(EXEC, requestURI="/x?command=bash")) == [True, False]


def test_lists_fan_out_as_or(tmp_path: Path) -> None:
    det = "sel:\n    verb: [get, create]\ncondition: sel\n"
    assert matches(tmp_path, det, EXEC, edit(EXEC, verb="delete")) == [True, False]


def test_regular_expressions_search_with_flags(tmp_path: Path) -> None:
    assert matches(tmp_path, "sel: {requestURI|re: 'command=ba.h'}\ncondition: sel\n", EXEC) == [
        True
    ]
    assert matches(tmp_path, "sel: {requestURI|re: 'COMMAND=BASH'}\ncondition: sel\n", EXEC) == [
        False
    ]
    assert matches(tmp_path, "sel: {requestURI|re|i: 'COMMAND=BASH'}\ncondition: sel\n", EXEC) == [
        True
    ]
    multi = edit(EXEC, userAgent="a\nkubectl/v1")
    assert matches(tmp_path, "sel: {userAgent|re: '^kubectl'}\ncondition: sel\n", multi) == [False]
    assert matches(tmp_path, "sel: {userAgent|re|m: '^kubectl'}\ncondition: sel\n", multi) == [True]
    assert matches(tmp_path, "sel: {userAgent|re: 'a.kubectl'}\ncondition: sel\n", multi) == [False]
    assert matches(tmp_path, "sel: {userAgent|re|s: 'a.kubectl'}\ncondition: sel\n", multi) == [
        True
    ]


def test_cidr(tmp_path: Path) -> None:
    det = "sel: {sourceIPs|cidr: 192.168.0.0/16}\ncondition: sel\n"
    other = edit(EXEC, sourceIPs=["10.0.0.1", "not-an-ip"])
    assert matches(tmp_path, det, EXEC, other) == [True, False]


def test_sourceips_last_is_the_peer_not_a_forwarded_address(tmp_path: Path) -> None:
    spoofed = edit(EXEC, sourceIPs=["198.51.100.9", "203.0.113.7"])
    alone = edit(EXEC, sourceIPs=["203.0.113.7"])
    none = edit(EXEC, sourceIPs=[])
    det = "sel: {sourceIPs.last: 203.0.113.7}\ncondition: sel\n"
    assert matches(tmp_path, det, spoofed, alone, none) == [True, True, False]
    det = "sel: {sourceIPs.last: 198.51.100.9}\ncondition: sel\n"
    assert matches(tmp_path, det, spoofed, alone, none) == [False, False, False]


def test_numeric_comparisons(tmp_path: Path) -> None:
    for mod, expected in [
        ("gt: 100", True),
        ("gte: 101", True),
        ("lt: 101", False),
        ("lte: 101", True),
    ]:
        op, number = mod.split(": ")
        det = f"sel: {{responseStatus.code|{op}: {number}}}\ncondition: sel\n"
        assert matches(tmp_path, det, EXEC) == [expected], mod
    det = "sel: {responseStatus.code: 101}\ncondition: sel\n"
    assert matches(tmp_path, det, EXEC) == [True]


def test_numbers_compare_as_numbers(tmp_path: Path) -> None:
    det = "sel: {requestObject.n: 1.0}\ncondition: sel\n"
    values: list[Any] = [1, 1.0, "1", "1.00", 2, "one"]
    events = [edit(EXEC, requestObject={"n": v}) for v in values]
    assert matches(tmp_path, det, *events) == [True, True, True, True, False, False]


def test_only_json_numbers_are_numbers(tmp_path: Path) -> None:
    det = "sel: {objectRef.name|gt: 5}\ncondition: sel\n"
    names = ["7", "6.5e0", "-7", "1_000", "infinity", "nan", " 7 ", "-inf", "0x10"]
    events = [edit(EXEC, objectRef__name=n) for n in names]
    assert matches(tmp_path, det, *events) == [True, True, False] + [False] * 6


def test_a_list_of_codes_and_decisions_keeps_the_codes(tmp_path: Path) -> None:
    # SigmaHQ writes the authorizer's decision as `responseStatus.code: ALLOW`, which the
    # field mapping reads from the annotation; a list with a number in it is about codes
    det = "sel: {responseStatus.code: [101, allow]}\ncondition: sel\n"
    forbid = edit(EXEC, annotations={"authorization.k8s.io/decision": "forbid"})
    assert matches(tmp_path, det, forbid) == [True]
    det = "sel: {responseStatus.code: ALLOW}\ncondition: sel\n"
    allow = edit(EXEC, annotations={"authorization.k8s.io/decision": "allow"})
    assert matches(tmp_path, det, allow, forbid) == [True, False]


@pytest.mark.parametrize(
    ("modifier", "number", "expected"),
    [
        ("minute", 38, True),
        ("hour", 13, True),
        ("hour", 14, False),
        ("day", 26, True),
        ("week", 43, True),
        ("month", 10, True),
        ("year", 2018, True),
        ("year", 2019, False),
    ],
)
def test_time_modifiers_read_a_part_of_the_time(
    tmp_path: Path, modifier: str, number: int, expected: bool
) -> None:
    # EXEC's stageTimestamp is 2018-10-26T13:38:34.902914Z (a Friday of ISO week 43)
    det = f"sel: {{stageTimestamp|{modifier}: {number}}}\ncondition: sel\n"
    assert matches(tmp_path, det, EXEC) == [expected]
    # a value that is not a time has no hour
    det = "sel: {objectRef.name|hour: 13}\ncondition: sel\n"
    assert matches(tmp_path, det, edit(EXEC, objectRef__name="13")) == [False]


def test_exists_and_null(tmp_path: Path) -> None:
    no_agent = edit(EXEC, userAgent=None)
    assert matches(tmp_path, "sel: {userAgent|exists: true}\ncondition: sel\n", EXEC, no_agent) == [
        False,
        False,
    ]
    with_agent = edit(EXEC, userAgent="kubectl")
    assert matches(
        tmp_path, "sel: {userAgent|exists: true}\ncondition: sel\n", with_agent, no_agent
    ) == [True, False]
    assert matches(
        tmp_path, "sel: {userAgent|exists: false}\ncondition: sel\n", with_agent, no_agent
    ) == [False, True]
    assert matches(tmp_path, "sel: {userAgent: null}\ncondition: sel\n", with_agent, no_agent) == [
        False,
        True,
    ]
    # a JSON null is null too
    nulled = edit(EXEC, requestObject={"spec": {"nodeName": None}})
    det = "sel: {requestObject.spec.nodeName: null}\ncondition: sel\n"
    assert matches(tmp_path, det, nulled) == [True]


def test_exists_is_presence_whatever_the_value(tmp_path: Path) -> None:
    # "only verifies the presence of a field, not its value, be it empty or null": in the
    # request and response bodies and annotations (the apiserver's own members it leaves
    # out when empty, never null)
    empty = edit(EXEC, requestObject={"kind": None, "items": []})
    absent = edit(EXEC, requestObject={"spec": {}})
    det = "sel: {requestObject.kind|exists: true}\ncondition: sel\n"
    assert matches(tmp_path, det, empty, absent) == [True, False]
    det = "sel: {requestObject.kind|exists: false}\ncondition: sel\n"
    assert matches(tmp_path, det, empty, absent) == [False, True]
    det = "sel: {requestObject.items|exists: true}\ncondition: sel\n"
    assert matches(tmp_path, det, empty, absent) == [True, False]
    det = "sel: {/annotations/authorization.k8s.io~1reason|exists: true}\ncondition: sel\n"
    null_reason = edit(EXEC, annotations={"authorization.k8s.io/reason": None})
    assert matches(tmp_path, det, null_reason, edit(EXEC, annotations={})) == [True, False]


def test_base64_and_base64offset(tmp_path: Path) -> None:
    secret = base64.b64encode(b"xxsecretyy").decode()
    event = edit(EXEC, userAgent=secret)
    assert matches(
        tmp_path, "sel: {userAgent|base64offset|contains: secret}\ncondition: sel\n", event
    ) == [True]
    plain = edit(EXEC, userAgent=base64.b64encode(b"secret").decode())
    assert matches(tmp_path, "sel: {userAgent|base64: secret}\ncondition: sel\n", plain, event) == [
        True,
        False,
    ]


def test_windash(tmp_path: Path) -> None:
    det = "sel: {requestURI|windash|contains: ' -force'}\ncondition: sel\n"
    dashed = edit(EXEC, requestURI="/x? /force")
    assert matches(tmp_path, det, dashed, edit(EXEC, requestURI="/x? -force"), EXEC) == [
        True,
        True,
        False,
    ]


def test_fieldref(tmp_path: Path) -> None:
    det = "sel: {objectRef.name|fieldref: user.username}\ncondition: sel\n"
    same = edit(EXEC, objectRef__name="minikube-user")
    assert matches(tmp_path, det, same, EXEC) == [True, False]


def test_arrays_match_when_any_element_does(tmp_path: Path) -> None:
    pod = trace("create_nginx_pod_privileged_2nd_container.json")
    det = (
        "sel: {requestObject.spec.containers.securityContext.privileged: 'true'}\ncondition: sel\n"
    )
    assert matches(tmp_path, det, pod, trace("create_nginx_pod_unprivileged.json")) == [True, False]


def test_keywords_search_the_whole_event(tmp_path: Path) -> None:
    det = "keywords:\n    - 'PHVQ7/exec'\ncondition: keywords\n"
    assert matches(tmp_path, det, EXEC, trace("attach_pod.json")) == [True, False]


def test_keywords_search_values_as_they_are_not_json_text(tmp_path: Path) -> None:
    # the apiserver's encoder writes & as \u0026; a backslash is escaped in JSON
    uri = edit(EXEC, requestURI="/api/v1/pods?limit=500&watch=true")
    path = tmp_path / "escaped.jsonl"
    path.write_text(json.dumps(uri).replace("&", "\\u0026") + "\n")
    assert "\\u0026" in path.read_text()
    rule = tmp_path / "kw.yml"
    rule.write_text(
        "title: T\nlogsource: {product: kubernetes, service: audit}\n"
        "detection:\n    keywords: ['limit=500&watch']\n    condition: keywords\n"
    )
    assert run_detect([path], [rule], match="all").alerts
    windows = edit(EXEC, objectRef__name="C:\\Windows")
    det = "keywords:\n    - 'C:\\Windows'\ncondition: keywords\n"
    assert matches(tmp_path, det, windows, EXEC) == [True, False]
    # member names and JSON syntax are not the event's values
    for keyword in ["requestURI", '\'"verb":"create"\'', "101"]:
        det = f"keywords:\n    - {keyword}\ncondition: keywords\n"
        assert matches(tmp_path, det, EXEC) == [keyword == "101"], keyword


def test_conditions_and_or_not_and_of_them(tmp_path: Path) -> None:
    det = """
    sel_exec: {objectRef.subresource: exec}
    sel_attach: {objectRef.subresource: attach}
    filter: {user.username: admin}
    condition: 1 of sel_* and not filter
    """
    assert matches(
        tmp_path, det, EXEC, trace("attach_pod.json"), edit(EXEC, user__username="admin")
    ) == [True, True, False]
    det_all = "sel_a: {verb: create}\nsel_b: {objectRef.resource: pods}\ncondition: all of sel_*\n"
    assert matches(tmp_path, det_all, EXEC, edit(EXEC, verb="get")) == [True, False]


def test_json_pointers_reach_keys_with_dots(tmp_path: Path) -> None:
    det = "sel: {/annotations/authorization.k8s.io~1decision: allow}\ncondition: sel\n"
    assert matches(
        tmp_path, det, EXEC, edit(EXEC, annotations={"authorization.k8s.io/decision": "forbid"})
    ) == [True, False]


HEAD = "title: T\nlogsource: {product: kubernetes, service: audit}\ndetection:\n"


@pytest.mark.parametrize(
    ("detection", "message"),
    [
        ("  sel: {verb|nope: x}\n  condition: sel\n", "Unknown modifier 'nope'"),
        ("  sel: {verb: x}\n  condition: sel and other\n", "not defined"),
        ("  sel: {verb|re: '('}\n  condition: sel\n", "(?i)regular expression"),
    ],
)
def test_rule_errors_name_the_file_and_rule(tmp_path: Path, detection: str, message: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(HEAD + detection)
    with pytest.raises(RuleError, match=message) as err:
        load_rules([str(path)])
    assert str(err.value).startswith(f"{path}:1: ")


def test_rules_of_logsources_logwarden_does_not_read_are_skipped_with_a_note(
    tmp_path: Path,
) -> None:
    path = tmp_path / "win.yml"
    path.write_text(
        HEAD.replace("kubernetes, service: audit", "windows, service: security")
        + "  sel: {EventID: 4624}\n  condition: sel\n"
    )
    rules = load_rules([str(path)])
    assert rules.rules == []
    assert any("is not one logwarden reads" in n for n in rules.notes)


def test_alert_text_is_the_title_and_the_fields(tmp_path: Path) -> None:
    # the title is text, whatever it holds: braces, quotes and backslashes are not code
    title = "Exec {x} 'q' \"qq\" \\n \\"
    rule = tmp_path / "rule.yml"
    rule.write_text(
        f"title: {json.dumps(title)}\nauthor: Jane Doe (@jd)\n"
        "logsource: {product: kubernetes, service: audit}\n"
        "detection:\n    sel: {verb: create}\n    condition: sel\n"
        "fields: [user.username, objectRef.name]\n"
    )
    path = write_events(tmp_path / "e.jsonl", [EXEC])
    (alert,) = run_detect([path], [rule]).alerts
    assert alert.output == (
        f"{title} (user.username=minikube-user objectRef.name=nginx-deployment-7998647bdf-phvq7"
        " objectRef.namespace=default)"
    )
    assert alert.author == "Jane Doe (@jd)"  # the DRL asks for credit wherever matches show
