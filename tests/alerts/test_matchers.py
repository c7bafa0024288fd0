"""Matchers as Alertmanager writes them, and the ones a silence accepts."""

from __future__ import annotations

import pytest

from logwarden.alerts.matchers import MatcherError, parse_silence_matchers


@pytest.mark.parametrize(
    "matchers",
    [
        ['namespace="payments"'],
        ['team=""', 'namespace="payments"'],  # one that needs a value is enough
        ['alertname=~".+"'],
        ['severity!="none"'],  # negative matchers never count as matching "" (Alertmanager)
        ['severity!~"low|info"'],
    ],
)
def test_a_silence_takes_matchers_one_of_which_needs_a_value(matchers: list[str]) -> None:
    assert [str(m) for m in parse_silence_matchers(matchers)] == matchers


@pytest.mark.parametrize(
    ("matchers", "message"),
    [
        ([], "give at least one matcher"),
        (['alertname=~".*"'], "must not match the empty string"),
        (['team=""'], "must not match the empty string"),
        (['team=~".*"', 'x=""', 'y=~"a|"'], "must not match the empty string"),
        (["a~b"], "is not a matcher"),
    ],
)
def test_a_silence_of_everything_is_refused(matchers: list[str], message: str) -> None:
    with pytest.raises(MatcherError, match=message):
        parse_silence_matchers(matchers)
