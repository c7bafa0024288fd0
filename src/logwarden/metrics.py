"""The Prometheus metrics of `logwarden run`, in one registry the service exposes at /metrics.

Names follow `logwarden_<thing>_<unit>_total`. `dropped` counts records the service lost
after accepting them; it must stay 0 (nothing acknowledged is ever dropped), and is there
so that an alert rule can say so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Every metric of the service; gauges that are read at scrape time take a function."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` adds nothing
        r = self.registry = CollectorRegistry()
        self.events = Counter(
            "logwarden_events_received_total", "Records accepted, by source", ["source"], registry=r
        )
        self.malformed = Counter(
            "logwarden_events_malformed_total",
            "Input units refused as malformed (counted and kept), by source",
            ["source"],
            registry=r,
        )
        self.duplicates = Counter(
            "logwarden_events_duplicate_total",
            "Records a sender sent again after they were stored (not stored twice), by source",
            ["source"],
            registry=r,
        )
        self.dropped = Counter(
            "logwarden_events_dropped_total",
            "Records lost after they were accepted (must stay 0)",
            registry=r,
        )
        self.redacted = Counter(
            "logwarden_events_redacted_total", "Records with secret values replaced", registry=r
        )
        self.replayed = Counter(
            "logwarden_events_replayed_total",
            "Records stored but not detected on before the last stop, detected on at start",
            registry=r,
        )
        self.requests = Counter(
            "logwarden_webhook_requests_total",
            "Audit webhook requests, by source and HTTP status",
            ["source", "code"],
            registry=r,
        )
        self.alerts = Counter(
            "logwarden_alerts_total",
            "Alerts raised, by rule and severity",
            ["rule", "severity"],
            registry=r,
        )
        self.notifications_sent = Counter(
            "logwarden_notifications_sent_total",
            "Notifications a receiver took, by receiver",
            ["receiver"],
            registry=r,
        )
        self.notifications_retried = Counter(
            "logwarden_notifications_retried_total",
            "Failed sends that will be tried again, by receiver",
            ["receiver"],
            registry=r,
        )
        self.notify_failures = Counter(
            "logwarden_notifications_failed_total",
            "Notifications a receiver refused or that could not be rendered (kept in the "
            "outbox until requeued), by receiver",
            ["receiver"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "logwarden_outbox_pending",
            "Notifications waiting in the outbox, by receiver",
            ["receiver"],
            registry=r,
        )
        self.outbox_oldest = Gauge(
            "logwarden_outbox_oldest_age_seconds",
            "Age of the oldest notification waiting for a receiver",
            ["receiver"],
            registry=r,
        )
        self.receiver_failing = Gauge(
            "logwarden_receiver_failing",
            "1 while a receiver's last send failed",
            ["receiver"],
            registry=r,
        )
        self.queue = Gauge(
            "logwarden_queue_events",
            "Records waiting in each pipeline stage",
            ["stage"],
            registry=r,
        )
        self.ledger_entries = Gauge("logwarden_ledger_entries", "Entries in the ledger", registry=r)
        self.ledger_bytes = Gauge(
            "logwarden_ledger_bytes", "Bytes of the ledger's segments", registry=r
        )
        self.checkpoint_age = Gauge(
            "logwarden_ledger_checkpoint_age_seconds",
            "Seconds since the newest signed checkpoint",
            registry=r,
        )
        self.last_event = Gauge(
            "logwarden_source_last_event_timestamp_seconds",
            "When each source last delivered a record (Unix time)",
            ["source"],
            registry=r,
        )
        self.silent = Gauge(
            "logwarden_source_silent",
            "1 while a source that was sending has gone quiet past its threshold",
            ["source"],
            registry=r,
        )
        self._refresh: list[Callable[[], None]] = []
        self._delivered: dict[tuple[str, str], int] = {}

    def on_scrape(self, refresh: Callable[[], None]) -> None:
        """Call `refresh` before each exposition (gauges computed from live state)."""
        self._refresh.append(refresh)

    def deliveries(self, stats: Mapping[str, Mapping[str, Any]]) -> None:
        """Take each receiver's delivery figures (`alerts.delivery.ReceiverStats` as a
        mapping; counters are totals since its process started)."""
        for receiver, s in stats.items():
            for name, counter in (
                ("sent", self.notifications_sent),
                ("retried", self.notifications_retried),
                ("dead", self.notify_failures),
            ):
                total = int(s[name])
                delta = total - self._delivered.get((receiver, name), 0)
                if delta > 0:
                    counter.labels(receiver).inc(delta)
                self._delivered[(receiver, name)] = total
            self.outbox_pending.labels(receiver).set(s["pending"])
            self.outbox_oldest.labels(receiver).set(s["oldest_pending_age_secs"])
            self.receiver_failing.labels(receiver).set(1 if s["failing"] else 0)

    def expose(self) -> bytes:
        """The text exposition format of every metric."""
        for refresh in self._refresh:
            refresh()
        return generate_latest(self.registry)
