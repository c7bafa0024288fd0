"""Notifications posted to a Slack incoming webhook as a Block Kit message.

The message: a `header` (the title, ``[FIRING:3] <group>``), one `section` per alert (its
summary and facts) up to `max_alerts`, then a section ``and N more``, and a `context`
with the counts (firing, acknowledged, resolved), the route and a link to logwarden when
it has an `external_url`; `text` is the title and counts, for notifications and clients
that do not show blocks. Alert text comes from events, so whatever Slack would parse in
it is escaped: `&`, `<` and `>` in every mrkdwn text, the top-level `text` included (it is
mrkdwn too: an unescaped ``<!channel>`` there notifies the whole channel), and mrkdwn
texts are `verbatim` (no automatic links or mentions). Slack has no idempotency key: a
retried message may show twice.
Slack's 429 carries `Retry-After`, which the send error passes on. The webhook URL holds
the token, so messages show only its host.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from logwarden.alerts.model import AlertState, Notification
from logwarden.alerts.notifiers._http import HttpPost
from logwarden.alerts.notifiers._text import clip, counts, facts, summary, title

__all__ = ["SlackNotifier"]

_HEADER_CHARS = 150
_SECTION_CHARS = 3000
_encode = msgspec.json.Encoder().encode


def _escape(text: str) -> str:
    """Slack's mrkdwn escapes: &, < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(alert: AlertState) -> dict[str, Any]:
    lines = [f"*{_escape(summary(alert))}*"]
    lines += [f"{name}: `{_escape(value)}`" for name, value in facts(alert)]
    text = clip("\n".join(lines), _SECTION_CHARS)
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object Slack does not parse further (URLs, names and mentions stay
    text; only our own `<...>` links are links)."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


class SlackNotifier:
    kind: ClassVar[str] = "slack"
    joins: ClassVar[bool] = False
    per_alert: ClassVar[bool] = False
    local: ClassVar[bool] = False

    def __init__(
        self,
        url: str,
        *,
        max_alerts: int = 10,
        ca_file: str | None = None,
        timeout_secs: float = 10.0,
    ) -> None:
        """`url` is the incoming webhook's (a secret); `max_alerts` (1-45) alerts get a
        section each, within Slack's 50 blocks."""
        if not 1 <= max_alerts <= 45:
            raise ValueError(f"slack: max_alerts must be 1-45, not {max_alerts}")
        self._max_alerts = max_alerts
        self._http = HttpPost(
            url,
            ca_file=ca_file,
            headers={"Content-Type": "application/json"},
            timeout_secs=timeout_secs,
            secret_url=True,
        )

    def render(self, notification: Notification) -> bytes:
        head = title(notification)
        tally = ", ".join(f"{n} {status}" for status, n in counts(notification).items() if n)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": clip(head, _HEADER_CHARS)}}
        ]
        blocks += [_section(a) for a in notification.alerts[: self._max_alerts]]
        more = len(notification.alerts) - self._max_alerts
        if more > 0:
            blocks.append({"type": "section", "text": _mrkdwn(f"and {more} more")})
        context = [tally, f"route `{_escape(notification.route)}`"]
        if notification.external_url:
            context.append(f"<{notification.external_url}|logwarden>")
        blocks.append({"type": "context", "elements": [_mrkdwn(" · ".join(context))]})
        return _encode({"text": f"{_escape(head)} ({tally})", "blocks": blocks})

    def send(self, payload: bytes, key: str) -> None:
        self._http.post(payload)

    def close(self) -> None:
        self._http.close()
