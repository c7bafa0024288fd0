"""Alerts as JSON lines on standard output.

A notification becomes one line per alert in it. A line starts with what a reader of
`detect --format jsonl` looks for, about the alert's newest occurrence: `rule`, `time`,
`output`, `audit_id`; then the alert's `AlertState` fields (`fingerprint`, `labels`,
`annotations`, `severity`, `status` (the alert's own),
`first_ns`, `last_ns`, `count`, `links`, `acknowledged_by`, `acknowledged_ns`,
`resolved_by`, `resolved_ns`) and, about the notification it came in: `receiver`,
`route`, `group_key`, `notification_id` (the idempotency key) and `notification_status`
(``firing`` or ``resolved``). The file notifier writes the same lines. A reader that went
away (a broken pipe) fails the send, to be retried, and `close` does not raise for it.
"""

from __future__ import annotations

import contextlib
import sys
from typing import BinaryIO, ClassVar

import msgspec

from logwarden.alerts.model import AlertState, Notification
from logwarden.alerts.notifiers.base import SendError

__all__ = ["StdoutNotifier", "json_lines"]

_encode = msgspec.json.Encoder().encode


def json_lines(notification: Notification) -> bytes:
    """One JSON line per alert of `notification` (the shape in the module docstring)."""
    about = _encode(
        {
            "receiver": notification.receiver,
            "route": notification.route,
            "group_key": notification.group_key,
            "notification_id": notification.id,
            "notification_status": notification.status,
        }
    )[1:]
    # three JSON objects spliced into one (their keys differ): the same bytes as encoding
    # the merged dict, without building it
    return b"".join(
        _encode(_newest(alert))[:-1] + b"," + _encode(alert)[1:-1] + b"," + about + b"\n"
        for alert in notification.alerts
    )


def _newest(alert: AlertState) -> dict[str, str | None]:
    link = alert.links[-1] if alert.links else None
    return {
        "rule": alert.rule,
        "time": link.time if link is not None else None,
        "output": alert.annotations.get("summary"),
        "audit_id": link.audit_id if link is not None else None,
    }


class StdoutNotifier:
    kind: ClassVar[str] = "stdout"
    #: payloads are JSON lines: several join into one send
    joins: ClassVar[bool] = True
    per_alert: ClassVar[bool] = False
    #: not durable (a pipe a reader may stop reading): it goes through the outbox and a
    #: thread of its own, so a stalled reader never holds up the alert stage
    local: ClassVar[bool] = False

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream or sys.stdout.buffer

    def render(self, notification: Notification) -> bytes:
        return json_lines(notification)

    def send(self, payload: bytes, key: str) -> None:
        try:
            self._stream.write(payload)
            self._stream.flush()
        except OSError as exc:
            raise SendError(f"stdout: {exc.strerror or exc}", retry=True) from exc

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # the reader is gone, or it is closed
            self._stream.flush()
