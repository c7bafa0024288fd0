"""Inclusion and consistency proofs from a ledger, and their check by a third party.

A proof is one JSON object that carries everything needed to check it offline:

- inclusion: ``index``, ``tree_size``, ``entry`` (base64 of the entry bytes: the leaf
  hash is SHA-256(0x00 || entry)), ``leaf_hash``, ``record`` (what ``entry`` decodes to,
  for people), ``path`` (the RFC 9162 inclusion path, bottom up), ``root`` and
  ``checkpoint`` (the signed checkpoint note of that tree);
- consistency: ``old_size``, ``new_size``, ``old_root``, ``new_root``, ``path`` (the
  RFC 9162 consistency proof) and both signed checkpoints.

Every member is checked: the entry must hash to the leaf hash, the record must be exactly
what the entry decodes to, and the sizes and roots must be the signed checkpoints'.

Hashes are base64, as in checkpoints. `check_proof` verifies one with trusted keys;
any RFC 9162 implementation can check the path with the same numbers. Standard library
and `cryptography` only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from logwarden.ledger import layout, merkle
from logwarden.ledger._checkpoints import load_local
from logwarden.ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from logwarden.ledger.layout import LedgerError, LedgerInfo, list_indexed
from logwarden.ledger.note import NoteError, Verifier, parse_note
from logwarden.ledger.report import Report
from logwarden.ledger.segments import Header, decode_entry

__all__ = [
    "FORMAT",
    "check_proof",
    "consistency",
    "entries",
    "find_audit_id",
    "inclusion",
    "inclusions",
    "ledger_checkpoints",
]

#: The ``format`` member of every proof.
FORMAT = "logwarden-proof 1"
_HEAD = struct.Struct(">I8s")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def entries(ledger: Path) -> Iterator[tuple[int, bytes, bytes]]:
    """Every entry of the ledger in order: (index, leaf hash, entry bytes).

    Raises LedgerError at the first damaged frame or segment: proofs are only made from a
    ledger that reads cleanly (run `logwarden verify` to learn more).
    """
    segments, _ = list_indexed(ledger / layout.SEGMENTS, layout.SEGMENT_SUFFIX)
    index = 0
    for first, path in segments:
        try:
            buf = path.read_bytes()
            header = Header.decode(buf)
        except OSError as exc:
            raise LedgerError(f"{path}: cannot read: {exc.strerror}") from exc
        except ValueError as exc:
            raise LedgerError(f"{path}: {exc}") from None
        if header.first != index or first != index:
            raise LedgerError(f"{path}: expected the segment of entry {index}")
        view, offset = memoryview(buf), header.length
        while offset < len(buf):
            if len(buf) - offset < _HEAD.size:
                raise LedgerError(f"{path}@{offset}: entry {index} is cut short")
            n, check = _HEAD.unpack_from(buf, offset)
            payload = view[offset + 12 : offset + 12 + n]
            h = hashlib.sha256(payload).digest()
            if h[:8] != check or len(payload) != n or not n or payload[0] != 0:
                raise LedgerError(f"{path}@{offset}: entry {index} is damaged")
            yield index, h, bytes(payload[1:])
            index += 1
            offset += 12 + n


def ledger_checkpoints(ledger: Path, keys: list[Verifier] | None) -> list[SignedCheckpoint]:
    """The ledger's valid checkpoints (its own key unless `keys`), oldest first."""
    info = LedgerInfo.read(ledger)
    trusted = keys or [Verifier.parse(info.key)]
    segments, _ = list_indexed(ledger / layout.SEGMENTS, layout.SEGMENT_SUFFIX)
    found = load_local(ledger, [f for f, _ in segments], trusted, info.origin, Report(str(ledger)))
    if not found:
        raise LedgerError(f"{ledger}: no valid signed checkpoint")
    return found


def _leaves(ledger: Path, size: int) -> list[bytes]:
    leaves = []
    for index, h, _ in entries(ledger):
        if index >= size:
            break
        leaves.append(h)
    if len(leaves) < size:
        raise LedgerError(f"{ledger}: holds {len(leaves)} entries, fewer than {size}")
    return leaves


def find_audit_id(ledger: Path, audit_id: str) -> list[int]:
    """Indices of the entries whose record is an audit event with this `auditID`."""
    needle = audit_id.encode()
    found = []
    for index, _, entry in entries(ledger):
        if needle not in entry:
            continue
        try:
            event = json.loads(decode_entry(entry).raw)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(event, dict) and event.get("auditID") == audit_id:
            found.append(index)
    return found


def inclusion(ledger: Path, index: int, checkpoint: SignedCheckpoint) -> dict[str, Any]:
    """The proof that entry `index` is in the tree of `checkpoint`."""
    return inclusions(ledger, [index], checkpoint)[0]


def inclusions(
    ledger: Path, indices: list[int], checkpoint: SignedCheckpoint
) -> list[dict[str, Any]]:
    """The proofs that the entries `indices` are in the tree of `checkpoint`, from one read
    of the ledger."""
    size = checkpoint.checkpoint.size
    for index in indices:
        if not 0 <= index < size:
            raise LedgerError(f"entry {index} is not in the tree of size {size}")
    wanted = set(indices)
    leaves: list[bytes] = []
    found: dict[int, bytes] = {}
    for i, h, data in entries(ledger):
        if i >= size:
            break
        leaves.append(h)
        if i in wanted:
            found[i] = data
    if len(leaves) < size:
        raise LedgerError(
            f"{ledger}: holds {len(leaves)} entries, fewer than the {size} of "
            f"{checkpoint.where} (run logwarden verify)"
        )
    if merkle.root(leaves) != checkpoint.checkpoint.root:
        raise LedgerError(f"the entries do not match {checkpoint.where} (run logwarden verify)")
    return [
        {
            "format": FORMAT,
            "type": "inclusion",
            "index": index,
            "tree_size": size,
            "leaf_hash": _b64(leaves[index]),
            "entry": _b64(found[index]),
            "record": _record(found[index]),
            "path": [_b64(p) for p in merkle.inclusion_proof(leaves, index, size)],
            "root": _b64(checkpoint.checkpoint.root),
            "checkpoint": checkpoint.note.decode(),
        }
        for index in indices
    ]


def _record(entry: bytes) -> dict[str, Any]:
    """The entry's envelope and raw record, for people (the proof checks `entry`)."""
    try:
        e = decode_entry(entry)
    except ValueError as exc:
        return {"malformed": str(exc)}
    out: dict[str, Any] = {
        "source": e.source,
        "instance": e.instance,
        "seq": e.seq,
        "received_ns": e.received_ns,
    }
    try:
        out["raw"] = e.raw.decode()
    except UnicodeDecodeError:
        out["raw_b64"] = _b64(e.raw)
    return out


def consistency(ledger: Path, old: SignedCheckpoint, new: SignedCheckpoint) -> dict[str, Any]:
    """The proof that the tree of `old` is a prefix of the tree of `new`."""
    m, n = old.checkpoint.size, new.checkpoint.size
    if m > n:
        raise LedgerError(f"the old checkpoint ({m}) is larger than the new one ({n})")
    leaves = _leaves(ledger, n)
    if merkle.root(leaves) != new.checkpoint.root:
        raise LedgerError(f"the entries do not match {new.where} (run logwarden verify)")
    return {
        "format": FORMAT,
        "type": "consistency",
        "old_size": m,
        "new_size": n,
        "old_root": _b64(old.checkpoint.root),
        "new_root": _b64(new.checkpoint.root),
        "path": [_b64(p) for p in merkle.consistency_proof(leaves, m, n)],
        "old_checkpoint": old.note.decode(),
        "new_checkpoint": new.note.decode(),
    }


def _base64(doc: dict[str, Any], key: str) -> bytes:
    try:
        return base64.b64decode(str(doc[key]), validate=True)
    except (KeyError, binascii.Error) as exc:
        raise NoteError(f"proof: {key} is missing or not base64") from exc


def _hash(doc: dict[str, Any], key: str) -> bytes:
    value = _base64(doc, key)
    if len(value) != 32:
        raise NoteError(f"proof: {key} is not a 32-byte hash")
    return value


def _int(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise NoteError(f"proof: {key} is missing or not a non-negative integer")
    return value


def _checkpoint(doc: dict[str, Any], key: str, keys: list[Verifier] | None) -> Checkpoint:
    text = doc.get(key)
    if not isinstance(text, str):
        raise NoteError(f"proof: {key} is missing")
    if keys:
        return open_checkpoint(text.encode(), keys, key).checkpoint
    return Checkpoint.parse(parse_note(text.encode())[0])


def _path(doc: dict[str, Any]) -> list[bytes]:
    path = doc.get("path")
    if not isinstance(path, list):
        raise NoteError("proof: path is missing")
    return [_hash({"p": p}, "p") for p in path]


def check_proof(doc: dict[str, Any], keys: list[Verifier] | None) -> str:
    """Check one proof; returns what it proves, raises NoteError saying why it fails.

    Without `keys` the checkpoint signatures are not checked (the math still is).
    """
    if doc.get("format") != FORMAT:
        raise NoteError(f"not a logwarden proof (format {doc.get('format')!r})")
    if doc.get("type") == "inclusion":
        return _check_inclusion(doc, keys)
    if doc.get("type") == "consistency":
        return _check_consistency(doc, keys)
    raise NoteError(f"unknown proof type {doc.get('type')!r}")


def _check_inclusion(doc: dict[str, Any], keys: list[Verifier] | None) -> str:
    ckpt = _checkpoint(doc, "checkpoint", keys)
    index, size = _int(doc, "index"), _int(doc, "tree_size")
    leaf = _hash(doc, "leaf_hash")
    if "entry" not in doc:
        raise NoteError("proof: entry is missing (an inclusion proof carries the entry it proves)")
    entry = _base64(doc, "entry")
    if merkle.leaf_hash(entry) != leaf:
        raise NoteError("proof: entry does not hash to leaf_hash")
    if "record" in doc:
        _check_record(doc["record"], entry)
    if size != ckpt.size:
        raise NoteError("proof: tree_size differs from the signed checkpoint's size")
    if _hash(doc, "root") != ckpt.root:
        raise NoteError("proof: root differs from the signed checkpoint's root")
    if not merkle.verify_inclusion(index, size, leaf, _path(doc), ckpt.root):
        raise NoteError(f"proof: the path does not lead from entry {index} to the root")
    return f"entry {index} is in the tree of size {size} of {ckpt.origin}"


def _check_record(record: object, entry: bytes) -> None:
    """`record` must be exactly what `entry` decodes to: every field, nothing more."""
    if not isinstance(record, dict):
        raise NoteError("proof: record is not a JSON object")
    expected = _record(entry)
    for key in [*expected, *(k for k in record if k not in expected)]:
        if key not in record:
            raise NoteError(f"proof: record.{key} is missing (the entry has it)")
        if key not in expected:
            raise NoteError(f"proof: record.{key} is not in the entry")
        mine, theirs = record[key], expected[key]
        if type(mine) is not type(theirs) or mine != theirs:
            raise NoteError(f"proof: record.{key} differs from what the entry holds")


def _check_consistency(doc: dict[str, Any], keys: list[Verifier] | None) -> str:
    old = _checkpoint(doc, "old_checkpoint", keys)
    new = _checkpoint(doc, "new_checkpoint", keys)
    for side, ckpt in (("old", old), ("new", new)):
        if _int(doc, f"{side}_size") != ckpt.size:
            raise NoteError(f"proof: {side}_size differs from the signed {side} checkpoint's size")
        if _hash(doc, f"{side}_root") != ckpt.root:
            raise NoteError(f"proof: {side}_root differs from the signed {side} checkpoint's root")
    if old.origin != new.origin:
        raise NoteError("proof: the checkpoints are of different logs")
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, _path(doc)):
        raise NoteError(f"proof: tree {old.size} is not a prefix of tree {new.size}")
    return f"the tree of size {old.size} is a prefix of the tree of size {new.size}"
