"""`logwarden detect`: offline hunting over audit log files with Falco rules."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

import msgspec
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from logwarden.detect.engine import MATCH_MODES, Engine
from logwarden.detect.rulesets import BUILTIN, DEFAULT, load_rules
from logwarden.detect.stage import DetectStage
from logwarden.detect.suppression import Suppressor
from logwarden.errors import UsageError
from logwarden.normalize import FORMATS, k8s_audit
from logwarden.records import FALCO_PRIORITIES, SEVERITY_STYLE, Alert, parse_duration
from logwarden.rejects import Rejects
from logwarden.rejects import open_file as open_rejects
from logwarden.sources.files import STDIN, FileSource

__all__ = ["ORDER", "SUMMARY", "add_parser", "run"]

ORDER = 10
SUMMARY = "hunt through the K05 sources' logs with the K05 pack, Falco and Sigma rules"

_PROGRESS_MIN_BYTES = 32 << 20
_WRITE_BYTES = 64 << 10  # JSON-lines output is written in blocks of this size
_HELP = """\
Read Kubernetes audit logs (JSON lines of audit.k8s.io/v1 or v1beta1 Events, EventList
documents, JSON arrays, gzip files, directories of rotated logs, or '-' for stdin; several
files are read merged in event-time order) and report what the rules detect, as Falco
would. --input reads the other K05 sources
instead: {inputs}. Cloud providers' audit logs
(aks_audit, eks_audit, gke_audit) are also read as Kubernetes audit Events, so every
audit rule applies to them.

--rules takes a rule set name or a path, and can be repeated; later files override
earlier ones. Rule sets shipped with logwarden: {builtin}. Default: {default}.

Output: --format table (the default on a terminal) lists alerts and a summary;
--format jsonl (the default otherwise) writes one JSON object per alert to stdout and a
one-line summary to stderr. Exit status: 0 when it ran, 1 when the input had errors
(malformed lines are reported as file:line: reason), 2 on usage errors.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "detect",
        help=SUMMARY,
        description=_HELP.format(
            builtin=", ".join(sorted(BUILTIN)),
            default=", ".join(DEFAULT),
            inputs=", ".join(sorted(FORMATS)),
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="log files or directories ('-' = stdin)"
    )
    p.add_argument(
        "--rules",
        "-r",
        action="append",
        metavar="PATH",
        help="rule set name or rules file/directory (repeatable)",
    )
    p.add_argument(
        "--input",
        "-i",
        choices=sorted(FORMATS),
        default=k8s_audit.SOURCE,
        metavar="FORMAT",
        help=f"what the files hold (default {k8s_audit.SOURCE}): {', '.join(sorted(FORMATS))}",
    )
    p.add_argument("--format", "-f", choices=("table", "jsonl"), help="output format")
    p.add_argument(
        "--match",
        choices=MATCH_MODES,
        default="first",
        help="first: at most one alert per event from Falco rules, from the first that "
        "matches (Falco's default; Sigma rules each alert on their own); all: one alert per "
        "matching rule",
    )
    p.add_argument(
        "--rejects",
        metavar="FILE",
        help="also keep every rejected input unit in FILE as JSON lines (with its bytes)",
    )
    p.add_argument(
        "--suppress",
        metavar="DURATION",
        type=_duration,
        default=0,
        help="fold repeats of one alert within DURATION (30s, 5m, 1h) into one summary, for "
        "rules that set no window of their own (default: only rules that set one)",
    )
    p.add_argument(
        "--no-suppress", action="store_true", help="report every alert, even rules' repeats"
    )
    p.add_argument(
        "--lateness",
        metavar="DURATION",
        type=_duration,
        default=5_000_000_000,
        help="how far out of time order events may arrive and still count in correlation "
        "windows (default: 5s)",
    )
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p.set_defaults(run=run)


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass
class _Stats:
    events: int = 0
    alerts: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    suppressed: int = 0
    failed: int = 0


def run(args: argparse.Namespace) -> int:
    paths: list[str] = args.files or []
    if not paths:
        if sys.stdin.isatty():
            raise UsageError("no input: name log files or directories, or pipe logs to stdin")
        paths = [STDIN]
    if paths.count(STDIN) > 1:
        raise UsageError("'-' (stdin) can be given only once")
    rules = load_rules(args.rules or list(DEFAULT))
    fmt = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for note in rules.notes:
        err.print(f"[dim]note: {note}[/dim]")
    engine = Engine(
        rules.rules, correlations=rules.correlations, match=args.match, lateness_ns=args.lateness
    )
    suppressor = None if args.no_suppress else Suppressor.for_rules(rules.rules, args.suppress)

    with ExitStack() as stack:
        keep: IO[bytes] | None = None
        if args.rejects:
            try:
                keep = stack.enter_context(open_rejects(args.rejects))
            except OSError as exc:
                raise UsageError(f"cannot write {args.rejects}: {exc.strerror}") from exc
        rejects = Rejects(log=sys.stderr, keep=keep)
        source = FileSource(paths, FORMATS[args.input], rejects)
        out = Console(highlight=False, soft_wrap=True) if fmt == "table" else None
        progress = _progress(source, args.no_progress)
        if progress is not None:
            stack.enter_context(progress)
        stats = _Stats()
        write = _alert_writer(fmt, out, progress, stack)
        stage = DetectStage(engine, _counted(write, stats), suppressor)
        started = time.perf_counter()
        source.run(stage.record, progress=_ticker(progress))
        stage.finish()
        if suppressor is not None:
            stats.suppressed = suppressor.suppressed
        stats.failed = stage.errors
        stats.seconds = time.perf_counter() - started
    stats.events = source.events
    stats.alerts = sum(stats.by_rule.values())
    if fmt == "table":
        assert out is not None
        _print_summary(out, stats, source, rejects, engine)
    else:
        _print_line_summary(err, stats, source, rejects)
    return 1 if rejects.count or stats.failed else 0


def _counted(write: Callable[[Alert], None], stats: _Stats) -> Callable[[Alert], None]:
    by_rule = stats.by_rule

    def counted(alert: Alert) -> None:
        rule = alert.rule
        by_rule[rule] = by_rule.get(rule, 0) + 1
        write(alert)

    return counted


def _alert_writer(
    fmt: str, out: Console | None, progress: Progress | None, stack: ExitStack
) -> Callable[[Alert], None]:
    if fmt == "jsonl":
        # alerts are encoded into one buffer, written in blocks and when the run ends
        encode_into = msgspec.json.Encoder().encode_into
        write = sys.stdout.buffer.write
        buffer = bytearray()

        def flush() -> None:
            if buffer:
                write(buffer)
                buffer.clear()
            sys.stdout.buffer.flush()

        stack.callback(flush)

        def jsonl(alert: Alert) -> None:
            encode_into(alert, buffer, -1)
            buffer.extend(b"\n")
            if len(buffer) >= _WRITE_BYTES:
                write(buffer)
                buffer.clear()

        return jsonl
    assert out is not None
    console = out
    if progress is not None and _same_terminal():
        console = progress.console

    def table(alert: Alert) -> None:
        output = alert.output
        # a Sigma alert's text starts with the rule's title: show the title once
        rest = output[len(alert.rule) :] if output.startswith(alert.rule) else ": " + output
        console.print(
            Text.assemble(
                (alert.time[:23].replace("T", " ") + " ", "dim"),
                (f"{alert.priority:<13} ", SEVERITY_STYLE[alert.severity]),
                (alert.rule, "bold"),
                rest,
                (f" [rule by {alert.author}]" if alert.author else "", "dim"),
            )
        )

    return table


def _same_terminal() -> bool:
    try:
        return os.ttyname(1) == os.ttyname(2)
    except OSError:
        return False


def _progress(source: FileSource, disabled: bool) -> Progress | None:
    if disabled or not sys.stderr.isatty() or source.total_bytes < _PROGRESS_MIN_BYTES:
        return None
    progress = Progress(
        TextColumn("reading"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    progress.add_task("read", total=source.total_bytes)
    return progress


def _ticker(progress: Progress | None) -> Callable[[int], None] | None:
    if progress is None:
        return None
    task = progress.task_ids[0]

    def tick(done: int) -> None:
        progress.update(task, completed=done)

    return tick


def _rate(stats: _Stats) -> str:
    if stats.seconds <= 0:
        return "-"
    return f"{stats.events / stats.seconds:,.0f}"


def _print_summary(
    out: Console, stats: _Stats, source: FileSource, rejects: Rejects, engine: Engine
) -> None:
    order = {p: i for i, p in enumerate(FALCO_PRIORITIES)}
    priority = {rule.name: rule.priority for rule in engine.rules}
    priority.update((corr.name, corr.priority) for corr in engine.correlations)
    if stats.by_rule:
        table = Table(title="Alerts by rule", title_justify="left", show_edge=False)
        table.add_column("rule")
        table.add_column("priority")
        table.add_column("alerts", justify="right")
        for rule, count in sorted(
            stats.by_rule.items(), key=lambda kv: (order[priority[kv[0]]], -kv[1], kv[0])
        ):
            table.add_row(rule, priority[rule], f"{count:,}")
        out.print()
        out.print(table)
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row("files read", f"{len(source.inputs):,}")
    summary.add_row("events read", f"{stats.events:,}")
    bad = rejects.count - len(source.unreadable)
    summary.add_row("malformed input", Text(f"{bad:,}", style="red" if bad else ""))
    if source.unreadable:
        summary.add_row("unreadable files", Text(f"{len(source.unreadable):,}", style="red"))
    summary.add_row("rules loaded", f"{len(engine.rules):,} (match: {engine.match})")
    if engine.correlations:
        summary.add_row("correlations", f"{len(engine.correlations):,}")
    if engine.late:
        summary.add_row("too late for correlation", f"{engine.late:,}")
    if engine.overflow:
        summary.add_row("correlation groups dropped", f"{engine.overflow:,}")
    if engine.crowded:
        summary.add_row("correlation values dropped", f"{engine.crowded:,}")
    summary.add_row("alerts", f"{stats.alerts:,}")
    if stats.failed:
        summary.add_row("events the rules failed on", Text(f"{stats.failed:,}", style="red"))
    if stats.suppressed:
        summary.add_row("repeats folded into summaries", f"{stats.suppressed:,}")
    summary.add_row("time", f"{stats.seconds:.2f} s")
    summary.add_row("events per second", _rate(stats))
    out.print()
    out.print(summary)


def _print_line_summary(err: Console, stats: _Stats, source: FileSource, rejects: Rejects) -> None:
    folded = f" ({stats.suppressed:,} repeats folded)" if stats.suppressed else ""
    if stats.failed:
        folded += f", {stats.failed:,} events the rules failed on (logged)"
    err.print(
        f"logwarden: {stats.events:,} events from {len(source.inputs):,} files, "
        f"{rejects.count:,} rejected, {stats.alerts:,} alerts{folded} in {stats.seconds:.2f} s "
        f"({_rate(stats)} events/s)"
    )
