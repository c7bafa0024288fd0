"""`logwarden prove`: inclusion proofs of records and consistency proofs of checkpoints."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from logwarden.errors import UsageError
from logwarden.ledger import prove
from logwarden.ledger.checkpoint import SignedCheckpoint, newest_of, open_checkpoint
from logwarden.ledger.keys import load_verifiers
from logwarden.ledger.layout import LedgerInfo
from logwarden.ledger.note import NoteError, Verifier

__all__ = ["ORDER", "SUMMARY", "add_parser", "run"]

ORDER = 22
SUMMARY = "prove a record is in a ledger, or that a checkpoint extends another"

_HELP = """\
Print proofs as JSON, one per line, that a third party checks with 'logwarden
verify-proof --key PUB' or any RFC 9162 implementation (hashes are base64):

  --index N          inclusion proof of entry N
  --audit-id ID      inclusion proof of every entry whose audit event has this auditID
  --consistency OLD [NEW]
                     consistency proof between two checkpoints, each a tree size of a
                     checkpoint in the ledger or a file holding a signed checkpoint
                     (NEW defaults to the newest)

Inclusion proofs are against the newest checkpoint, or the one of --size. Each proof
carries the signed checkpoint(s) it is checked against.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "prove",
        help=SUMMARY,
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("ledger", metavar="LEDGER", help="the ledger directory")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--index", type=_count, metavar="N", help="entry index")
    what.add_argument("--audit-id", metavar="ID", help="Kubernetes audit ID")
    what.add_argument("--consistency", nargs="+", metavar="CHECKPOINT", help="OLD [NEW]")
    p.add_argument(
        "--size", type=_count, metavar="N", help="prove against the checkpoint of size N"
    )
    p.add_argument(
        "--key",
        action="append",
        metavar="PUB",
        help="verifier key that checkpoints must be signed by (default: the ledger's own)",
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write the proofs to FILE")
    p.set_defaults(run=run)


def _count(text: str) -> int:
    """An entry index or tree size: an integer >= 0."""
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    ledger = Path(args.ledger)
    keys = load_verifiers(args.key or []) or None
    known = prove.ledger_checkpoints(ledger, keys)
    if args.consistency is not None:
        proofs = [_consistency(ledger, args.consistency, known, keys)]
    else:
        target = _by_size(known, args.size) if args.size is not None else newest_of(known)
        indices = (
            [args.index] if args.audit_id is None else prove.find_audit_id(ledger, args.audit_id)
        )
        if not indices:
            print(f"logwarden: no entry with auditID {args.audit_id!r}", file=sys.stderr)
            return 1
        proofs = prove.inclusions(ledger, indices, target)
    text = "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in proofs)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from exc
    else:
        sys.stdout.write(text)
    return 0


def _by_size(known: list[SignedCheckpoint], size: int) -> SignedCheckpoint:
    for signed in reversed(known):
        if signed.checkpoint.size == size:
            return signed
    sizes = sorted({s.checkpoint.size for s in known})
    shown = ", ".join(map(str, sizes[-10:]))
    raise UsageError(f"no checkpoint of size {size} in the ledger (newest sizes: {shown})")


def _consistency(
    ledger: Path, spec: list[str], known: list[SignedCheckpoint], keys: list[Verifier] | None
) -> dict[str, Any]:
    if len(spec) > 2:
        raise UsageError("--consistency takes OLD and optionally NEW")
    old = _checkpoint(ledger, spec[0], known, keys)
    new = _checkpoint(ledger, spec[1], known, keys) if len(spec) == 2 else newest_of(known)
    return prove.consistency(ledger, old, new)


def _checkpoint(
    ledger: Path, spec: str, known: list[SignedCheckpoint], keys: list[Verifier] | None
) -> SignedCheckpoint:
    if spec.isascii() and spec.isdigit():
        return _by_size(known, int(spec))
    try:
        data = Path(spec).read_bytes()
    except OSError as exc:
        raise UsageError(f"{spec}: neither a tree size nor a readable checkpoint file") from exc
    info = LedgerInfo.read(ledger)
    trusted = keys or [Verifier.parse(info.key)]
    try:
        signed = open_checkpoint(data, trusted, spec)
    except NoteError as exc:
        raise UsageError(f"{spec}: {exc}") from None
    if signed.checkpoint.origin != info.origin:
        origin = signed.checkpoint.origin
        raise UsageError(f"{spec}: a checkpoint of {origin!r}, not of this ledger")
    return signed
