"""Falco output strings: placeholders, widths, missing values, lists."""

from __future__ import annotations

import pytest

from conftest import TRACES
from logwarden.detect.falco.fields import catalog
from logwarden.detect.falco.output import compile_output
from logwarden.errors import RuleError
from logwarden.normalize import k8s_audit
from logwarden.records import Record


def render(text: str, trace: str = "exec_pod.json") -> tuple[str, dict]:
    raw = (TRACES / trace).read_bytes().splitlines()[0]
    view = k8s_audit.decode(raw)
    record = Record("k8s_audit", "t", 1, 1, 0, k8s_audit.event_time_ns(view), raw, view)
    return compile_output(text, catalog())(record)


def test_placeholders_and_values() -> None:
    text, fields = render(
        "exec by %ka.user.name in %ka.target.namespace (cmd=%ka.uri.param[command])"
    )
    assert text == "exec by minikube-user in default (cmd=bash)"
    assert fields == {
        "ka.user.name": "minikube-user",
        "ka.target.namespace": "default",
        "ka.uri.param[command]": "bash",
    }


def test_missing_values_and_lists() -> None:
    text, fields = render("%ka.req.binding.role %ka.user.groups")
    assert text == "<NA> (system:masters,system:authenticated)"
    assert fields["ka.req.binding.role"] is None


def test_longest_known_field_name_wins() -> None:
    assert render("%ka.user.names")[0] == "minikube-users"
    assert render("%ka.target.name/%ka.target.resource.")[0] == (
        "nginx-deployment-7998647bdf-phvq7/pods."
    )


def test_width_pads_or_cuts() -> None:
    assert render("[%10ka.verb]")[0] == "[create    ]"
    assert render("[%3ka.user.name]")[0] == "[min]"


def test_literal_text_is_kept_exactly() -> None:
    # braces, quotes, backslashes and newlines are text, not code, in the generated renderer
    literal = "{x} {{ }} 'q' \"qq\" \\n \\ {!r} tab\tnew\nline: "
    assert render(literal + "%ka.verb")[0] == literal + "create"
    assert render("%ka.verb" + literal)[0] == "create" + literal


def test_leading_star_is_dropped() -> None:
    assert render("*exec by %ka.user.name")[0] == "exec by minikube-user"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("100% sure", "invalid formatting token '% sure'"),
        ("ends with %", "cannot end with a %"),
        ("ends with %12", "cannot end with a number"),
        ("%ka.nope", "invalid formatting token '%ka.nope'"),
    ],
)
def test_bad_placeholders_are_rule_errors(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        render(text)
