"""`logwarden ledger import`: append the records of log files to a ledger."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from logwarden.errors import UsageError
from logwarden.ledger.keys import default_key_path, load_signer
from logwarden.ledger.writer import FSYNC_POLICIES, LedgerWriter, WriterOptions

__all__ = ["ORDER", "SUMMARY", "add_parser", "run"]

ORDER = 30
SUMMARY = "build a tamper-evident ledger from log files (backfill)"
_BATCH = 1024

_HELP = """\
Append every event of the given log files (the inputs 'logwarden detect' reads: JSON
lines, EventList documents, gzip, directories of rotated logs, '-' for stdin) to LEDGER,
creating it if needed. Each record is stored as received with its envelope (source,
file, sequence number in the file, receive time); checkpoints are signed with --key
every second, after each file and at the end. Sealed segments and checkpoints are copied
to --anchor as they seal. Check the result with 'logwarden verify LEDGER --key PUB'.
Exit status: 0 when it ran, 1 when the input had errors, 2 on usage errors.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("ledger", help=SUMMARY, description="Work with tamper-evident ledgers.")
    cmds = p.add_subparsers(dest="ledger_command", metavar="COMMAND", title="commands")
    cmds.required = True
    imp = cmds.add_parser(
        "import",
        help="append log files to a ledger",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("ledger", metavar="LEDGER", help="ledger directory (created if missing)")
    imp.add_argument("files", nargs="+", metavar="FILE", help="log files or directories")
    imp.add_argument("--anchor", metavar="DIR", help="copy sealed segments and checkpoints here")
    imp.add_argument(
        "--key", metavar="KEY", help=f"signing key file (default: {default_key_path()})"
    )
    imp.add_argument("--origin", help="checkpoint origin line of a new ledger (default: key name)")
    imp.add_argument(
        "--fsync",
        choices=FSYNC_POLICIES,
        default="always",
        help="always: each batch is synced before it counts (default); checkpoint: sync "
        "once per checkpoint",
    )
    imp.add_argument("--segment-mb", type=int, default=64, metavar="MB", help="segment size")
    imp.add_argument("--rejects", metavar="FILE", help="keep rejected input units in FILE")
    imp.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from logwarden.normalize import k8s_audit  # msgspec: kept off the verifier's imports
    from logwarden.rejects import Rejects
    from logwarden.sources.files import FileSource

    key = Path(args.key) if args.key else default_key_path()
    signer = load_signer(key)
    ledger = Path(args.ledger).resolve()
    if key.resolve().is_relative_to(ledger):
        raise UsageError("the signing key must not be inside the ledger directory")
    if args.segment_mb < 1:
        raise UsageError("--segment-mb must be at least 1")
    options = WriterOptions(fsync=args.fsync, segment_bytes=args.segment_mb << 20)
    with ExitStack() as stack:
        keep = _open_rejects(args.rejects, stack)
        rejects = Rejects(log=sys.stderr, keep=keep)
        source = FileSource(args.files, k8s_audit.FORMAT, rejects)
        writer = stack.enter_context(
            LedgerWriter(ledger, signer, origin=args.origin, anchor=args.anchor, options=options)
        )
        for line in writer.repairs:
            print(f"logwarden: repaired: {line}", file=sys.stderr)
        first = writer.size
        started = time.perf_counter()
        emit, flush = _batcher(writer)
        source.run(emit)
        flush()
    seconds = time.perf_counter() - started
    for problem in writer.problems:
        print(f"logwarden: anchor: {problem}", file=sys.stderr)
    added = writer.size - first
    entries = f" (entries {first:,}..{writer.size - 1:,})" if added else ""
    print(
        f"logwarden: appended {added:,} records from {len(source.inputs):,} files to "
        f"{ledger}{entries}, {rejects.count:,} rejected, in {seconds:.2f} s",
        file=sys.stderr,
    )
    return 1 if rejects.count or writer.problems else 0


def _open_rejects(path: str | None, stack: ExitStack) -> IO[bytes] | None:
    from logwarden.rejects import open_file

    if not path:
        return None
    try:
        return stack.enter_context(open_file(path))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from exc


def _batcher(writer: LedgerWriter) -> tuple[Callable[[Any], None], Callable[[], None]]:
    """Batch records for the writer, with a checkpoint whenever the input file changes."""
    batch: list[Any] = []
    current: list[str] = []

    def append() -> None:
        if batch:
            writer.append_records(batch)
            batch.clear()

    def flush() -> None:
        append()
        if current:
            writer.checkpoint()

    def emit(record: Any) -> None:
        if current and record.instance != current[0]:
            flush()
        current[:] = [record.instance]
        batch.append(record)
        if len(batch) >= _BATCH:
            append()

    return emit, flush
