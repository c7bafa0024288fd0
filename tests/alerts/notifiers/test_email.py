"""The email notifier against a local aiosmtpd server requiring STARTTLS and AUTH."""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from logwarden.alerts.notifiers.base import SendError
from logwarden.alerts.notifiers.email import EmailNotifier, message_id
from logwarden.generate.pki import ensure_service_pki

from .notifier_helpers import alert_state, free_port, notification


@dataclass
class Inbox:
    """The messages the server took, with who sent them to whom."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alerts", b"s3cret")
    return AuthResult(success=good, handled=False)


@dataclass
class Smtp:
    port: int
    ca: str
    inbox: Inbox


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[Smtp]:
    pki = ensure_service_pki(tmp_path / "pki", ["127.0.0.1"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield Smtp(controller.port, str(pki.ca), inbox)
    finally:
        controller.stop()


def notifier(smtp: Smtp, password: str = "s3cret", **options: Any) -> EmailNotifier:
    return EmailNotifier(
        "127.0.0.1",
        port=smtp.port,
        from_address="logwarden <alerts@example.org>",
        to=["oncall@example.org", "security@example.org"],
        username="alerts",
        password=password,
        ca_file=smtp.ca,
        **options,
    )


def test_a_message_arrives_over_starttls_with_auth(smtp_server: Smtp) -> None:
    mail = notifier(smtp_server, html=True)
    sent = notification(alert_state("f1"), alert_state("f2"), alert_state("f3"), id="n-77")
    payload = mail.render(sent)
    assert payload == mail.render(sent)
    mail.send(payload, sent.id)
    [(sender, rcpts, message)] = smtp_server.inbox.messages
    assert sender == "alerts@example.org"
    assert rcpts == ["oncall@example.org", "security@example.org"]
    assert message["Subject"] == "[FIRING:3] Exec into pod"
    assert message["To"] == "oncall@example.org, security@example.org"
    assert message["Message-ID"] == "<n-77@example.org>"
    assert message["Auto-Submitted"] == "auto-generated"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    text = plain.get_content()
    assert text.count("Exec into pod: alice ran a shell in prod/web-0") == 3
    assert "fingerprint: f2" in text and "namespace: prod" in text
    assert "https://logwarden.example/alerts" in text
    assert "<b>Exec into pod: alice ran a shell in prod/web-0</b>" in html.get_content()


def test_the_message_id_follows_the_key() -> None:
    assert message_id("n-1.a", "example.org") == "<n-1.a@example.org>"
    odd = message_id("route/group key@x", "example.org")
    assert odd == message_id("route/group key@x", "example.org")
    assert odd.startswith("<") and " " not in odd and odd.count("@") == 1


def test_a_wrong_password_is_not_retried(smtp_server: Smtp) -> None:
    mail = notifier(smtp_server, password="wrong")
    with pytest.raises(SendError, match="535") as caught:
        mail.send(mail.render(notification()), "n-1")
    assert not caught.value.retry
    assert smtp_server.inbox.messages == []


def test_a_server_that_is_down_is_retried() -> None:
    port = free_port()
    mail = EmailNotifier("127.0.0.1", port=port, from_address="a@b.c", to=["d@e.f"], timeout_secs=2)
    with pytest.raises(SendError) as caught:
        mail.send(mail.render(notification()), "n-1")
    assert caught.value.retry


def test_a_server_without_starttls_is_refused_unless_tls_none(tmp_path: Path) -> None:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        port = controller.port
        mail = EmailNotifier("127.0.0.1", port=port, from_address="a@b.c", to=["d@e.f"])
        with pytest.raises(SendError, match="STARTTLS") as caught:
            mail.send(mail.render(notification()), "n-1")
        assert not caught.value.retry
        plain = EmailNotifier(
            "127.0.0.1", port=port, tls="none", from_address="a@b.c", to=["d@e.f"]
        )
        plain.send(plain.render(notification(id="n-2")), "n-2")
    finally:
        controller.stop()
    assert [m["Message-ID"] for _, _, m in inbox.messages] == ["<n-2@b.c>"]


def test_line_breaks_from_an_event_stay_in_the_subject_line(smtp_server: Smtp) -> None:
    mail = notifier(smtp_server)
    evil = "mallory\r\nBcc: evil@example.net\n\u2028\x85\x0bX-Evil: 1\x1b[2J"
    sent = notification(alert_state(user=evil), group_labels={"user": evil})
    mail.send(mail.render(sent), sent.id)
    [(_, rcpts, message)] = smtp_server.inbox.messages
    assert rcpts == ["oncall@example.org", "security@example.org"]
    assert message["Subject"] == "[FIRING:1] mallory Bcc: evil@example.net X-Evil: 1 [2J"
    assert message["Bcc"] is None and message["X-Evil"] is None
    plain = message.get_body(("plain",))
    assert plain is not None and "user: mallory" in plain.get_content()


def test_a_non_ascii_subject_and_body_arrive_intact(smtp_server: Smtp) -> None:
    mail = notifier(smtp_server, html=True)
    alert = alert_state(user="zoë@例え.jp")
    alert.annotations["summary"] = "zoë ran a shell in prod/wéb-0 ✓"
    sent = notification(alert, group_labels={"user": "zoë@例え.jp"})
    mail.send(mail.render(sent), sent.id)
    [(_, _, message)] = smtp_server.inbox.messages
    assert message["Subject"] == "[FIRING:1] zoë@例え.jp"
    plain = message.get_body(("plain",))
    assert plain is not None and "zoë ran a shell in prod/wéb-0 ✓" in plain.get_content()
