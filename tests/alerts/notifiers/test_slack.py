"""The Slack notifier against a local HTTPS server playing an incoming webhook."""

from __future__ import annotations

from typing import Any

import pytest

from logwarden.alerts.notifiers.base import SendError
from logwarden.alerts.notifiers.slack import SlackNotifier

from .notifier_helpers import Answer, LocalReceiver, alert_state, notification


def test_429_passes_retry_after_on_then_the_block_kit_message_arrives(
    https_receiver: LocalReceiver,
) -> None:
    slack = SlackNotifier(
        https_receiver.url + "/services/T0/B0/secret-token", ca_file=https_receiver.ca
    )
    alerts = [alert_state(f"f{i}") for i in range(11)]
    alerts.append(alert_state("fr", status="resolved"))
    sent = notification(*alerts)
    payload = slack.render(sent)
    https_receiver.answers = [Answer(429, b"rate_limited", {"Retry-After": "2"})]
    with pytest.raises(SendError) as caught:
        slack.send(payload, sent.id)
    assert caught.value.retry and caught.value.retry_after_secs == 2
    assert "secret-token" not in str(caught.value)
    https_receiver.answers = [Answer(200, b"ok")]
    slack.send(payload, sent.id)
    slack.close()

    message = https_receiver.seen[-1].json()
    assert https_receiver.seen[-1].path == "/services/T0/B0/secret-token"
    assert message["text"] == "[FIRING:11] Exec into pod (11 firing, 1 resolved)"
    blocks = message["blocks"]
    assert [b["type"] for b in blocks] == ["header"] + ["section"] * 11 + ["context"]
    assert blocks[0]["text"] == {"type": "plain_text", "text": "[FIRING:11] Exec into pod"}
    first = blocks[1]["text"]
    assert first["type"] == "mrkdwn"
    assert first["text"].startswith("*Exec into pod: alice ran a shell in prod/web-0*\n")
    assert "fingerprint: `f0`" in first["text"]
    assert blocks[11]["text"]["text"] == "and 2 more"
    context = blocks[12]["elements"][0]["text"]
    assert "11 firing, 1 resolved" in context
    assert "<https://logwarden.example/alerts|logwarden>" in context


def test_text_is_escaped_and_a_resolved_group_is_titled_so() -> None:
    slack = SlackNotifier("https://hooks.slack.example/services/x")
    resolved = alert_state(status="resolved")
    resolved.annotations["summary"] = "<!channel> & friends"
    message = slack.render(notification(resolved))
    assert b"&lt;!channel&gt; &amp; friends" in message
    assert b'"text":"[RESOLVED] Exec into pod' in message


def test_a_404_is_not_retried(https_receiver: LocalReceiver) -> None:
    slack = SlackNotifier(https_receiver.url + "/services/gone", ca_file=https_receiver.ca)
    https_receiver.answers = [Answer(404, b"no_service")]
    with pytest.raises(SendError, match="no_service") as caught:
        slack.send(slack.render(notification()), "n-1")
    assert not caught.value.retry


def mrkdwn_texts(message: dict[str, Any]) -> list[str]:
    """Every text Slack parses as mrkdwn: the top-level `text` and the mrkdwn objects."""
    found = [message["text"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                assert node.get("verbatim") is True, node
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message["blocks"])
    return found


def test_event_text_cannot_mention_or_link_anywhere_in_the_message(
    https_receiver: LocalReceiver,
) -> None:
    slack = SlackNotifier(https_receiver.url + "/services/T0/B0/t", ca_file=https_receiver.ca)
    evil = "<!channel> <https://evil.example|open me> & <@U024BE7LH>"
    alert = alert_state(user=evil)
    alert.annotations["summary"] = evil
    sent = notification(alert, group_labels={"user": evil})
    slack.send(slack.render(sent), sent.id)
    slack.close()
    message = https_receiver.seen[0].json()
    texts = mrkdwn_texts(message)
    assert message["text"].startswith("[FIRING:1] &lt;!channel&gt; &lt;https://evil.example|")
    for text in texts:
        assert "<!" not in text and "<@" not in text and "<https://evil" not in text, text
    # the one link left is logwarden's own
    assert [t.count("<") for t in texts] == [0, 0, 1]
