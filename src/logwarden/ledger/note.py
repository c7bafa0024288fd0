"""C2SP signed notes with Ed25519 (c2sp.org/signed-note, golang.org/x/mod/sumdb/note).

A signed note is a UTF-8 text ending in a newline, a blank line, and signature lines
``— <key name> <base64(key ID || signature)>``. The key ID is the first four bytes,
big-endian, of SHA-256(key name || 0x0A || 0x01 || 32-byte public key); the signature is
Ed25519 over the text (final newline included, blank line not).

Keys are written as sumdb/note writes them: a verifier key
``<name>+<key ID as 8 hex digits>+<base64(0x01 || public key)>`` and a signer key
``PRIVATE+KEY+<name>+<key ID>+<base64(0x01 || 32-byte seed)>``. Needs only the standard
library and `cryptography`: the offline verifier imports this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from logwarden.errors import LogwardenError

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "NoteError",
    "Signature",
    "Signer",
    "Verifier",
    "check_name",
    "generate",
    "key_id",
    "open_note",
    "parse_note",
    "sign",
]

#: The signature type byte of Ed25519 in key IDs and key encodings.
ALG_ED25519 = 0x01
#: Signature lines beyond this many make a note malformed (the spec asks for >= 16).
MAX_SIGNATURES = 100
_DASH = "\u2014 "


class NoteError(LogwardenError):
    """A key or note is malformed, or a note does not verify; the message says how."""


def check_name(name: str) -> str:
    """Return `name` if it is a valid key name (non-empty, no spaces, no '+')."""
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"invalid key name {name!r}: must be non-empty, without spaces or '+'")
    if any(ord(c) < 0x20 for c in name):
        raise NoteError(f"invalid key name {name!r}: control characters")
    return name


def key_id(name: str, public: bytes) -> int:
    """The key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public)[:4], big-endian."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()
    return int(struct.unpack(">I", digest[:4])[0])


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"{what}: invalid base64") from exc


@dataclass(frozen=True)
class Verifier:
    """A public Ed25519 key under a name: verifies signatures made by the matching Signer."""

    name: str
    id: int
    public: bytes

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """Parse a verifier key ``name+hash+base64(0x01 || public key)``."""
        parts = text.strip().split("+", 2)  # the base64 key may itself hold '+'
        if len(parts) != 3 or len(parts[1]) != 8:
            raise NoteError(f"malformed verifier key {text.strip()!r}: want NAME+HASH+KEY")
        name = check_name(parts[0])
        try:
            kid = int(parts[1], 16)
        except ValueError:
            raise NoteError(f"malformed verifier key: key ID {parts[1]!r} is not hex") from None
        raw = _b64decode(parts[2], "malformed verifier key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("unsupported verifier key: only Ed25519 (type 0x01) is supported")
        if key_id(name, raw[1:]) != kid:
            raise NoteError(f"malformed verifier key for {name!r}: key ID does not match the key")
        return cls(name, kid, raw[1:])

    def encode(self) -> str:
        """The verifier key string."""
        raw = base64.b64encode(bytes([ALG_ED25519]) + self.public).decode()
        return f"{self.name}+{self.id:08x}+{raw}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether `signature` (without the key ID) is this key's signature of `text`."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, text)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private Ed25519 key under a name. Its text form must stay out of every ledger."""

    name: str
    id: int
    seed: bytes

    @classmethod
    def parse(cls, text: str) -> Signer:
        """Parse a signer key ``PRIVATE+KEY+name+hash+base64(0x01 || seed)``."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or len(parts[3]) != 8:
            raise NoteError("malformed signer key: want PRIVATE+KEY+NAME+HASH+KEY")
        name = check_name(parts[2])
        raw = _b64decode(parts[4], "malformed signer key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("unsupported signer key: only Ed25519 (type 0x01) is supported")
        signer = cls(name, key_id(name, _public_of(raw[1:])), raw[1:])
        if f"{signer.id:08x}" != parts[3].lower():
            raise NoteError(f"malformed signer key for {name!r}: key ID does not match the key")
        return signer

    def encode(self) -> str:
        """The signer key string (secret)."""
        raw = base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.id:08x}+{raw}"

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.id, _public_of(self.seed))

    def sign(self, text: bytes) -> bytes:
        """The Ed25519 signature of `text` (without the key ID)."""
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(text)

    def __repr__(self) -> str:  # never show the seed in logs or tracebacks
        return f"Signer(name={self.name!r}, id={self.id:08x})"


def _public_of(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def generate(name: str) -> Signer:
    """A new random Ed25519 signer key named `name`."""
    check_name(name)
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    return Signer(name, key_id(name, _public_of(seed)), seed)


@dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    id: int
    signature: bytes

    def line(self) -> str:
        raw = base64.b64encode(struct.pack(">I", self.id) + self.signature).decode()
        return f"{_DASH}{self.name} {raw}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("malformed note: text does not end in a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("malformed note: control characters other than newline")


def sign(text: str, *signers: Signer) -> bytes:
    """The signed note of `text` by `signers`, as UTF-8 bytes."""
    _check_text(text)
    data = text.encode()
    lines = [Signature(s.name, s.id, s.sign(data)).line() for s in signers]
    return (text + "\n" + "".join(lines)).encode()


def parse_note(note: bytes) -> tuple[str, list[Signature]]:
    """Split a signed note into its text and signature lines (nothing verified yet)."""
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("malformed note: not UTF-8") from None
    cut = decoded.rfind("\n\n")
    if cut < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, block = decoded[: cut + 1], decoded[cut + 2 :]
    _check_text(text)
    if not block.endswith("\n"):
        raise NoteError("malformed note: signature block does not end in a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in block):
        raise NoteError("malformed note: control characters in the signatures")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return text, [_parse_signature(line) for line in lines]


def _parse_signature(line: str) -> Signature:
    if not line.startswith(_DASH):
        raise NoteError(f"malformed note: signature line {line[:40]!r} does not start with '— '")
    name, sep, b64 = line[len(_DASH) :].partition(" ")
    if not sep or " " in b64:
        raise NoteError(f"malformed note: signature line {line[:40]!r}")
    check_name(name)
    raw = _b64decode(b64, f"malformed note: signature of {name!r}")
    if len(raw) < 5:
        raise NoteError(f"malformed note: signature of {name!r} is too short")
    return Signature(name, int(struct.unpack(">I", raw[:4])[0]), raw[4:])


def open_note(note: bytes, verifiers: list[Verifier]) -> tuple[str, list[Verifier]]:
    """Verify `note` against known keys; return its text and the keys that signed it.

    Signatures by unknown keys (name and ID not both known) are ignored. A signature by a
    known key that fails makes the whole note fail, and so does a note no known key signed.
    """
    text, sigs = parse_note(note)
    data = text.encode()
    known = {(v.name, v.id): v for v in verifiers}
    good: list[Verifier] = []
    for sig in sigs:
        v = known.get((sig.name, sig.id))
        if v is None or v in good:
            continue
        if not v.verify(data, sig.signature):
            raise NoteError(f"invalid signature by key {v.name}+{v.id:08x}")
        good.append(v)
    if not good:
        names = ", ".join(f"{s.name}+{s.id:08x}" for s in sigs)
        raise NoteError(f"not signed by a trusted key (signed by: {names})")
    return text, good
