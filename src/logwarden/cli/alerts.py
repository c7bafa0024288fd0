"""`logwarden alerts`: list, acknowledge, resolve and silence the alerts of `logwarden run`."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from logwarden.alerts.api import MAX_SILENCE, silence_span
from logwarden.alerts.matchers import MatcherError, parse_silence_matchers
from logwarden.alerts.state import AlertStore
from logwarden.config import load
from logwarden.errors import UsageError
from logwarden.records import SEVERITY_STYLE, format_time_ns

__all__ = ["ORDER", "SUMMARY", "add_parser"]

ORDER = 7
SUMMARY = "list, acknowledge, resolve and silence the alerts of the service"

_HELP = """\
Work with the alerts `logwarden run` tracks, in the state file of its data directory
(<data_dir>/alerts.db; the service need not run). `ack` stops an alert's escalation and
tells the receivers it reached; `resolve` closes it. Both are applied by the service
within a second (or at its next start) and print what was done. `silence` mutes the
alerts matching every matcher (Alertmanager's syntax: severity="high",
namespace=~"prod-.*") for a while; `expire` ends a silence. The same operations are in
the HTTP API (docs/alerts.md).
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "alerts",
        help=SUMMARY,
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", title="verbs")
    verbs.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--config", "-c", metavar="FILE", help="config file (default: embedded)")
        q.add_argument("--data-dir", metavar="DIR", help="the service's data directory")

    q = verbs.add_parser("list", help="the tracked alerts")
    common(q)
    q.add_argument("--status", choices=["firing", "acknowledged", "resolved"])
    q.add_argument("--format", choices=["table", "json"], default="table")
    q.set_defaults(run=_list)
    for verb, what in (("ack", "acknowledge"), ("resolve", "resolve")):
        q = verbs.add_parser(verb, help=f"{what} an alert")
        common(q)
        q.add_argument("fingerprint", help="the alert's fingerprint (see `alerts list`)")
        q.add_argument("--by", default=_me(), help="who does it (default: the login name)")
        q.add_argument("--comment", default="")
        q.add_argument(
            "--wait",
            type=float,
            default=5.0,
            metavar="SECS",
            help="how long to wait for the service to apply it (default 5)",
        )
        q.set_defaults(run=_command, kind=verb)
    q = verbs.add_parser("silence", help="mute the alerts matching every matcher for a while")
    common(q)
    q.add_argument("matchers", nargs="+", metavar="MATCHER")
    q.add_argument("--duration", default="2h", help=f"how long (default 2h, at most {MAX_SILENCE})")
    q.add_argument("--by", default=_me())
    q.add_argument("--comment", required=True, help="why (kept with the silence)")
    q.set_defaults(run=_silence)
    q = verbs.add_parser("silences", help="the silences, active first")
    common(q)
    q.add_argument("--format", choices=["table", "json"], default="table")
    q.set_defaults(run=_silences)
    q = verbs.add_parser("expire", help="end a silence now")
    common(q)
    q.add_argument("id")
    q.set_defaults(run=_expire)


def _me() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _store(args: argparse.Namespace) -> AlertStore:
    data_dir = load(args.config, data_dir=args.data_dir).data_dir
    path = Path(data_dir) / "alerts.db"
    if not path.exists():
        raise UsageError(f"{path}: no alert state here (has `logwarden run` used this data dir?)")
    return AlertStore(path)


def _list(args: argparse.Namespace) -> int:
    alerts = _store(args).alerts(args.status)
    if args.format == "json":
        sys.stdout.buffer.write(msgspec.json.encode(alerts) + b"\n")
        return 0
    table = Table(box=None)
    table.add_column("fingerprint", no_wrap=True, min_width=16)
    for col in ("status", "severity", "rule", "count", "last seen", "labels"):
        table.add_column(col)
    for a in alerts:
        shown = {k: v for k, v in a.labels.items() if k in ("namespace", "user", "resource")}
        table.add_row(
            a.fingerprint,
            a.status + (f" by {a.acknowledged_by}" if a.status == "acknowledged" else ""),
            f"[{SEVERITY_STYLE.get(a.severity, '')}]{a.severity}[/]",
            a.rule,
            str(a.count),
            format_time_ns(a.last_ns)[:19],
            " ".join(f"{k}={v}" for k, v in shown.items()),
        )
    Console().print(table)
    print(f"{len(alerts)} alert(s)", file=sys.stderr)
    return 0


#: The arguments kept as text in the state file, as the user names them.
_TEXT = {
    "fingerprint": "FINGERPRINT",
    "id": "ID",
    "matchers": "MATCHER",
    "by": "--by",
    "comment": "--comment",
    "duration": "--duration",
}


def _check_text(args: argparse.Namespace) -> None:
    """Refuse arguments that are not UTF-8 text (bytes Python keeps as surrogates)."""
    for dest, name in _TEXT.items():
        value = getattr(args, dest, None)
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and any("\udc80" <= c <= "\udcff" for c in text):
                raise UsageError(f"{name}: not valid UTF-8 text")


def _command(args: argparse.Namespace) -> int:
    _check_text(args)
    store = _store(args)
    if store.alert(args.fingerprint) is None:
        raise UsageError(
            f"no alert with fingerprint {args.fingerprint} (see `logwarden alerts list`)"
        )
    command = store.command(args.kind, args.fingerprint, args.by, args.comment)
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        result = store.result(command)
        if result is not None:
            print(result)
            return 0
        time.sleep(0.1)
    print(
        f"queued: no service applied it within {args.wait:g} s; `logwarden run` applies it "
        "when it next starts"
    )
    return 0


def _silence(args: argparse.Namespace) -> int:
    _check_text(args)
    try:
        parse_silence_matchers(args.matchers)
    except MatcherError as exc:
        raise UsageError(str(exc)) from None
    try:
        span = silence_span(args.duration)
    except ValueError as exc:
        raise UsageError(f"--duration: {exc}") from None
    now = time.time_ns()
    silence = _store(args).add_silence(args.matchers, now, now + span, args.by, args.comment)
    print(silence.id)
    print(f"silenced until {format_time_ns(silence.ends_ns)[:19]}Z", file=sys.stderr)
    return 0


def _silences(args: argparse.Namespace) -> int:
    silences = _store(args).silences()
    if args.format == "json":
        sys.stdout.buffer.write(msgspec.json.encode(silences) + b"\n")
        return 0
    now = time.time_ns()
    table = Table(box=None)
    table.add_column("id", no_wrap=True, min_width=36)
    for col in ("state", "ends", "matchers", "by", "comment"):
        table.add_column(col)
    for s in silences:
        state = "active" if s.active(now) else ("pending" if s.starts_ns > now else "expired")
        table.add_row(
            s.id,
            state,
            format_time_ns(s.ends_ns)[:19],
            " ".join(s.matchers),
            s.created_by,
            s.comment,
        )
    Console().print(table)
    return 0


def _expire(args: argparse.Namespace) -> int:
    _check_text(args)
    if not _store(args).expire_silence(args.id, time.time_ns()):
        raise UsageError(f"no active silence {args.id} (see `logwarden alerts silences`)")
    print(f"silence {args.id} expired")
    return 0
