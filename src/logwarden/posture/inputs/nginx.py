"""nginx configuration, parsed by crossplane (NGINX Inc.'s parser): files and embedded text.

crossplane reads files only, so text embedded in a ConfigMap or an ingress-nginx snippet
is written to a private temporary directory first; its line numbers are then shifted to
point into the manifest the text came from. Includes are not followed (`single=True`):
every file is scanned on its own, and a snippet is checked without its surroundings
(`check_ctx=False`, `check_args=False`), so a `server { }` block alone is accepted.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from logwarden.posture.model import Directive, Inventory, K8sObject, NginxConfig

__all__ = ["NginxParser", "looks_like_nginx"]

#: an nginx statement: a block opened on its line, or a simple directive ended by ';' there.
#: A line that only starts with one of the words is not enough: a kubeconfig
#: (`/etc/kubernetes/admin.conf`) says `server: https://...`, ntp.conf `server pool.org`.
_NGINX_STATEMENT = re.compile(
    r"^[ \t]*(?:(?:http|events|server|location|upstream|stream|map|if)\b[^\n;{}]*\{"
    r"|(?:access_log|error_log|worker_processes|listen|server_name|proxy_pass|log_format|"
    r"include|root|return|add_header)[ \t]+[^\n;{}]*;)",
    re.MULTILINE,
)


def looks_like_nginx(text: str) -> bool:
    """True when a `.conf` file reads like nginx configuration rather than another format."""
    return _NGINX_STATEMENT.search(text) is not None


class NginxParser:
    """Parses nginx configurations into `Inventory.nginx`; one temporary directory per scan."""

    def __init__(self) -> None:
        self._tmp: str | None = None
        self._count = 0

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def add_file(self, path: str, inv: Inventory) -> None:
        directives = self._parse(path, path, 0, inv)
        if directives is not None:
            inv.nginx.append(NginxConfig(path, None, directives, "file"))

    def add_text(
        self,
        text: str,
        obj: K8sObject,
        path: tuple[str, ...],
        origin: str,
        inv: Inventory,
    ) -> None:
        """Parse `text`, the value at `path` of `obj`; lines point into `obj`'s file."""
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="logwarden-nginx-")
        self._count += 1
        tmp = os.path.join(self._tmp, f"{self._count}.conf")
        with open(tmp, "w", encoding="utf-8", errors="replace") as fh:  # a lone surrogate
            fh.write(text)
        first = obj.text_line(path, 0)
        shift = (first - 1) if first is not None and obj.file is not None else None
        where = obj.where(path)
        label = where.file or where.object or "?"
        end = obj.text_line(path, text.rstrip("\n").count("\n"))  # the text's last line
        directives = self._parse(tmp, label, shift, inv, end)
        os.unlink(tmp)
        if directives is not None:
            inv.nginx.append(NginxConfig(obj.file, obj.ref, directives, origin))

    def _parse(
        self,
        filename: str,
        label: str,
        shift: int | None,
        inv: Inventory,
        fallback: int | None = None,
    ) -> list[Directive] | None:
        """Parse `filename`; errors name `label` and the line shifted by `shift` (or, when
        crossplane knows no line, `fallback`: where the embedded text ends)."""
        import crossplane  # imported here: only scans with nginx configuration pay for it

        try:
            payload = crossplane.parse(
                filename,
                single=True,
                check_ctx=False,
                check_args=False,
                catch_errors=True,
            )
        except Exception as exc:  # crossplane raises its own and OS errors; translate both
            inv.rejects.report(label, f"not a readable nginx configuration: {exc}")
            return None
        for error in payload.get("errors", []):
            line = error.get("line")
            if shift is not None and line is not None:
                where = f"{label}:{line + shift}"
            elif shift is not None and fallback is not None:
                where = f"{label}:{fallback}"
            else:
                where = label
            # crossplane ends its messages with " in FILE:LINE", a name only it knows
            reason = str(error.get("error", "")).split(f" in {filename}", 1)[0]
            # ... and says nothing when the text ends inside a directive (no ';')
            reason = reason or "unexpected end of file: a directive without ';' or a '}'"
            inv.rejects.report(where, f"nginx configuration: {reason}")
        configs = payload.get("config") or []
        if not configs:
            return None
        out: list[Directive] = []
        _flatten(configs[0].get("parsed") or [], (), shift, out)
        return out


def _flatten(
    parsed: list[dict[str, Any]],
    context: tuple[str, ...],
    shift: int | None,
    out: list[Directive],
    blocks: Iterator[int] | None = None,
    block: int = 0,
) -> None:
    blocks = blocks if blocks is not None else itertools.count(1)
    for stmt in parsed:
        name = stmt.get("directive", "")
        line = stmt.get("line")
        line = None if shift is None or line is None else line + shift
        args = [str(a) for a in stmt.get("args", [])]
        out.append(Directive(name, args, line, context, block))
        inner = stmt.get("block")
        if inner:
            _flatten(inner, (*context, name), shift, out, blocks, next(blocks))
