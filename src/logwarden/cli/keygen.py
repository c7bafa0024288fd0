"""`logwarden keygen`: make the Ed25519 key pair that signs a ledger's checkpoints."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

from logwarden.errors import UsageError
from logwarden.ledger import note
from logwarden.ledger.keys import default_key_path, write_key_pair

__all__ = ["ORDER", "SUMMARY", "add_parser", "run"]

ORDER = 40
SUMMARY = "make a key pair for signing ledger checkpoints"

_HELP = """\
Write a new Ed25519 signing key (mode 0600) to --out and its verifier key to --out.pub,
and print the verifier key. Keys are in the golang.org/x/mod/sumdb/note format: the
private key file holds PRIVATE+KEY+NAME+ID+KEY, the verifier key NAME+ID+KEY. Give the
verifier key to whoever checks the ledger (logwarden verify --key). The private key is
never written into a ledger; keep it out of backups of the ledger.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "keygen",
        help=SUMMARY,
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--name",
        help="key name, and the ledger's origin line by default (no spaces or '+'; "
        "default: HOSTNAME/logwarden)",
    )
    p.add_argument(
        "--out", metavar="PATH", help=f"private key file (default: {default_key_path()})"
    )
    p.add_argument("--force", action="store_true", help="replace an existing key file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    name = args.name or f"{socket.gethostname() or 'localhost'}/logwarden"
    try:
        signer = note.generate(name)
    except note.NoteError as exc:
        raise UsageError(f"--name: {exc}") from None
    if args.out == "":
        raise UsageError("--out: empty path; give the file to write the signing key to")
    path = Path(args.out) if args.out is not None else default_key_path()
    pub = write_key_pair(signer, path, force=args.force)
    print(signer.verifier().encode())
    print(
        f"logwarden: wrote the signing key to {path} (mode 0600) and the verifier key to {pub}",
        file=sys.stderr,
    )
    return 0
