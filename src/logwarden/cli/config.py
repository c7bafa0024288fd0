"""`logwarden config check|show`: the config file of `logwarden run`, before it runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from logwarden.config import ConfigError, dump, load

__all__ = ["ORDER", "SUMMARY", "add_parser"]

ORDER = 55
SUMMARY = "check the config file of 'logwarden run', or show the configuration it makes"

_CHECK = """\
Check config files as 'logwarden run --config FILE' reads them, and report every problem
at once, each with its file:line and path (docs/configuration.md describes every key).
Prints "FILE: OK" for a good file. Exit status: 0 when every file is good, 2 otherwise.
"""
_SHOW = """\
Print the configuration 'logwarden run' would use, as YAML, with every default written
out and paths made absolute. Without FILE: the embedded default. Exit status: 0, or 2
when the file has problems (reported on stderr).
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("config", help=SUMMARY, description=SUMMARY)
    actions = p.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True
    check = actions.add_parser(
        "check",
        help="report every problem of config files, with file:line and path",
        description=_CHECK,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(run=_check)
    show = actions.add_parser(
        "show",
        help="print the effective configuration, defaults included",
        description=_SHOW,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("file", nargs="?", metavar="FILE")
    show.set_defaults(run=_show)


def _check(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.files:
        try:
            load(path)
        except ConfigError as exc:
            bad += 1
            for problem in exc.problems:
                print(problem)
            count = len(exc.problems)
            print(f"{path}: {count} problem{'s' if count != 1 else ''}")
        else:
            print(f"{path}: OK")
    return 2 if bad else 0


def _show(args: argparse.Namespace) -> int:
    try:
        config = load(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    sys.stdout.write(dump(config))
    return 0
