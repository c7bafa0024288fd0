"""`logwarden rules lint|test`: rule authoring."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console

from logwarden.detect.rulesets import BUILTIN, load_rules, rule_files
from logwarden.detect.ruletests import run_rule_tests
from logwarden.errors import RuleError

__all__ = ["ORDER", "SUMMARY", "add_parser"]

ORDER = 15
SUMMARY = "check rule files (lint) and run rules against their test events (test)"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("rules", help=SUMMARY, description=SUMMARY)
    actions = p.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True
    names = ", ".join(sorted(BUILTIN))
    lint = actions.add_parser(
        "lint",
        help="report every problem of the rule files at once, with file:line",
        description="Load Falco and Sigma rule files as detect would, and report every "
        f"problem found (not only the first). PATH is a file, a directory or a rule set ({names}).",
    )
    lint.add_argument("paths", nargs="+", metavar="PATH")
    lint.set_defaults(run=_lint)
    test = actions.add_parser(
        "test",
        help="run rules against their test events (tests/NAME.match|nomatch.jsonl)",
        description="For each rule file DIR/NAME.yml with tests, every event of "
        "DIR/tests/NAME.match.jsonl must raise an alert of its rule and none of "
        "DIR/tests/NAME.nomatch.jsonl may (for a correlation: the match sequence raises one, "
        "the nomatch sequence none). Events are in the format of the rule's logsource: "
        "text formats (access logs) may use NAME.KIND.log, container logs a directory "
        "NAME.KIND/ laid out as /var/log/pods.",
    )
    test.add_argument("paths", nargs="+", metavar="PATH")
    test.add_argument(
        "--require", action="store_true", help="fail rule files that have no test events"
    )
    test.set_defaults(run=_test)


def _lint(args: argparse.Namespace) -> int:
    out = Console(highlight=False, soft_wrap=True)
    errors: list[RuleError] = []
    files = rule_files(args.paths)
    rules = load_rules(args.paths, errors=errors)
    for error in errors:
        out.print(f"[red]error[/red] {error}")
    for note in rules.notes:
        out.print(f"[dim]note {note}[/dim]")
    count = sum(len(v) for v in files.values())
    out.print(
        f"{count} file(s): {len(rules.rules)} rule(s), {len(rules.correlations)} "
        f"correlation(s), {len(errors)} error(s)"
    )
    return 1 if errors else 0


def _test(args: argparse.Namespace) -> int:
    out = Console(highlight=False, soft_wrap=True)
    results = run_rule_tests(args.paths, require=args.require)
    for r in results:
        mark = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
        out.print(f"{mark} {r.rule_file} {r.kind}: {r.detail}")
    failed = sum(not r.passed for r in results)
    out.print(f"{len(results)} test(s), {failed} failed")
    if not results:
        print("logwarden: no rule tests found", file=sys.stderr)
        return 1
    return 1 if failed else 0
