"""`logwarden verify`: the offline tamper check of a ledger.

This module and everything it imports need only the standard library and `cryptography`,
so it also runs on its own where logwarden's other dependencies are not installed:
``python -m logwarden.cli.verify LEDGER --key PUB``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from logwarden.errors import UsageError
from logwarden.ledger.keys import load_verifiers
from logwarden.ledger.report import COMPLETENESS, INTEGRITY, Problem, Report
from logwarden.ledger.verify import verify_ledger

__all__ = ["ORDER", "SUMMARY", "add_parser", "main", "print_report", "run"]

ORDER = 20
SUMMARY = "check a ledger for tampering and gaps (offline)"
_SHOWN = 20

_HELP = """\
Check a ledger offline: signatures of every checkpoint, every entry's checksum, every
checkpoint root recomputed from the entries, checkpoint order (rollback), split views,
segment order and gaps, deleted checkpoint streams, per-source sequence gaps, and, with
--anchor, truncation, rollback, edits and missing checkpoints against the anchored
checkpoints and sealed segments.

Integrity (what is there is what was signed) and completeness (nothing is missing) are
separate verdicts; the report names the first bad entry. Pass the verifier key with
--key: without it the ledger's own key is used, which proves consistency, not origin.
Exit status: 0 when both verdicts are OK, 1 on any problem, 2 on usage errors.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help=SUMMARY,
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _arguments(p)
    p.set_defaults(run=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ledger", metavar="LEDGER", help="the ledger directory")
    p.add_argument("--anchor", metavar="DIR", help="the anchor directory the ledger copies to")
    p.add_argument(
        "--key",
        action="append",
        metavar="PUB",
        help="trusted verifier key, or a file of them (repeatable)",
    )
    p.add_argument(
        "--max-age",
        type=_seconds,
        metavar="SECS",
        help="also fail when the newest checkpoint is older than this (a frozen log)",
    )


def _seconds(text: str) -> float:
    """A number of seconds > 0 (nan, inf and negative ages would disable the check)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    keys = load_verifiers(args.key or [])
    if args.anchor is not None and not os.path.isdir(args.anchor):
        raise UsageError(f"--anchor {args.anchor}: no such directory")
    report = verify_ledger(args.ledger, keys=keys, anchor=args.anchor, max_age_secs=args.max_age)
    print_report(report, sys.stdout)
    return 0 if report.ok else 1


def _time(ns: int | None) -> str:
    if ns is None:
        return "no time"
    try:
        return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"time {ns} (out of range)"


def print_report(report: Report, out: TextIO) -> None:
    """The human-readable report: what was checked, then each verdict with its problems."""
    w = out.write
    w(f"ledger        {report.ledger} (origin {report.origin or '?'})\n")
    w(
        f"entries       {report.entries:,} in {report.segments:,} segments, "
        f"{report.bytes / 1e6:,.1f} MB, checked in {report.seconds:.2f} s\n"
    )
    newest = "none"
    if report.newest_size is not None:
        newest = f"size {report.newest_size:,} at {_time(report.newest_time_ns)}"
    w(f"checkpoints   {report.checkpoints:,} (newest: {newest})\n")
    if report.anchored_checkpoints or report.anchored_segments:
        w(
            f"anchor        {report.anchored_checkpoints:,} checkpoints, "
            f"{report.anchored_segments:,} sealed segments\n"
        )
    source = (
        "the ledger's own key (not a proof of origin: pass --key)"
        if report.keys_from_ledger
        else "--key"
    )
    for key in report.keys:
        w(f"key           {key} ({source})\n")
    for verdict in (INTEGRITY, COMPLETENESS):
        _verdict(report, verdict, w)
    for first, last, when in report.recovered:
        w(
            f"recovered     entries {first:,}..{last:,} were signed when the writer restarted "
            f"({_time(when)}), not when they were stored: the last records before a crash, "
            "or records added to the files while it was stopped\n"
        )


def _verdict(report: Report, verdict: str, w: Any) -> None:
    problems = report.of(verdict)
    label = f"{verdict}:".ljust(14)
    if not problems:
        w(f"{label}OK\n")
        return
    w(f"{label}FAILED ({len(problems)} problem{'s' if len(problems) > 1 else ''})\n")
    first = report.first_bad(verdict)
    if first is not None and first.index is not None:
        w(f"  first bad entry: {first.index:,}: {first}\n")
    elif first is not None and first.span is not None:
        a, b = first.span
        why = "no finer evidence" + ("" if report.anchor else " without --anchor")
        w(f"  first bad entry: one of {a:,}..{b:,} ({why})\n")
    for problem in _ordered(problems)[:_SHOWN]:
        w(f"  - {problem}\n")
    if len(problems) > _SHOWN:
        w(f"  ... and {len(problems) - _SHOWN} more\n")


def _ordered(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.start is None, p.start or 0))


def main(argv: list[str] | None = None) -> int:
    """`verify` on its own, for hosts with only the standard library and `cryptography`."""
    from logwarden.cli import main as logwarden

    return logwarden(["verify", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
