"""The files of a rotated log, oldest first, and how to find one of them by identity.

Two rotation styles are recognised next to the live file (``audit.log`` here):

- lumberjack, as kube-apiserver rotates: ``audit-2006-01-02T15-04-05.000.log``, later
  ``...log.gz`` (the rotation time in UTC is in the name);
- logrotate: ``audit.log.1``, ``audit.log.2.gz``, ... (a higher number is older).

A directory is expected to use one style; if both are present, the numbered backups count
as older than the lumberjack ones. While a backup is being compressed both the plain file
and a partial ``.gz`` exist: the plain one is the backup until the ``.gz`` is complete
(the compressor removes the plain file last).
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from logwarden.sources._logfiles import gunzipped, rotation_time
from logwarden.sources._position import head_digest

if TYPE_CHECKING:
    from logwarden.sources._tail import TailFile

__all__ = [
    "LIVE_KEY",
    "MISSES",
    "Candidate",
    "after_ns",
    "candidates",
    "gone_reason",
    "listed",
    "locate",
    "newer_files",
    "read_head",
    "stat_files",
]

#: The rotation key of the live file: newer than every backup.
LIVE_KEY = (1 << 63) - 1
_LIST_TRIES = 5
#: how many times in a row a finished file must be missing before it counts as deleted
MISSES = 3


@dataclass(frozen=True)
class Candidate:
    """One file of the log: a backup or the live file.

    `key_ns` is its rotation time: from a lumberjack name, else its modification time;
    `LIVE_KEY` for the live file.
    """

    path: str
    device: int
    inode: int
    size: int
    key_ns: int

    @property
    def live(self) -> bool:
        return self.key_ns == LIVE_KEY


def _patterns(base: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    stem, ext = os.path.splitext(base)
    stamp = r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(?:\.\d+)?"
    lumberjack = re.compile(re.escape(stem) + "-" + stamp + re.escape(ext) + r"(?:\.gz)?")
    numbered = re.compile(re.escape(base) + r"\.(\d+)(?:\.gz)?")
    return lumberjack, numbered


def _order(name: str, lumberjack: re.Pattern[str], numbered: re.Pattern[str]) -> tuple[int, float]:
    """The sort key of a backup name (oldest first), or (-1, 0) if it is not a backup."""
    if lumberjack.fullmatch(name):
        when = rotation_time(name)
        if when is not None:
            return 1, when
    m = numbered.fullmatch(name)
    if m:
        return 0, -int(m.group(1))
    return -1, 0.0


def candidates(live: str) -> list[Candidate]:
    """The backups of `live`, oldest first, then `live` itself if it exists.

    A backup renamed or removed between listing and looking at it makes the listing start
    again (a few times), so that a rotation in progress does not hide a file.
    """
    return listed(lambda partial: _listing(live, partial=partial))


def listed(listing: Callable[[bool], list[Candidate] | None]) -> list[Candidate]:
    """What `listing(partial)` finds, tried again (a few times) while a listed backup
    vanishes meanwhile (it says None), then taking what is there (`partial` True)."""
    for _ in range(_LIST_TRIES - 1):
        found = listing(False)
        if found is not None:
            return found
    return listing(True) or []


def _listing(live: str, *, partial: bool = False) -> list[Candidate] | None:
    """One listing; None if a listed backup vanished meanwhile (unless `partial`)."""
    directory, base = os.path.split(live)
    lumberjack, numbered = _patterns(base)
    found: dict[str, tuple[tuple[int, float], str]] = {}
    try:
        names = os.listdir(directory or ".")
    except OSError:
        names = []
    for name in names:
        order = _order(name, lumberjack, numbered)
        if order[0] < 0:
            continue
        plain = name.removesuffix(".gz")
        if plain not in found or name == plain:  # the plain file wins over a partial .gz
            found[plain] = (order, os.path.join(directory, name))
    backups = [
        (path, round(order[1] * 1000) * 1_000_000 if order[0] == 1 else None)
        for order, path in sorted(found.values())
    ]
    return stat_files(backups, live, partial=partial)


def stat_files(
    backups: list[tuple[str, int | None]], live: str, *, partial: bool
) -> list[Candidate] | None:
    """The backups (path and rotation key, None for its mtime), in the order given, then
    `live` if it exists; None if a backup vanished meanwhile (unless `partial`)."""
    out: list[Candidate] = []
    for path, key in backups:
        cand = _candidate(path, key)
        if cand is None and not partial:
            return None
        if cand is not None:
            out.append(cand)
    cand = _candidate(live, LIVE_KEY)
    if cand is not None:
        out.append(cand)
    return out


def _candidate(path: str, key_ns: int | None) -> Candidate | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # removed meanwhile (compressed, or deleted as too old)
    if not stat.S_ISREG(st.st_mode):
        return None
    key = st.st_mtime_ns if key_ns is None else key_ns
    return Candidate(path, st.st_dev, st.st_ino, st.st_size, key)


def read_head(path: str, size: int) -> bytes | None:
    """The first `size` bytes of the file's content (decompressed if it is gzip), or None
    if it cannot be read."""
    try:
        with open(path, "rb") as raw:
            stream = gunzipped(raw)
            if stream is raw:
                return raw.read(size)
            out = b""
            while len(out) < size:
                chunk = stream.read(size - len(out))
                if not chunk:
                    break
                out += chunk
            return out
    except (OSError, EOFError, ValueError):
        return None


def locate(
    cands: list[Candidate], device: int, inode: int, head_len: int, head_sha256: str
) -> int | None:
    """The index of the file with this identity among `cands`, or None.

    First the file with this device and inode whose first `head_len` bytes still have this
    digest; else any file (renamed, copied or compressed) whose content starts with them.
    With no head (an empty file), the inode alone decides.
    """
    for i, cand in enumerate(cands):
        if (cand.device, cand.inode) == (device, inode) and (
            head_len == 0 or _head_is(cand.path, head_len, head_sha256)
        ):
            return i
    if head_len == 0:
        return None
    for i, cand in enumerate(cands):
        if _head_is(cand.path, head_len, head_sha256):
            return i
    return None


def _head_is(path: str, head_len: int, head_sha256: str) -> bool:
    head = read_head(path, head_len)
    return head is not None and len(head) == head_len and head_digest(head) == head_sha256


def after_ns(cand: Candidate) -> int:
    """A lower bound of the rotation time of `cand`, to tell newer files from older ones
    once it is gone (`_position.Position.after_ns`): now for the live file, just after its
    rotation time for a backup."""
    if cand.live:
        return time.time_ns() // 1_000_000 * 1_000_000
    return cand.key_ns + 1


def gone_reason(next_path: str) -> str:
    """Why a gap is reported when `newer_files` went by time: the finished file is gone."""
    return (
        "the finished file is gone (rotated away and deleted before the files after it "
        f"were read?): continuing with the oldest newer file {next_path}; files rotated in "
        "between may be lost"
    )


def newer_files(
    cands: list[Candidate], file: TailFile, misses: int
) -> tuple[list[Candidate] | None, int]:
    """The files of `cands` newer than the finished `file`, and the count of times in a
    row it was missing; None while it is missing fewer than `MISSES` times (renamed while
    listing?: look again at the next poll). Once it counts as deleted, the files rotated
    after it."""
    idx = locate(cands, file.device, file.inode, len(file.head), file.head_sha256)
    if idx is not None:
        return cands[idx + 1 :], 0
    if misses < MISSES:
        return None, misses + 1
    return [c for c in cands if c.key_ns >= file.after_ns], misses
