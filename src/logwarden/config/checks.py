"""The rules a config value follows beyond its type, attached to schema fields.

A field's type is annotated with at most one `Check`:
``Annotated[str, msgspec.Meta(description=...), HOST_PORT]``. msgspec ignores it; the
loader runs it on every value a file sets and reports ``expected <what>, got <value>``.
A check with `resolve` also marks a file path: the loader expands ``~`` and makes it
relative to the config file's directory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from logwarden.alerts.matchers import MatcherError, parse_matcher
from logwarden.records import parse_duration

__all__ = [
    "DURATION",
    "HEADER_NAME",
    "HEADER_VALUE",
    "HOST_PORT",
    "HTTPS_URL",
    "ID",
    "JSON_PATH",
    "MATCHER",
    "PATH",
    "RULE_SETS",
    "RULE_SPEC",
    "URL_PATH",
    "Check",
    "show",
]

#: The rule sets shipped with logwarden (`logwarden.detect.rulesets.BUILTIN`): a rule spec
#: that is one of these names stays a name; any other spec is a path.
RULE_SETS = ("builtin", "falco", "sigma")


@dataclass(frozen=True)
class Check:
    """`test(value)` is None when the value is good, else what was expected instead."""

    expected: str
    test: Callable[[Any], str | None]
    resolve: Literal["path", "rule"] | None = None

    def __call__(self, value: Any) -> str | None:
        wanted = self.test(value)
        return None if wanted is None else f"expected {wanted}, got {show(value)}"


#: The most characters of a string value a message quotes.
_SHOWN = 80


def show(value: Any) -> str:
    """A value as a message quotes it: strings in double quotes, YAML's words for the rest."""
    if isinstance(value, str):
        if len(value) > _SHOWN:
            return f"{json.dumps(value[:_SHOWN])}... ({len(value):,} characters)"
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{value!s} ({type(value).__name__})"


def _port(text: str) -> str | None:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        return "a port in 1-65535"
    return None


def _host_port(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port or any(c.isspace() for c in value):
        return "host:port"
    if host.startswith("[") != host.endswith("]") or ("[" not in host and ":" in host):
        return "host:port (an IPv6 host in brackets: [::1]:8443)"
    return _port(port)


def _https_url(value: str) -> str | None:
    if any(c.isspace() for c in value):
        return "an https:// URL without spaces"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "an https:// URL with a port in 1-65535"
    if parts.scheme != "https" or not parts.hostname:
        return "an https:// URL"
    if port is not None and not 1 <= port <= 65535:
        return "an https:// URL with a port in 1-65535"
    return None


def _url_path(value: str) -> str | None:
    if not value.startswith("/") or any(c.isspace() for c in value):
        return 'a URL path starting with "/"'
    return None


def _json_path(value: str) -> str | None:
    steps = value.split(".")
    if not all(steps) or any(c.isspace() for c in value):
        return "a path of dot-separated non-empty names (requestObject.spec.password)"
    return None


def _non_empty(value: str) -> str | None:
    return None if value else "a non-empty path"


def _rule_spec(value: str) -> str | None:
    if value:
        return None
    return f"a rule set name ({', '.join(RULE_SETS)}) or the path of a rules file or directory"


_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _id(value: str) -> str | None:
    if _ID.fullmatch(value):
        return None
    return "an id of letters, digits, '_', '.' and '-', starting with a letter or digit"


def _header_name(value: str) -> str | None:
    return None if _TOKEN.fullmatch(value) else "an HTTP header name"


def _header_value(value: str) -> str | None:
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        return "an HTTP header value without control characters"
    return None


HOST_PORT = Check("host:port", _host_port)
HTTPS_URL = Check("an https:// URL", _https_url)
URL_PATH = Check('a URL path starting with "/"', _url_path)
JSON_PATH = Check("a dot-separated path", _json_path)
PATH = Check("a path", _non_empty, resolve="path")
RULE_SPEC = Check("a rule set name or path", _rule_spec, resolve="rule")
ID = Check("an id", _id)
HEADER_NAME = Check("an HTTP header name", _header_name)
HEADER_VALUE = Check("an HTTP header value", _header_value)


def _duration(value: str) -> str | None:
    try:
        parse_duration(value)
    except ValueError:
        return "a duration like 30s, 5m, 4h or 1h30m"
    return None


def _matcher(value: str) -> str | None:
    try:
        parse_matcher(value)
    except MatcherError as exc:
        if isinstance(exc.__cause__, re.error):
            return f"a matcher with a valid regular expression ({exc.__cause__})"
        return 'a label matcher: name="value", name!="value", name=~"regex" or name!~"regex"'
    return None


DURATION = Check("a duration", _duration)
MATCHER = Check("a label matcher", _matcher)
