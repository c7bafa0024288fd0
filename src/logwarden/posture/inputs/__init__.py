"""The scan's file inputs: walk paths, recognise each file, parse it into the Inventory.

Recognised by name: YAML and JSON (`.yaml`, `.yml`, `.json`: Kubernetes manifests and
`List`s, kubeadm and kubelet configuration, audit policies, docker-compose, daemon.json,
cloud JSON), nginx configuration (`nginx.conf` and `.conf` files that read like nginx),
Dockerfiles (`Dockerfile`, `Dockerfile.*`, `*.dockerfile`, `Containerfile`), Terraform
(`.tf`), and shell scripts and systemd units (`.sh`, `.service`) for Docker's
`--log-driver none`. Hidden files and directories are skipped; a symbolic link to a
directory inside a tree is noted and not followed. A file (or directory) that cannot be
read or parsed is reported as ``file:line: reason`` and counted, and so is one that is
not a regular file (a FIFO would block, a device never end) or is larger than
`MAX_FILE_BYTES`; the scan goes on.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator

from logwarden._regular import NotRegular, TooLarge, read_regular
from logwarden.posture.inputs.dockerfile import read_dockerfile
from logwarden.posture.inputs.documents import read_documents
from logwarden.posture.inputs.nginx import NginxParser, looks_like_nginx
from logwarden.posture.model import Inventory, TextHit

__all__ = ["MAX_FILE_BYTES", "collect", "walk"]

#: larger files are reported and not read: parsed, a YAML file takes ~50 times its size
MAX_FILE_BYTES = 32 * 1024 * 1024
_YAML = (".yaml", ".yml", ".json")
_LOG_DRIVER_NONE = re.compile(r"--log-driver(?:=|\s+)[\"']?none\b")


def _reason(exc: OSError) -> str:
    return f"cannot read: {(exc.strerror or str(exc)).lower()}"


def walk(paths: Iterable[str], inv: Inventory) -> Iterator[str]:
    """Every file under `paths`, sorted within each directory; hidden entries skipped.
    Symbolic links to directories inside a tree are not followed (a link may loop or lead
    anywhere): each is noted, and scanned when named itself."""
    for path in paths:
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError as exc:  # missing, a broken link, a symlink loop, no permission
            inv.rejects.report(path, _reason(exc))
            continue
        if not is_dir:
            yield path
            continue

        def unreadable(exc: OSError) -> None:
            inv.rejects.report(str(exc.filename), _reason(exc))

        for root, dirs, files in os.walk(path, onerror=unreadable):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for link in (os.path.join(root, d) for d in dirs):
                if os.path.islink(link):
                    inv.notes.append(f"{link}: a symbolic link to a directory: not followed")
            for name in sorted(files):
                if not name.startswith("."):
                    yield os.path.join(root, name)


def _kind_of(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(_YAML):
        return "documents"
    if lower in ("dockerfile", "containerfile") or lower.startswith("dockerfile."):
        return "dockerfile"
    if lower.endswith(".dockerfile"):
        return "dockerfile"
    if lower.endswith(".tf"):
        return "terraform"
    if lower.endswith(".conf"):
        return "nginx"
    if lower.endswith((".sh", ".service")):
        return "text"
    return None


def collect(paths: Iterable[str], inv: Inventory) -> Inventory:
    """Parse every recognised file under `paths` into `inv`."""
    nginx = NginxParser()
    try:
        for path in walk(paths, inv):
            kind = _kind_of(os.path.basename(path))
            if kind is None:
                continue
            text = _read(path, inv)
            if text is None:
                continue
            inv.files += 1
            if kind == "documents":
                read_documents(path, text, inv, nginx)
            elif kind == "nginx":
                if looks_like_nginx(text):
                    nginx.add_file(path, inv)
            elif kind == "dockerfile":
                read_dockerfile(path, text, inv)
            elif kind == "terraform":
                _terraform(path, text, inv)
            else:
                _text(path, text, inv)
    finally:
        nginx.close()
    return inv


def _read(path: str, inv: Inventory) -> str | None:
    """The text of `path`, or None when it is reported: not a regular file (a FIFO or a
    device would block or never end), larger than `MAX_FILE_BYTES`, unreadable, or not
    UTF-8."""
    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except NotRegular:
        inv.rejects.report(path, "cannot read: not a regular file")
        return None
    except TooLarge:
        limit = MAX_FILE_BYTES // (1024 * 1024)
        inv.rejects.report(path, f"not read: larger than {limit} MiB (split it)")
        return None
    except OSError as exc:
        inv.rejects.report(path, _reason(exc))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        inv.rejects.report(path, "cannot read: not UTF-8 text")
        return None


def _terraform(path: str, text: str, inv: Inventory) -> None:
    import hcl2
    from hcl2.utils import SerializationOptions

    from logwarden.posture.inputs.cloud import from_terraform

    options = SerializationOptions(with_comments=False, strip_string_quotes=True)
    try:
        data = hcl2.loads(text, serialization_options=options)
    except Exception as exc:  # lark's parse errors and hcl2's own; translated here
        line = getattr(exc, "line", None)
        where = f"{path}:{line}" if isinstance(line, int) and line > 0 else path
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        inv.rejects.report(where, f"not valid Terraform (HCL2): {reason}")
        return
    from_terraform(path, text, data, inv)


def _text(path: str, text: str, inv: Inventory) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        if _LOG_DRIVER_NONE.search(line):
            inv.texts.append(TextHit(path, number, line.strip(), "log-driver-none"))
