"""Label matchers, written as Alertmanager writes them: `name="value"`, `name!="value"`,
`name=~"regex"`, `name!~"regex"`.

The value may be unquoted when it holds no space, comma or quote (`severity=critical`); a
quoted value takes `\\"` and `\\\\` escapes. A regex matches the whole value (it is
anchored, as in Alertmanager). A label an alert does not have has the empty value, so
`team=""` matches alerts without a `team` label. Routes, inhibition rules and silences all
match with a list of these; a list matches when every matcher in it does.

A silence needs at least one matcher that does not match the empty string (Alertmanager's
`validateSilence`): `=` with an empty value and `=~` whose regex matches the empty string
match every alert without the label, so a silence of only those would mute nearly
everything. Negative matchers (`!=`, `!~`) do not count as matching the empty string, as in
Alertmanager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Matcher",
    "MatcherError",
    "matches",
    "parse_matcher",
    "parse_matchers",
    "parse_silence_matchers",
]

_LABEL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.S)


class MatcherError(ValueError):
    """A matcher that cannot be parsed; the message says what is wrong with it."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    regex: re.Pattern[str] | None = None

    def __call__(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self.regex is not None:
            hit = self.regex.fullmatch(have) is not None
            return hit if self.op == "=~" else not hit
        return (have == self.value) if self.op == "=" else (have != self.value)

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{_escape(self.value)}"'


def parse_matcher(text: str) -> Matcher:
    """One matcher; raises MatcherError saying what is wrong."""
    found = _LABEL.match(text)
    if found is None:
        raise MatcherError(
            f'\'{text}\' is not a matcher like name="value", name!="value", '
            'name=~"regex" or name!~"regex"'
        )
    name, op, raw = found.groups()
    value = _unquote(raw, text)
    regex = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise MatcherError(f"'{text}': bad regular expression: {exc}") from exc
    return Matcher(name, op, value, regex)


def parse_matchers(texts: Sequence[str]) -> list[Matcher]:
    return [parse_matcher(t) for t in texts]


def parse_silence_matchers(texts: Sequence[str]) -> list[Matcher]:
    """The matchers of a new silence; raises MatcherError for a bad one, for none, and when
    every one matches the empty string (the API and `logwarden alerts silence` both ask)."""
    matchers = parse_matchers(texts)
    if not matchers:
        raise MatcherError("give at least one matcher (a silence of everything is refused)")
    if all(_matches_empty(m) for m in matchers):
        raise MatcherError(
            "at least one matcher must not match the empty string, the value of a missing "
            "label (a silence of everything is refused)"
        )
    return matchers


def _matches_empty(matcher: Matcher) -> bool:
    """Whether a silence counts `matcher` as matching the empty string (Alertmanager's
    `matchesEmpty`: `=` and `=~` only)."""
    if matcher.op == "=":
        return matcher.value == ""
    if matcher.op == "=~" and matcher.regex is not None:
        return matcher.regex.fullmatch("") is not None
    return False


def matches(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """Every matcher matches (an empty list matches everything)."""
    return all(m(labels) for m in matchers)


def _unquote(raw: str, text: str) -> str:
    if not raw.startswith('"'):
        if any(c in raw for c in ' ,"{}'):
            raise MatcherError(f"'{text}': quote a value that holds spaces, commas or quotes")
        return raw
    if len(raw) < 2 or not raw.endswith('"'):
        raise MatcherError(f"'{text}': the value's closing quote is missing")
    out: list[str] = []
    chars = iter(raw[1:-1])
    for c in chars:
        if c == "\\":
            nxt = next(chars, "")
            if nxt not in ('"', "\\"):
                raise MatcherError(f"'{text}': only \\\" and \\\\ may be escaped in a value")
            out.append(nxt)
        elif c == '"':
            raise MatcherError(f"'{text}': a quote inside the value must be escaped as \\\"")
        else:
            out.append(c)
    return "".join(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
