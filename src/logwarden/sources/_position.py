"""The saved position of a tailing source: which file, where in it, and which record.

A position names its file by identity, not by name, because rotation renames files and
compression replaces them: the device and inode it had, and the first bytes of its
(decompressed) content, kept as their length and SHA-256 (the "head"); and the last bytes
before the position (the "last"), so that a file rewritten in place, or another one that
only starts the same way, is not taken for it. Saving is atomic:
a temporary file is written and fsynced, renamed over the old one, and the directory
fsynced, so a crash leaves either the old position or the new one.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TypeVar

import msgspec

from logwarden._durable import write_atomic
from logwarden.errors import InputError

__all__ = [
    "HEAD_BYTES",
    "Position",
    "head_digest",
    "load_position",
    "load_state",
    "pending_lag",
    "save_position",
    "save_state",
    "state_path",
]

S = TypeVar("S", bound=msgspec.Struct)

#: How many first bytes of a file identify it.
HEAD_BYTES = 1024


class Position(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a source stands: the last record emitted and durable, and the file it is in.

    `offset` and `line` are the byte offset (in the decompressed content) just after the
    last line consumed up to that record, and that line's number. `after_ns` is a lower
    bound of the rotation time of the file, so that newer files can be told from older
    ones even when this file is gone. `last_len` and `last_sha256` are the length and
    digest of the bytes (up to 1 KiB) just before `offset` (0 and "" in a state saved
    before they were kept: then they are not checked).
    """

    version: int = 1
    seq: int
    path: str
    device: int
    inode: int
    head_len: int
    head_sha256: str
    offset: int
    line: int
    after_ns: int
    last_len: int = 0
    last_sha256: str = ""


def head_digest(head: bytes) -> str:
    """The SHA-256 (hex) of a file's first bytes."""
    return hashlib.sha256(head).hexdigest()


def state_path(state_dir: Path, kind: str, source_id: str) -> Path:
    """The state file of one source instance in `state_dir`."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", source_id)
    return state_dir / f"{kind}.{safe}.json"


def load_state(path: Path, kind: type[S]) -> S | None:
    """The state of type `kind` saved at `path`, None if there is none; InputError if it
    cannot be read or is damaged (every live source keeps its state this way)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"cannot read the state file {path}: {exc.strerror}") from exc
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.DecodeError as exc:
        raise InputError(
            f"the state file {path} is damaged ({exc}); remove it only if the ledger holds "
            "no records of this source"
        ) from exc


def load_position(path: Path) -> Position | None:
    """The position saved at `path`, None if there is none; InputError if it is unusable."""
    return load_state(path, Position)


def save_state(path: Path, state: msgspec.Struct) -> None:
    """Write `state` to `path` atomically and durably (after `emit` returned)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, msgspec.json.encode(state) + b"\n")
    except OSError as exc:
        raise InputError(f"cannot save the state file {path}: {exc.strerror}") from exc


def save_position(path: Path, position: Position) -> None:
    """Write `position` to `path` atomically and durably."""
    save_state(path, position)


def pending_lag(
    state_file: Path, source_id: str, saved_seq: int, pending: int, resume_seq: int, what: str
) -> int:
    """How many of a saved state's `pending` records the ledger holds, for a source that
    writes its batch as pending before handing it over: the state was saved with records
    up to `saved_seq` stored, and the ledger holds `resume_seq` of the source. InputError
    when the two cannot belong together (`what` names the records: "log events")."""
    lag = resume_seq - saved_seq
    if lag < 0 or lag > pending:
        held = "only " if lag < 0 else ""
        raise InputError(
            f"the state file {state_file} says records up to {saved_seq} of source "
            f"'{source_id}' are stored (and {pending} more may be), but the ledger holds "
            f"{held}{resume_seq}: the state and the ledger do not belong together (restored "
            f"from another copy?); refusing to skip or repeat {what}"
        )
    return lag
