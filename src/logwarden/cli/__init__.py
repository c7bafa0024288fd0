"""The `logwarden` command: one module per command group, found and wired here.

Every public module of this package (a name not starting with `_`) is a command group:
it defines `ORDER` (its place in `--help`), `SUMMARY` (one line for `--help`) and
`add_parser(subparsers)`, which registers its subcommands and sets `run` on each. Adding a
command is adding a module; nothing here changes. A module's name is its command's name
with `-` spelled `_` (`verify-proof` lives in `verify_proof.py`): when the command line
names a command, only that module is imported, so `logwarden verify` starts without
loading the detection engine or the Kubernetes client.

Exit status, for every command: 0 when it ran, 1 when the input had errors (reported on
stderr) or the system failed (a full disk), 2 on usage errors (bad arguments, unusable
rule files), 130 when interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from logwarden import __version__
from logwarden.errors import LogwardenError, RuleError, UsageError

__all__ = ["main"]

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2

_DESCRIPTION = "logwarden closes OWASP Kubernetes Top Ten K05 (inadequate logging and monitoring)."


def command_names() -> list[str]:
    """The module names of the command groups of this package (not imported)."""
    return [info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]


def command_modules(only: str | None = None) -> list[ModuleType]:
    """The command group modules of this package, in `--help` order.

    With `only` (a module name), just that module: the one the command line asks for.
    """
    names = [only] if only is not None else command_names()
    found = [importlib.import_module(f"{__name__}.{name}") for name in names]
    return sorted(found, key=lambda m: (m.ORDER, m.__name__))


def _named_command(argv: Sequence[str]) -> str | None:
    """The command module the command line names, if it names one as its first word."""
    if not argv or argv[0].startswith("-"):
        return None
    name = argv[0].replace("-", "_")
    return name if name in command_names() else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; given the command line, with only the command it names."""
    parser = argparse.ArgumentParser(
        prog="logwarden",
        description=_DESCRIPTION,
        epilog="Run 'logwarden COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"logwarden {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    only = _named_command(argv) if argv is not None else None
    for module in command_modules(only):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        code: int = args.run(args)
        sys.stdout.flush()  # here, not at exit, so that a failed write is reported
        return code
    except (UsageError, RuleError) as exc:
        print(f"logwarden: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LogwardenError as exc:
        print(f"logwarden: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("logwarden: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): not an error of ours; silence the final flush
        _drop_stdout()
        return EXIT_OK
    except OSError as exc:
        # the system failed us (stdout on a full disk, an I/O error): say so, not a traceback
        with contextlib.suppress(OSError):
            sys.stdout.flush()
        _drop_stdout()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"logwarden: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT


def _drop_stdout() -> None:
    """Send what is left of standard output nowhere, so that exiting does not fail on it."""
    with contextlib.suppress(OSError):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
