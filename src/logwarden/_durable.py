"""Writing files so that they survive a crash: whole or not at all, and their directory
entries synced. Shared by the ledger and the sources' position files."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["fsync_dir", "write_atomic"]


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (new, renamed files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path, data: bytes, *, exclusive: bool = False, mode: int | None = None
) -> None:
    """Write `data` to `path` whole or not at all: temporary file, fsync, rename, fsync dir.

    With `exclusive`, an existing `path` is an error (write-once anchors). With `mode`, the
    file has exactly that mode from the moment it exists, whatever the umask (a private
    key's 0600); without, 0644 as the umask leaves it. A write that fails leaves no
    temporary file behind.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644 if mode is None else mode)
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)  # a stale temporary file keeps its mode through O_CREAT
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            try:
                os.link(tmp, path)
            finally:
                os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
