"""Text the notifiers for people share: titles, times and the facts of an alert."""

from __future__ import annotations

import time

from logwarden.alerts.model import AlertState, Notification

__all__ = ["clip", "counts", "facts", "rfc3339", "summary", "title"]

#: labels shown as facts, in this order (the rest are in `labels`)
_FACT_LABELS = ("namespace", "resource", "user", "source")


def clip(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as RFC 3339 UTC with microseconds."""
    secs, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{rest // 1000:06d}Z"


def counts(notification: Notification) -> dict[str, int]:
    """How many alerts of the notification are firing, acknowledged and resolved."""
    out = {"firing": 0, "acknowledged": 0, "resolved": 0}
    for alert in notification.alerts:
        out[alert.status] += 1
    return out


def title(notification: Notification) -> str:
    """`[FIRING:3] <group label values>` or `[RESOLVED] ...`, as Alertmanager titles a group.

    Without group labels the title names the rules.
    """
    if notification.status == "resolved":
        head = "[RESOLVED]"
    else:
        head = f"[FIRING:{len(notification.alerts) - counts(notification)['resolved']}]"
    values = [notification.group_labels[k] for k in sorted(notification.group_labels)]
    if not values:
        values = sorted({a.rule or a.labels.get("alertname", "") for a in notification.alerts})
    return f"{head} {' '.join(v for v in values if v)}".rstrip()


def summary(alert: AlertState) -> str:
    """One line saying what happened: the rule's output, else the rule's name."""
    return alert.annotations.get("summary") or alert.rule or alert.fingerprint


def facts(alert: AlertState) -> list[tuple[str, str]]:
    """(name, value) pairs describing one alert, for a text or chat message."""
    out = [("rule", alert.rule), ("severity", alert.severity), ("status", alert.status)]
    out += [(k, alert.labels[k]) for k in _FACT_LABELS if alert.labels.get(k)]
    out.append(("count", str(alert.count)))
    out.append(("first seen", rfc3339(alert.first_ns)))
    out.append(("last seen", rfc3339(alert.last_ns)))
    if alert.acknowledged_by:
        out.append(("acknowledged by", alert.acknowledged_by))
    if alert.resolved_by:
        out.append(("resolved by", alert.resolved_by))
    out.append(("fingerprint", alert.fingerprint))
    return [(k, v) for k, v in out if v]
