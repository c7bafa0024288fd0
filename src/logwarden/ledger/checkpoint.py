"""C2SP tlog-checkpoint bodies (c2sp.org/tlog-checkpoint): what a ledger signs.

The note text is the origin line, the tree size in decimal (no leading zeros), the
base64 root hash, then extension lines. logwarden writes one extension line,
``time <nanoseconds since the epoch>``, the moment the checkpoint was issued: checkpoints
come at least every second while records arrive and on a heartbeat while idle, so a
frozen log shows as a stale time; and, after a restart that found unsigned entries,
``recovered <first> <last>``. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from logwarden.ledger import note
from logwarden.ledger.note import NoteError, Signer, Verifier

__all__ = [
    "RECOVERED_PREFIX",
    "TIME_PREFIX",
    "Checkpoint",
    "SignedCheckpoint",
    "newest_of",
    "open_checkpoint",
]

#: The extension line logwarden adds: ``time <ns>``.
TIME_PREFIX = "time "
#: The extension line of the first checkpoint after a restart that found entries no signed
#: checkpoint covered: ``recovered <first> <last>`` (entry numbers). A crash leaves such
#: entries, and so does someone who appends to the files: their signature was made when
#: the ledger was reopened, not when they were written.
RECOVERED_PREFIX = "recovered "


@dataclass(frozen=True)
class Checkpoint:
    """One tree head: the log's origin, its size and its root hash, plus extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The note text (body) of this checkpoint."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @property
    def time_ns(self) -> int | None:
        """The issue time from the ``time`` extension line, if there is one."""
        for ext in self.extensions:
            value = ext[len(TIME_PREFIX) :]
            if ext.startswith(TIME_PREFIX) and value.isascii() and value.isdigit():
                return int(value)
        return None

    @property
    def recovered(self) -> tuple[int, int] | None:
        """The entries (first, last) this checkpoint signed at a restart, if any."""
        for ext in self.extensions:
            if ext.startswith(RECOVERED_PREFIX):
                parts = ext[len(RECOVERED_PREFIX) :].split(" ")
                if len(parts) == 2 and all(p.isascii() and p.isdigit() for p in parts):
                    return int(parts[0]), int(parts[1])
        return None

    def sign(self, signer: Signer) -> bytes:
        """This checkpoint as a signed note."""
        return note.sign(self.text(), signer)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text; raises NoteError when it is not one."""
        if not text.endswith("\n"):
            raise NoteError("malformed checkpoint: text does not end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise NoteError("malformed checkpoint: want origin, size, root and no empty line")
        origin, size, root = lines[:3]
        if not size.isascii() or not size.isdigit() or (size != "0" and size[0] == "0"):
            raise NoteError(f"malformed checkpoint: tree size {size!r}")
        try:
            digest = base64.b64decode(root.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise NoteError("malformed checkpoint: root hash is not base64") from None
        if len(digest) != 32:
            raise NoteError("malformed checkpoint: root hash is not 32 bytes")
        return cls(origin, int(size), digest, tuple(lines[3:]))


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with the signed note it came from and where that note was found."""

    checkpoint: Checkpoint
    note: bytes
    where: str
    signers: tuple[str, ...]


def newest_of(checkpoints: list[SignedCheckpoint]) -> SignedCheckpoint:
    """The checkpoint of the largest tree, the latest of those (a list not empty)."""
    return max(checkpoints, key=lambda s: (s.checkpoint.size, s.checkpoint.time_ns or 0))


def open_checkpoint(data: bytes, verifiers: list[Verifier], where: str) -> SignedCheckpoint:
    """Verify the signed note `data` with `verifiers` and parse its checkpoint."""
    text, good = note.open_note(data, verifiers)
    ckpt = Checkpoint.parse(text)
    return SignedCheckpoint(ckpt, data, where, tuple(v.encode() for v in good))
