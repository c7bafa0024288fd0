"""The `receivers:` of `logwarden.yaml`: where notifications go, one struct per `type:`.

Every receiver has the delivery options of `_Receiver` (rate limit, burst); those that
talk to a network service have `timeout_secs`. Secrets are only ever read from files
(`*_file`), never written into the config. `alerts.notifiers.build_notifier` turns a
receiver into its notifier; adding a type is adding a struct to `ReceiverConfig` and a
case there.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from logwarden.config._base import Found, _Component
from logwarden.config.checks import HEADER_NAME, HEADER_VALUE, HTTPS_URL, PATH, Check

__all__ = [
    "HTTP_URL",
    "AlertmanagerReceiver",
    "CloudEventsReceiver",
    "EmailReceiver",
    "FileReceiver",
    "PagerDutyReceiver",
    "ReceiverConfig",
    "SlackReceiver",
    "StdoutReceiver",
    "WebhookReceiver",
]


def _http_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "an http:// or https:// URL with a port in 1-65535"
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        return "an http:// or https:// URL"
    return None


#: a URL that may be plain http (a service that runs next to logwarden)
HTTP_URL = Check("an http:// or https:// URL", _http_url)

_CA_FILE = Meta(description="PEM CA certificates to trust for the service instead of the system's.")
_Headers = Annotated[
    dict[Annotated[str, HEADER_NAME], Annotated[str, HEADER_VALUE]],
    Meta(description="Extra HTTP headers sent with each post."),
]


class _Receiver(_Component, frozen=True, kw_only=True):
    rate_limit_per_sec: Annotated[
        float,
        Meta(ge=0, description="Most sends a second to this receiver; 0: unlimited."),
    ] = 0.0
    burst: Annotated[
        int, Meta(ge=1, description="Sends allowed at once above rate_limit_per_sec.")
    ] = 10


class _NetworkReceiver(_Receiver, frozen=True, kw_only=True):
    timeout_secs: Annotated[
        float, Meta(gt=0, description="How long one send may take before it counts as failed.")
    ] = 10.0


class StdoutReceiver(_Receiver, frozen=True, kw_only=True, tag="stdout"):
    """Alerts on standard output, one JSON object a line."""


class FileReceiver(_Receiver, frozen=True, kw_only=True, tag="file"):
    """Alerts appended to a file, one JSON object a line, synced as they are written."""

    path: Annotated[str, Meta(description="The file alerts are appended to."), PATH]


class WebhookReceiver(_NetworkReceiver, frozen=True, kw_only=True, tag="webhook"):
    """Each notification posted as JSON to an HTTPS endpoint, signed per Standard Webhooks."""

    url: Annotated[
        str, Meta(description="The https:// URL notifications are posted to."), HTTPS_URL
    ]
    secret_file: Annotated[
        str | None,
        Meta(
            description="File holding the signing secret (whsec_<base64>); without it, "
            "posts carry no webhook-signature."
        ),
        PATH,
    ] = None
    ca_file: Annotated[str | None, _CA_FILE, PATH] = None
    headers: _Headers = msgspec.field(default_factory=dict)


class AlertmanagerReceiver(_NetworkReceiver, frozen=True, kw_only=True, tag="alertmanager"):
    """Alerts posted to Prometheus Alertmanager's API v2, which groups, silences and routes
    them further."""

    url: Annotated[
        str,
        Meta(description="Alertmanager's base URL (http://alertmanager:9093)."),
        HTTP_URL,
    ]
    ca_file: Annotated[str | None, _CA_FILE, PATH] = None
    username: Annotated[
        str | None, Meta(description="Basic auth user; set with password_file.")
    ] = None
    password_file: Annotated[
        str | None, Meta(description="File holding the basic auth password."), PATH
    ] = None
    bearer_token_file: Annotated[
        str | None,
        Meta(description="File holding a token sent as 'Authorization: Bearer'."),
        PATH,
    ] = None

    def problems(self) -> Found:
        found: Found = []
        if (self.username is None) != (self.password_file is None):
            lone, other = (
                ("username", "password_file")
                if self.password_file is None
                else ("password_file", "username")
            )
            found.append(((lone,), f"set {other} too (basic auth needs both)"))
        if self.bearer_token_file is not None and self.username is not None:
            found.append((("bearer_token_file",), "set basic auth or a bearer token, not both"))
        return found


class PagerDutyReceiver(_NetworkReceiver, frozen=True, kw_only=True, tag="pagerduty"):
    """Each alert an event of PagerDuty's Events API v2 (trigger, acknowledge, resolve)."""

    routing_key_file: Annotated[
        str, Meta(description="File holding the integration's routing key."), PATH
    ]
    url: Annotated[str, Meta(description="The Events API endpoint."), HTTPS_URL] = (
        "https://events.pagerduty.com/v2/enqueue"
    )
    ca_file: Annotated[str | None, _CA_FILE, PATH] = None


class SlackReceiver(_NetworkReceiver, frozen=True, kw_only=True, tag="slack"):
    """Each notification a Block Kit message to a Slack incoming webhook."""

    url_file: Annotated[
        str,
        Meta(description="File holding the incoming webhook's URL (it contains the token)."),
        PATH,
    ]
    max_alerts: Annotated[
        int,
        Meta(ge=1, le=45, description='Alerts shown each in a section; the rest are "and N more".'),
    ] = 10
    ca_file: Annotated[str | None, _CA_FILE, PATH] = None


class CloudEventsReceiver(_NetworkReceiver, frozen=True, kw_only=True, tag="cloudevents"):
    """Each notification a CloudEvents 1.0 event posted over HTTPS."""

    url: Annotated[str, Meta(description="The https:// URL events are posted to."), HTTPS_URL]
    source: Annotated[
        str, Meta(min_length=1, description="The events' source attribute (a URI-reference).")
    ] = "logwarden"
    mode: Annotated[
        Literal["structured", "binary"],
        Meta(
            description="structured: the event is the JSON body; binary: the notification "
            "is the body, the attributes ce- headers."
        ),
    ] = "structured"
    ca_file: Annotated[str | None, _CA_FILE, PATH] = None
    headers: _Headers = msgspec.field(default_factory=dict)


class EmailReceiver(_NetworkReceiver, frozen=True, kw_only=True, tag="email"):
    """Each notification an email, sent over SMTP."""

    host: Annotated[str, Meta(min_length=1, description="The SMTP server's host name.")]
    port: Annotated[
        int | None,
        Meta(description="SMTP port (1-65535); default 587 (starttls), 465 (smtps), 25 (none)."),
    ] = None
    tls: Annotated[
        Literal["starttls", "smtps", "none"],
        Meta(
            description="starttls: the server must offer STARTTLS; smtps: TLS from the "
            "start; none: no encryption."
        ),
    ] = "starttls"
    from_address: Annotated[
        str, Meta(min_length=3, description="The From address (alerts@example.com).")
    ]
    to: Annotated[
        list[Annotated[str, Meta(min_length=3)]],
        Meta(min_length=1, description="The recipients' addresses."),
    ]
    username: Annotated[str | None, Meta(description="SMTP AUTH user; set with password_file.")] = (
        None
    )
    password_file: Annotated[
        str | None, Meta(description="File holding the SMTP AUTH password."), PATH
    ] = None
    ca_file: Annotated[str | None, _CA_FILE, PATH] = None
    html: Annotated[bool, Meta(description="Add an HTML alternative to the plain text body.")] = (
        False
    )

    def problems(self) -> Found:
        found: Found = []
        if (self.username is None) != (self.password_file is None):
            lone, other = (
                ("username", "password_file")
                if self.password_file is None
                else ("password_file", "username")
            )
            found.append(((lone,), f"set {other} too (SMTP AUTH needs both)"))
        if self.port is not None and not 1 <= self.port <= 65535:
            found.append((("port",), f"expected a port in 1-65535, got {self.port}"))
        if self.username is not None and self.tls == "none":
            found.append((("tls",), "a password is not sent unencrypted: use starttls or smtps"))
        return found


#: Every receiver type; `type:` selects one.
ReceiverConfig = (
    StdoutReceiver
    | FileReceiver
    | WebhookReceiver
    | AlertmanagerReceiver
    | PagerDutyReceiver
    | SlackReceiver
    | CloudEventsReceiver
    | EmailReceiver
)
