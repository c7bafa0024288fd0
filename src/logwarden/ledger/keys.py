"""Key files: where the signing key lives, how key pairs are written and keys are read.

The signing key is a file holding one sumdb/note signer key (``PRIVATE+KEY+...``),
created with mode 0600 by `logwarden keygen`; its path is configurable and it is never
written into a ledger. The verifier key goes beside it as ``<path>.pub``, and is what
anyone checking a ledger passes to ``logwarden verify --key``. Standard library and
`cryptography` only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from logwarden.errors import UsageError
from logwarden.ledger.note import NoteError, Signer, Verifier

__all__ = ["default_key_path", "load_signer", "load_verifiers", "write_key_pair"]


def default_key_path() -> Path:
    """``$XDG_CONFIG_HOME/logwarden/ledger.key`` (``~/.config/...`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "logwarden" / "ledger.key"


def write_key_pair(signer: Signer, path: Path, *, force: bool = False) -> Path:
    """Write the signer key to `path` (mode 0600) and the verifier key to `path`.pub.

    Refuses to replace an existing key unless `force`. Returns the verifier key's path.
    """
    pub = path.with_name(path.name + ".pub")
    for target in (path, pub):
        if target.is_dir():
            raise UsageError(f"{target}: is a directory; give the path of the key file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{path}: {path.parent} is not a directory") from None
    except OSError as exc:
        raise UsageError(f"{path.parent}: cannot create the directory: {exc.strerror}") from exc
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise UsageError(f"{path}: a key already exists (use --force to replace it)") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (signer.encode() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        pub.write_text(signer.verifier().encode() + "\n", encoding="ascii")
    except OSError as exc:
        if not force:  # the key was made just now: leave nothing behind
            path.unlink(missing_ok=True)
        raise UsageError(f"{pub}: cannot write: {exc.strerror}") from exc
    return pub


def load_signer(path: Path) -> Signer:
    """Read a signer key file; refuses one that others can read."""
    try:
        st = os.stat(path)
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no signing key (create one with 'logwarden keygen --out {path}')"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the signing key: {exc}") from exc
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"{path}: the signing key is readable by others (chmod 600 it)")
    try:
        return Signer.parse(text)
    except NoteError as exc:
        raise UsageError(f"{path}: {exc}") from None


def load_verifiers(specs: list[str]) -> list[Verifier]:
    """Verifier keys from `specs`: each a verifier key string or a file of them, one a line."""
    keys: list[Verifier] = []
    for spec in specs:
        if os.path.exists(spec):
            try:
                lines = Path(spec).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"{spec}: cannot read: {exc}") from exc
            where = [(f"{spec}:{i}", line) for i, line in enumerate(lines, 1) if line.strip()]
            if not where:
                raise UsageError(f"{spec}: no verifier key in the file")
        else:
            where = [("--key", spec)]
        for origin, text in where:
            if text.startswith("PRIVATE+KEY+"):
                raise UsageError(f"{origin}: this is a private key; pass the .pub verifier key")
            try:
                keys.append(Verifier.parse(text))
            except NoteError as exc:
                raise UsageError(f"{origin}: {exc}") from None
    return keys
