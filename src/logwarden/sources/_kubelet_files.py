"""Where the kubelet keeps container logs, and the files of one of them, oldest first.

Under the root (``/var/log/pods``) each container's log is
``<namespace>_<pod>_<uid>/<container>/<restart>.log``; the kubelet rotates it to
``<restart>.log.<YYYYMMDD-HHMMSS>`` (its local time) and later gzips that (``....gz``).
`log_keys` lists the logs under the root, `candidates` the files of one log as
`_rotation.Candidate`s, ordered by their rotation stamps, the live file last.
"""

from __future__ import annotations

import os
import re
from datetime import datetime

from logwarden.sources._rotation import Candidate, listed, stat_files

__all__ = ["candidates", "log_keys"]

_LIVE = re.compile(r"(0|[1-9][0-9]{0,8})\.log")
_BACKUP = re.compile(r"(0|[1-9][0-9]{0,8})\.log\.([0-9]{8}-[0-9]{6})(\.gz)?")


def log_keys(root: str) -> list[str]:
    """``<pod dir>/<container>/<restart>.log`` of every log under `root` (the live file
    may be missing between a rename and its reopening)."""
    keys: set[str] = set()
    for pod in _subdirs(root):
        for container in _subdirs(os.path.join(root, pod)):
            try:
                names = os.listdir(os.path.join(root, pod, container))
            except OSError:
                continue
            for name in names:
                m = _LIVE.fullmatch(name) or _BACKUP.fullmatch(name)
                if m is not None:
                    keys.add(f"{pod}/{container}/{m.group(1)}.log")
    return sorted(keys)


def _subdirs(path: str) -> list[str]:
    try:
        with os.scandir(path) as it:
            return sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def candidates(live: str) -> list[Candidate]:
    """The backups of the log `live` (kubelet names), oldest first, then `live` if it
    exists. A backup that vanishes while listing makes the listing start again."""
    return listed(lambda partial: _listing(live, partial=partial))


def _listing(live: str, *, partial: bool) -> list[Candidate] | None:
    directory, base = os.path.split(live)
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    found: dict[str, tuple[str, str]] = {}
    for name in names:
        m = _BACKUP.fullmatch(name)
        if m is None or f"{m.group(1)}.log" != base:
            continue
        plain = name.removesuffix(".gz")
        if plain not in found or name == plain:  # the plain file wins over a partial .gz
            found[plain] = (m.group(2), os.path.join(directory, name))
    backups: list[tuple[str, int | None]] = [
        (path, _stamp_ns(stamp)) for stamp, path in sorted(found.values())
    ]
    return stat_files(backups, live, partial=partial)


def _stamp_ns(stamp: str) -> int:
    """The kubelet's rotation stamp (its local time) in ns since the epoch."""
    try:
        when = datetime.strptime(stamp, "%Y%m%d-%H%M%S")
    except ValueError:
        return 0
    return int(when.timestamp()) * 1_000_000_000
