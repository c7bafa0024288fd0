"""The alert side of `logwarden run` built from its config: the stage, and the API's token.

`alert_stage` returns the `AlertStage` the pipeline hands alerts to. Notifiers are built
here, in the service, so a receiver's unreadable secret stops the service at start with
the file named; the state file, the outbox and the delivery threads are opened where the
stage starts (the detect worker). Files under `data_dir`: `alerts.db` (tracked alerts,
groups, escalations, silences, commands) and `outbox.db` (what receivers have yet to
take).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO

from logwarden.alerts.delivery import Delivery, Dispatcher, HealthCallback
from logwarden.alerts.manager import AlertManager, Inhibition, Policy
from logwarden.alerts.notifiers import build_notifier
from logwarden.alerts.notifiers.base import Notifier
from logwarden.alerts.outbox import Outbox
from logwarden.alerts.route import build_routes
from logwarden.alerts.stage import AlertStage
from logwarden.alerts.state import AlertStore
from logwarden.config import Config
from logwarden.config.receivers import AlertmanagerReceiver
from logwarden.errors import UsageError
from logwarden.records import parse_duration

__all__ = ["alert_stage", "api_token"]


def alert_stage(
    config: Config, *, stdout: BinaryIO | None = None, external_url: str | None = None
) -> AlertStage:
    data = Path(config.data_dir)
    alerts = config.alerts
    routes = build_routes(alerts.route, list(config.receivers))
    policies = {name: Policy.of(name, p) for name, p in alerts.escalations.items()}
    inhibitions = [Inhibition.of(rule) for rule in alerts.inhibit_rules]
    notifiers: dict[str, Notifier] = {
        rid: build_notifier(receiver, stdout=stdout) for rid, receiver in config.receivers.items()
    }
    resend = [rid for rid, r in config.receivers.items() if isinstance(r, AlertmanagerReceiver)]

    def build(store: AlertStore, health: HealthCallback) -> tuple[AlertManager, Dispatcher]:
        outbox = Outbox(data / "outbox.db")
        deliveries = [
            Delivery(
                rid,
                notifiers[rid],
                outbox,
                rate_limit_per_sec=receiver.rate_limit_per_sec,
                burst=receiver.burst,
                on_health=health,
            )
            for rid, receiver in config.receivers.items()
        ]
        manager = AlertManager(
            routes,
            store,
            inhibitions=inhibitions,
            policies=policies,
            resend_receivers=resend,
            resend_ns=parse_duration(alerts.resend_interval),
            resolve_timeout_ns=parse_duration(alerts.resolve_timeout),
            external_url=external_url,
        )
        return manager, Dispatcher(deliveries, outbox)

    return AlertStage(data / "alerts.db", build)


def api_token(path: str | Path) -> str:
    """The API's bearer token from `path`, made (random, mode 0600) if the file is absent."""
    file = Path(path)
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_urlsafe(32).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
    try:
        token = file.read_text().strip()
    except OSError as exc:
        raise UsageError(f"{file}: cannot read the API token: {exc.strerror}") from exc
    if not token:
        raise UsageError(f"{file}: the API token file is empty")
    return token
