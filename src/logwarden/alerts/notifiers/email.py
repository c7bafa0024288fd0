"""Notifications sent as email over SMTP (smtplib), STARTTLS required unless told otherwise.

`render` makes the whole RFC 5322 message: `From`, `To`, `Subject` (``[FIRING:3] <group>``
or ``[RESOLVED] ...``, one line: the control characters and line breaks an event's values
may bring are spaces there), `Date` (when the notification was made), `Message-ID` (from the
notification id: the same notification always has the same Message-ID, so a mail client
shows a retried message once), `Auto-Submitted: auto-generated`, and a plain text body
(one paragraph per alert: its summary and facts), with an HTML alternative when `html`.

`tls` is ``starttls`` (the server must offer STARTTLS; default port 587), ``smtps``
(implicit TLS, port 465) or ``none`` (port 25, no encryption). An SMTP 4xx answer and a
failed connection are retried; a 5xx is not (a wrong password, a refused address); a
server without STARTTLS is not either. When some recipients take the message and others
refuse it, the send fails without retry, naming the refused ones.
"""

from __future__ import annotations

import contextlib
import datetime
import email.message
import email.policy
import email.utils
import hashlib
import re
import smtplib
import ssl
from collections.abc import Sequence
from html import escape
from typing import ClassVar, Literal

from logwarden.alerts.model import Notification
from logwarden.alerts.notifiers._text import facts, summary, title
from logwarden.alerts.notifiers.base import SendError

__all__ = ["EmailNotifier", "message_id"]

Tls = Literal["starttls", "smtps", "none"]
_PORTS = {"starttls": 587, "smtps": 465, "none": 25}
#: what may not stand in a header line: C0 and C1 controls, and what str.splitlines breaks at
_NOT_IN_HEADER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def message_id(key: str, domain: str) -> str:
    """`<key@domain>`, or a digest of `key` where it is not a valid Message-ID part."""
    left = key if _DOT_ATOM.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<{left}@{domain}>"


class EmailNotifier:
    kind: ClassVar[str] = "email"
    joins: ClassVar[bool] = False
    per_alert: ClassVar[bool] = False
    local: ClassVar[bool] = False

    def __init__(
        self,
        host: str,
        *,
        from_address: str,
        to: Sequence[str],
        port: int | None = None,
        tls: Tls = "starttls",
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        html: bool = False,
        timeout_secs: float = 10.0,
    ) -> None:
        if not to:
            raise ValueError("email: no recipient (to)")
        if (username is None) != (password is None):
            raise ValueError("email: AUTH needs both username and password")
        self._host, self._port, self._tls = host, port or _PORTS[tls], tls
        self._from, self._to = from_address, list(to)
        self._login = None
        if username is not None and password is not None:
            self._login = (username, password)
        self._context = ssl.create_default_context(cafile=ca_file) if tls != "none" else None
        self._html, self._timeout = html, timeout_secs
        self._domain = email.utils.parseaddr(from_address)[1].rpartition("@")[2] or "logwarden"
        self.shown = f"smtp://{host}:{self._port}"

    def render(self, notification: Notification) -> bytes:
        msg = email.message.EmailMessage(policy=email.policy.SMTP)
        msg["From"] = self._from
        msg["To"] = ", ".join(self._to)
        msg["Subject"] = _NOT_IN_HEADER.sub(" ", title(notification))
        when = datetime.datetime.fromtimestamp(notification.time_ns / 1e9, datetime.UTC)
        msg["Date"] = email.utils.format_datetime(when)
        msg["Message-ID"] = message_id(notification.id, self._domain)
        msg["Auto-Submitted"] = "auto-generated"
        paragraphs = [
            [summary(a), *(f"{name}: {value}" for name, value in facts(a))]
            for a in notification.alerts
        ]
        if notification.external_url:
            paragraphs.append([notification.external_url])
        msg.set_content("\n\n".join("\n".join(p) for p in paragraphs) + "\n")
        if self._html:
            body = "".join(
                f"<p><b>{escape(p[0])}</b><br>"
                + "<br>".join(escape(line) for line in p[1:])
                + "</p>"
                for p in paragraphs
            )
            msg.add_alternative(f"<html><body>{body}</body></html>\n", subtype="html")
            # the same notification makes the same bytes: the boundary follows the id
            msg.set_boundary("=_" + hashlib.sha256(notification.id.encode()).hexdigest()[:32])
        return msg.as_bytes()

    def send(self, payload: bytes, key: str) -> None:
        smtp: smtplib.SMTP | None = None
        try:
            if self._tls == "smtps":
                smtp = smtplib.SMTP_SSL(
                    self._host, self._port, timeout=self._timeout, context=self._context
                )
            else:
                smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            if self._tls == "starttls":
                smtp.starttls(context=self._context)
            if self._login is not None:
                smtp.login(*self._login)
            refused = smtp.sendmail(self._from, self._to, payload)
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            retry = all(400 <= c < 500 for c in codes)
            raise SendError(
                f"{self.shown}: recipients refused: {exc.recipients}", retry=retry
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise SendError(f"{self.shown}: {exc} (set tls: none or smtps)", retry=False) from exc
        except smtplib.SMTPResponseException as exc:
            error = exc.smtp_error
            text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
            retry = 400 <= exc.smtp_code < 500
            raise SendError(f"{self.shown}: SMTP {exc.smtp_code} {text}", retry=retry) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise SendError(f"{self.shown}: {str(exc) or type(exc).__name__}", retry=True) from exc
        finally:
            if smtp is not None:
                smtp.close()
        if refused:
            raise SendError(f"{self.shown}: sent, but these refused it: {refused}", retry=False)

    def close(self) -> None:
        pass
