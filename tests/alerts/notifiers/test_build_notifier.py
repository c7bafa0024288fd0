"""`build_notifier`: each receiver config becomes its notifier, secrets read from files;
and the receiver structs as the config validator checks them."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest

from logwarden.alerts.notifiers import build_notifier
from logwarden.config import receivers as rc
from logwarden.config._types import spec
from logwarden.config._validate import Validator
from logwarden.config.errors import ConfigError


def checked(data: dict[str, Any]) -> tuple[Any, list[str]]:
    """The receiver `data` describes, and every problem the validator finds in it."""
    validator = Validator()
    obj = validator.value(spec(rc.ReceiverConfig), data, ("receivers", "r"))
    return obj, [str(p) for p in validator.problems]


def secret(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text + "\n")
    return str(path)


def test_every_type_builds_its_notifier(tmp_path: Path) -> None:
    whsec = "whsec_" + base64.b64encode(b"k" * 24).decode()
    configs: list[dict[str, Any]] = [
        {"type": "stdout"},
        {"type": "file", "path": str(tmp_path / "alerts.jsonl")},
        {
            "type": "webhook",
            "url": "https://h.example/x",
            "secret_file": secret(tmp_path, "w", whsec),
        },
        {
            "type": "alertmanager",
            "url": "http://am:9093",
            "bearer_token_file": secret(tmp_path, "t", "tok"),
        },
        {"type": "pagerduty", "routing_key_file": secret(tmp_path, "pd", "R0123")},
        {"type": "slack", "url_file": secret(tmp_path, "s", "https://hooks.slack.com/services/x")},
        {"type": "cloudevents", "url": "https://ce.example/", "mode": "binary"},
        {
            "type": "email",
            "host": "smtp.example",
            "from_address": "alerts@example.org",
            "to": ["oncall@example.org"],
            "username": "alerts",
            "password_file": secret(tmp_path, "pw", "hunter2"),
        },
    ]
    for data in configs:
        config, problems = checked(data)
        assert problems == [], problems
        notifier = build_notifier(config, stdout=io.BytesIO())
        assert notifier.kind == data["type"]
        notifier.close()


def test_a_missing_or_empty_secret_file_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.key")
    with pytest.raises(ConfigError, match=f"{missing}: cannot read routing_key_file: No such"):
        build_notifier(rc.PagerDutyReceiver(routing_key_file=missing))
    empty = secret(tmp_path, "empty", "  ")
    with pytest.raises(ConfigError, match="empty: url_file is empty"):
        build_notifier(rc.SlackReceiver(url_file=empty))
    plain = secret(tmp_path, "plain", "http://hooks.slack.com/services/T0/B0/token")
    with pytest.raises(ConfigError, match="https://HOST") as caught:
        build_notifier(rc.SlackReceiver(url_file=plain))
    assert "token" not in str(caught.value)


def test_the_validator_reports_bad_receivers_with_their_paths() -> None:
    _, problems = checked({"type": "webhook", "url": "http://h.example/x", "timeout_secs": 0})
    assert any("receivers.r.url: expected an https:// URL" in p for p in problems)
    assert any("receivers.r.timeout_secs" in p for p in problems)
    _, problems = checked({"type": "alertmanager", "url": "ftp://am"})
    assert problems == ['receivers.r.url: expected an http:// or https:// URL, got "ftp://am"']
    _, problems = checked({"type": "alertmanager", "url": "http://am", "username": "u"})
    assert problems == ["receivers.r.username: set password_file too (basic auth needs both)"]
    _, problems = checked(
        {
            "type": "email",
            "host": "h",
            "from_address": "a@b.c",
            "to": ["d@e.f"],
            "tls": "none",
            "username": "u",
            "password_file": "/p",
        }
    )
    assert problems == [
        "receivers.r.tls: a password is not sent unencrypted: use starttls or smtps"
    ]
    _, problems = checked(
        {"type": "email", "host": "h", "from_address": "a@b.c", "to": ["d@e.f"], "port": 0}
    )
    assert problems == ["receivers.r.port: expected a port in 1-65535, got 0"]
    _, problems = checked({"type": "pager"})
    assert problems and "one of" in problems[0] and '"pagerduty"' in problems[0]
    config, _ = checked({"type": "stdout"})
    assert (config.rate_limit_per_sec, config.burst) == (0.0, 10)
