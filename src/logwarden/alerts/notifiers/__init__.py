"""One module per alert destination, each a `Notifier`: a pure `render(notification)` and a
`send(payload, key)`; the outbox, retries, rate limits and metrics live once in
`alerts.delivery`. `build_notifier` makes the notifier a configured receiver describes;
the notifier modules are imported only when a receiver uses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from logwarden.alerts.notifiers.base import Notifier, SendError
from logwarden.config import receivers as rc
from logwarden.config.errors import ConfigError, Problem

__all__ = ["Notifier", "SendError", "build_notifier"]


def read_secret(path: str, field: str) -> str:
    """The secret in file `path` (surrounding whitespace removed); ConfigError naming the
    file and the `field` that set it when it cannot be read or is empty."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([Problem(f"cannot read {field}: {reason}", file=path)]) from exc
    if not text:
        raise ConfigError([Problem(f"{field} is empty", file=path)])
    return text


def build_notifier(config: rc.ReceiverConfig, *, stdout: BinaryIO | None = None) -> Notifier:
    """The notifier for one configured receiver, its secret files read. Raises ConfigError
    (naming the file) when a secret cannot be read or a setting is refused."""
    try:
        return _build(config, stdout)
    except ValueError as exc:
        raise ConfigError([Problem(str(exc))]) from exc


def _optional(path: str | None, field: str) -> str | None:
    return None if path is None else read_secret(path, field)


def _build(config: rc.ReceiverConfig, stdout: BinaryIO | None) -> Notifier:
    match config:
        case rc.StdoutReceiver():
            from logwarden.alerts.notifiers.stdout import StdoutNotifier

            return StdoutNotifier(stdout)
        case rc.FileReceiver():
            from logwarden.alerts.notifiers.file import FileNotifier

            return FileNotifier(config.path)
        case rc.WebhookReceiver():
            from logwarden.alerts.notifiers.webhook import WebhookNotifier

            return WebhookNotifier(
                config.url,
                secret=_optional(config.secret_file, "secret_file"),
                ca_file=config.ca_file,
                headers=config.headers,
                timeout_secs=config.timeout_secs,
            )
        case rc.AlertmanagerReceiver():
            from logwarden.alerts.notifiers.alertmanager import AlertmanagerNotifier

            return AlertmanagerNotifier(
                config.url,
                ca_file=config.ca_file,
                username=config.username,
                password=_optional(config.password_file, "password_file"),
                bearer_token=_optional(config.bearer_token_file, "bearer_token_file"),
                timeout_secs=config.timeout_secs,
            )
        case rc.PagerDutyReceiver():
            from logwarden.alerts.notifiers.pagerduty import PagerDutyNotifier

            return PagerDutyNotifier(
                read_secret(config.routing_key_file, "routing_key_file"),
                url=config.url,
                ca_file=config.ca_file,
                timeout_secs=config.timeout_secs,
            )
        case rc.SlackReceiver():
            from logwarden.alerts.notifiers.slack import SlackNotifier

            return SlackNotifier(
                read_secret(config.url_file, "url_file"),
                max_alerts=config.max_alerts,
                ca_file=config.ca_file,
                timeout_secs=config.timeout_secs,
            )
        case rc.CloudEventsReceiver():
            from logwarden.alerts.notifiers.cloudevents import CloudEventsNotifier

            return CloudEventsNotifier(
                config.url,
                source=config.source,
                mode=config.mode,
                ca_file=config.ca_file,
                headers=config.headers,
                timeout_secs=config.timeout_secs,
            )
        case rc.EmailReceiver():
            from logwarden.alerts.notifiers.email import EmailNotifier

            return EmailNotifier(
                config.host,
                from_address=config.from_address,
                to=config.to,
                port=config.port,
                tls=config.tls,
                username=config.username,
                password=_optional(config.password_file, "password_file"),
                ca_file=config.ca_file,
                html=config.html,
                timeout_secs=config.timeout_secs,
            )
