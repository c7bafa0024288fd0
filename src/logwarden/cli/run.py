"""`logwarden run`: the monitoring service."""

from __future__ import annotations

import argparse
from typing import Any

from logwarden.config import load

__all__ = ["ORDER", "SUMMARY", "add_parser", "run"]

ORDER = 5
SUMMARY = "the monitoring service: the six K05 sources in, ledger, detection, alerting"

_HELP = """\
Run logwarden as a service: take Kubernetes audit events from the apiserver's audit
webhook (HTTPS, mutual TLS or a bearer token) and from audit log files (followed through
rotation), and the other K05 sources configured under sources: (Kubernetes Events,
container logs, the journal, EKS and GKE audit logs, access logs and Hubble flows:
docs/sources.md), redact secret values, append every record to the tamper-evident
ledger (a webhook request is answered 200 only once its events are durable), run the
rules over them, and route, group and escalate the alerts to the configured receivers (stdout, a
file, Standard Webhooks, Alertmanager, PagerDuty, Slack, CloudEvents, email) through a
durable outbox. Sources that go quiet raise an alert. /metrics, /healthz and /readyz are
served on service.listen; the alerts API (list, ack, resolve, silence) on
alerts.api.listen.

Without --config the embedded defaults are used: data in ~/.local/state/logwarden, the
webhook on https://127.0.0.1:8443/audit with a CA, server and client certificate
generated under its tls/ directory (the client certificate is what kube-apiserver
presents), alerts on stdout. See docs/configuration.md and 'logwarden config check'.

SIGTERM or Ctrl-C stops it cleanly: requests in flight finish, everything accepted is
stored and detected on. Exit status: 0 on a clean stop, 1 when a part failed, 2 on a
configuration error.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help=SUMMARY,
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", "-c", metavar="FILE", help="config file (default: embedded)")
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the ledger, keys and state live (overrides the config)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from logwarden.runtime import Runtime, configure_logging

    config = load(args.config, data_dir=args.data_dir)
    configure_logging(config.service.log_format)
    return Runtime(config).run()
