"""`logwarden scan`: find inadequate logging (K05) in manifests, configs and live clusters."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.markup import escape

from logwarden.errors import UsageError
from logwarden.posture import Live, scan
from logwarden.posture.checks import severity_rank
from logwarden.posture.fix import write_fixes
from logwarden.posture.report import counts_text, print_table, to_json
from logwarden.posture.sarif import to_sarif
from logwarden.records import SEVERITIES
from logwarden.rejects import Rejects

__all__ = ["EXIT_FAIL_ON", "ORDER", "SUMMARY", "add_parser", "run"]

ORDER = 60
SUMMARY = "find inadequate logging in manifests, configs and live clusters (K05 posture)"

#: exit status when --fail-on found a finding at or above its severity
EXIT_FAIL_ON = 3

_HELP = """\
Scan Kubernetes manifests (multi-document YAML, JSON, List kinds, Helm and kustomize
output), kube-apiserver static pods, kubeadm and kubelet configuration, audit policies,
nginx configuration (files, ConfigMaps, ingress-nginx), Dockerfiles, docker-compose,
daemon.json, Terraform and cloud JSON (EKS, AKS, GKE) for inadequate logging; with
--live, also the cluster of the current kubeconfig context (read-only list calls).

Output: --format table (the default on a terminal) groups findings by severity;
--format json (the default otherwise) is a list of findings; --format sarif is SARIF
2.1.0 for code scanning. --fix DIR writes patched copies and a diff to DIR, never
touching the originals unless --fix-in-place is given.

Exit status: 0 when it ran, 1 when some input could not be read (reported as
file:line: reason), 2 on usage errors, 3 when --fail-on found a finding at or above
that severity.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "scan",
        help=SUMMARY,
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories to scan")
    p.add_argument("--live", action="store_true", help="also scan the live cluster (read-only)")
    p.add_argument(
        "--kubeconfig", metavar="FILE", help="kubeconfig for --live (default: as kubectl)"
    )
    p.add_argument("--context", metavar="NAME", help="kubeconfig context for --live")
    p.add_argument("--format", "-f", choices=("table", "json", "sarif"), help="output format")
    p.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        metavar="SEVERITY",
        help="exit 3 when a finding is at least this severe (" + ", ".join(SEVERITIES) + ")",
    )
    p.add_argument(
        "--fix", metavar="DIR", help="write suggested patches (copies and a diff) to DIR"
    )
    p.add_argument(
        "--fix-in-place", action="store_true", help="with --fix, also rewrite the original files"
    )
    p.add_argument("--verbose", "-v", action="store_true", help="table: show why and how to fix")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.paths and not args.live:
        raise UsageError("nothing to scan: name files or directories, or use --live")
    if (args.kubeconfig or args.context) and not args.live:
        raise UsageError("--kubeconfig and --context need --live")
    if args.fix_in_place and not args.fix:
        raise UsageError("--fix-in-place needs --fix DIR (where the diff is written)")
    fmt = args.format or ("table" if sys.stdout.isatty() else "json")
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    rejects = Rejects(log=sys.stderr)
    started = time.perf_counter()
    live = Live(args.kubeconfig, args.context) if args.live else None
    result = scan(args.paths, live=live, rejects=rejects)
    seconds = time.perf_counter() - started
    findings = result.findings
    for note in result.inventory.notes:  # notes name files: escaped, not read as markup
        err.print(f"[dim]note: {escape(note)}[/dim]")
    if fmt == "table":
        out = Console(highlight=False, soft_wrap=False)
        print_table(out, findings, result.inventory, seconds, args.verbose)
    else:
        data = (
            to_json(findings)
            if fmt == "json"
            else (json.dumps(to_sarif(findings), indent=2) + "\n").encode()
        )
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        err.print(
            f"logwarden: {len(findings)} findings ({counts_text(findings)}) in "
            f"{result.inventory.files:,} files, {rejects.count} input errors, {seconds:.2f} s"
        )
    if args.fix:
        fixed = write_fixes(findings, args.fix, in_place=args.fix_in_place)
        err.print(
            f"logwarden: --fix: {fixed.fixed} findings patched in {len(fixed.written)} files"
            + (f"; diff in {escape(fixed.diff_path)}" if fixed.diff_path else "")
        )
    if args.fail_on:
        limit = severity_rank(args.fail_on)
        if any(severity_rank(f.severity) <= limit for f in findings):
            return EXIT_FAIL_ON
    return 1 if rejects.count else 0
