"""Where a ledger keeps what: directory layout, file names, the ledger description file.

    LEDGER/
      ledger.txt                        "logwarden-ledger 1", origin, verifier key
      segments/<first index>.seg        entries, append-only; <first index> has 20 digits
      checkpoints/<first index>.chk     checkpoints signed while that segment was active
      torn/<file>.<offset>.torn         bytes a recovery cut off a torn tail (kept, reported)
      lock                              held (flock) by the one writer

    ANCHOR/
      segments/<first index>.seg        a copy of each sealed segment, written once
      checkpoints/<size>-<time>.ckpt    each signed checkpoint, written once as issued

The full byte layouts are in docs/ledger.md. Standard library only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from logwarden._durable import fsync_dir, write_atomic
from logwarden.errors import InputError

__all__ = [
    "CHECKPOINTS",
    "FORMAT_LINE",
    "LEDGER_FILE",
    "SEGMENTS",
    "TORN",
    "LedgerError",
    "LedgerInfo",
    "anchor_checkpoint_name",
    "fsync_dir",
    "index_name",
    "list_indexed",
    "write_atomic",
]

LEDGER_FILE = "ledger.txt"
SEGMENTS = "segments"
CHECKPOINTS = "checkpoints"
TORN = "torn"
LOCK = "lock"
SEGMENT_SUFFIX = ".seg"
STREAM_SUFFIX = ".chk"
ANCHOR_SUFFIX = ".ckpt"
#: The first line of ledger.txt.
FORMAT_LINE = "logwarden-ledger 1"
_INDEXED = re.compile(r"([0-9]{20})(\.[a-z]+)\Z")
_ANCHORED = re.compile(r"([0-9]{20})-([0-9]{20})\.ckpt\Z")


class LedgerError(InputError):
    """A ledger or anchor cannot be used as it is; the message names the file."""


def index_name(first: int, suffix: str) -> str:
    """The file name of the segment or checkpoint stream starting at entry `first`."""
    return f"{first:020d}{suffix}"


def anchor_checkpoint_name(size: int, time_ns: int) -> str:
    """The anchor file name of a checkpoint of `size` issued at `time_ns`."""
    return f"{size:020d}-{time_ns:020d}{ANCHOR_SUFFIX}"


def parse_anchor_name(name: str) -> tuple[int, int] | None:
    m = _ANCHORED.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def list_indexed(directory: Path, suffix: str) -> tuple[list[tuple[int, Path]], list[Path]]:
    """Files named ``<20 digits><suffix>`` in `directory`, by index, and any other files."""
    found: list[tuple[int, Path]] = []
    strays: list[Path] = []
    if not directory.is_dir():
        return found, strays
    for entry in sorted(os.listdir(directory)):
        m = _INDEXED.match(entry)
        if m and m.group(2) == suffix:
            found.append((int(m.group(1)), directory / entry))
        elif not entry.endswith(".tmp"):
            strays.append(directory / entry)
    found.sort()
    return found, strays


@dataclass(frozen=True)
class LedgerInfo:
    """The contents of ledger.txt: the log's origin line and its verifier key."""

    origin: str
    key: str

    def encode(self) -> bytes:
        return f"{FORMAT_LINE}\norigin {self.origin}\nkey {self.key}\n".encode()

    @classmethod
    def read(cls, ledger: Path) -> LedgerInfo:
        path = ledger / LEDGER_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise LedgerError(f"{ledger}: not a ledger (no {LEDGER_FILE})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise LedgerError(f"{path}: cannot read: {exc}") from exc
        fields = dict(line.partition(" ")[::2] for line in lines[1:])
        if not lines or lines[0] != FORMAT_LINE or not fields.get("origin") or "key" not in fields:
            raise LedgerError(f"{path}:1: not a logwarden ledger description ({FORMAT_LINE!r})")
        return cls(fields["origin"], fields["key"])
