"""`logwarden verify-proof`: check inclusion and consistency proofs made by `prove`.

Like `verify`, this needs only the standard library and `cryptography`:
``python -m logwarden.cli.verify_proof PROOF --key PUB``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from logwarden.errors import UsageError
from logwarden.ledger.keys import load_verifiers
from logwarden.ledger.note import NoteError
from logwarden.ledger.prove import check_proof

__all__ = ["ORDER", "SUMMARY", "add_parser", "main", "run"]

ORDER = 24
SUMMARY = "check proofs printed by 'logwarden prove' (offline)"

_HELP = """\
Check each proof in PROOF (a file of JSON proofs, one per line, or '-' for stdin): the
checkpoint signatures against --key; for inclusion, that the entry is there and hashes
to the leaf hash and that the record shown is exactly what the entry holds; the sizes
and roots against the signed checkpoints; and the RFC 9162 inclusion or consistency
path. A failure names the member that is wrong. Without --key only the math is checked.
Exit status: 0 when every proof holds, 1 when one does not, 2 on usage errors.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "verify-proof",
        help=SUMMARY,
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _arguments(p)
    p.set_defaults(run=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "proof", metavar="PROOF", nargs="?", default="-", help="proof file ('-' = stdin)"
    )
    p.add_argument(
        "--key", action="append", metavar="PUB", help="trusted verifier key, or a file of them"
    )


def _documents(text: str, name: str) -> list[Any]:
    try:
        whole = json.loads(text)
        return whole if isinstance(whole, list) else [whole]
    except ValueError:
        pass
    docs = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                docs.append(json.loads(line))
            except ValueError as exc:
                raise UsageError(f"{name}:{i}: not JSON: {exc}") from None
    return docs


def run(args: argparse.Namespace) -> int:
    keys = load_verifiers(args.key or [])
    name = "<stdin>" if args.proof == "-" else args.proof
    try:
        if args.proof == "-":
            text = sys.stdin.read()
        else:
            with open(args.proof, encoding="utf-8") as fh:
                text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"{name}: cannot read: {reason}") from exc
    docs = _documents(text, name)
    if not docs:
        raise UsageError(f"{name}: no proof")
    if not keys:
        print("logwarden: no --key: checkpoint signatures are NOT checked", file=sys.stderr)
    failed = 0
    for i, doc in enumerate(docs, 1):
        try:
            if not isinstance(doc, dict):
                raise NoteError("not a JSON object")
            print(f"{name}:{i}: OK: {check_proof(doc, keys or None)}")
        except NoteError as exc:
            failed += 1
            print(f"{name}:{i}: FAILED: {exc}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """`verify-proof` on its own, for hosts with only the standard library and `cryptography`."""
    from logwarden.cli import main as logwarden

    return logwarden(["verify-proof", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
