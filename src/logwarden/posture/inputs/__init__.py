"""The scan's file inputs: walk paths, recognise each file, parse it into the Inventory.

Recognised by name: YAML and JSON (`.yaml`, `.yml`, `.json`: Kubernetes manifests and
`List`s, kubeadm and kubelet configuration, audit policies, docker-compose, daemon.json,
cloud JSON), nginx configuration (`nginx.conf` and `.conf` files that read like nginx),
Dockerfiles (`Dockerfile`, `Dockerfile.*`, `*.dockerfile`, `Containerfile`), Terraform
(`.tf`), and shell scripts and systemd units (`.sh`, `.service`) for Docker's
`--log-driver none`. Hidden files and directories are skipped. A file (or directory) that
cannot be read or parsed is reported as ``file:line: reason`` and counted; the scan goes
on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

from logwarden.posture.inputs.documents import read_documents
from logwarden.posture.inputs.nginx import NginxParser, looks_like_nginx
from logwarden.posture.model import Dockerfile, Inventory, TextHit

__all__ = ["collect", "walk"]

_YAML = (".yaml", ".yml", ".json")
_LOG_DRIVER_NONE = re.compile(r"--log-driver(?:=|\s+)[\"']?none\b")


def walk(paths: Iterable[str], inv: Inventory) -> Iterator[str]:
    """Every file under `paths`, sorted within each directory; hidden entries skipped."""
    for path in paths:
        if os.path.isdir(path):

            def unreadable(exc: OSError) -> None:
                reason = (exc.strerror or str(exc)).lower()
                inv.rejects.report(str(exc.filename), f"cannot read: {reason}")

            for root, dirs, files in os.walk(path, onerror=unreadable):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield os.path.join(root, name)
        elif os.path.exists(path):
            yield path
        else:
            inv.rejects.report(path, "cannot read: no such file or directory")


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
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except UnicodeDecodeError:
                inv.rejects.report(path, "cannot read: not UTF-8 text")
                continue
            except OSError as exc:
                inv.rejects.report(path, f"cannot read: {(exc.strerror or str(exc)).lower()}")
                continue
            inv.files += 1
            if kind == "documents":
                read_documents(path, text, inv, nginx)
            elif kind == "nginx":
                if looks_like_nginx(text):
                    nginx.add_file(path, inv)
            elif kind == "dockerfile":
                _dockerfile(path, text, inv)
            elif kind == "terraform":
                _terraform(path, text, inv)
            else:
                _text(path, text, inv)
    finally:
        nginx.close()
    return inv


def _dockerfile(path: str, text: str, inv: Inventory) -> None:
    import io

    from dockerfile_parse import DockerfileParser

    try:
        parser = DockerfileParser(fileobj=io.BytesIO(text.encode()), env_replace=False)
        structure = parser.structure
    except Exception as exc:  # dockerfile-parse raises plain exceptions; translated here
        inv.rejects.report(path, f"not a readable Dockerfile: {exc}")
        return
    inv.dockerfiles.append(
        Dockerfile(
            path,
            [(str(s["instruction"]), str(s["value"]), int(s["startline"]) + 1) for s in structure],
        )
    )


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
