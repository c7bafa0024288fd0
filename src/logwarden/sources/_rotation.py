"""The files of a rotated log, oldest first, and how to find one of them by identity.

Three rotation styles are recognised next to the live file (``audit.log`` here):

- lumberjack, as kube-apiserver rotates: ``audit-2006-01-02T15-04-05.000.log``, later
  ``...log.gz`` (the rotation time in UTC is in the name);
- logrotate: ``audit.log.1``, ``audit.log.2.gz``, ... (a higher number is older);
- logrotate's ``dateext`` (on in the default configuration of Red Hat's distributions):
  ``audit.log-20240517``, ``audit.log-20240517-1715932800.gz``, ... (digits after a dash,
  the date first, as its ``dateformat`` must be: they sort by name).

A directory is expected to use one style; if several are present, the numbered backups
count as older than the dated ones, and those as older than the lumberjack ones. While a
backup is being compressed both the plain file and a partial ``.gz`` exist: the plain one
is the backup until the ``.gz`` is complete (the compressor removes the plain file last).

A file is found again by its identity (`locate`): its device and inode, else its content
(a copy, or the compressed backup): the first bytes (the head) and, when known, the last
bytes read before the position (a `Mark`), so that a file that merely starts the same way
(a fixed header) is not taken for it. A listed file is opened only if its name still
names it, else under its new name (`open_candidate`): rotation may rename files between
listing and opening.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import IO, NamedTuple

from logwarden.sources._logfiles import GZIP_MAGIC, gunzipped, rotation_time
from logwarden.sources._position import head_digest
from logwarden.sources._tail import ShortFile, TailFile

__all__ = [
    "LIVE_KEY",
    "MISSES",
    "Candidate",
    "Mark",
    "Successors",
    "after_ns",
    "candidates",
    "copy_of",
    "gone_reason",
    "listed",
    "locate",
    "newer_files",
    "open_candidate",
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


#: the styles of backup names, in the order they count as older (see the module doc)
_NUMBERED, _DATED, _LUMBERJACK = range(3)


class _Patterns(NamedTuple):
    lumberjack: re.Pattern[str]
    numbered: re.Pattern[str]
    dated: re.Pattern[str]


def _patterns(base: str) -> _Patterns:
    stem, ext = os.path.splitext(base)
    stamp = r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(?:\.\d+)?"
    lumberjack = re.compile(re.escape(stem) + "-" + stamp + re.escape(ext) + r"(?:\.gz)?")
    numbered = re.compile(re.escape(base) + r"\.(\d+)(?:\.gz)?")
    dated = re.compile(re.escape(base) + r"-(\d{4}(?:[-_]?\d+)*)(?:\.gz)?")
    return _Patterns(lumberjack, numbered, dated)


def _order(name: str, patterns: _Patterns) -> tuple[int, float, str] | None:
    """The sort key of a backup name (oldest first), or None if it is not a backup."""
    if patterns.lumberjack.fullmatch(name):
        when = rotation_time(name)
        if when is not None:
            return _LUMBERJACK, when, ""
    m = patterns.numbered.fullmatch(name)
    if m:
        return _NUMBERED, -int(m.group(1)), ""
    m = patterns.dated.fullmatch(name)
    if m:
        return _DATED, 0.0, m.group(1)
    return None


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
    patterns = _patterns(base)
    found: dict[str, tuple[tuple[int, float, str], str]] = {}
    try:
        names = os.listdir(directory or ".")
    except OSError:
        names = []
    for name in names:
        order = _order(name, patterns)
        if order is None:
            continue
        plain = name.removesuffix(".gz")
        if plain not in found or name == plain:  # the plain file wins over a partial .gz
            found[plain] = (order, os.path.join(directory, name))
    backups = [  # a lumberjack backup's key is its rotation time, the others' their mtime
        (path, round(order[1] * 1000) * 1_000_000 if order[0] == _LUMBERJACK else None)
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


class Mark(NamedTuple):
    """The `length` last bytes of a file's content before `offset`, by their digest."""

    offset: int
    length: int
    sha256: str

    @classmethod
    def of(cls, file: TailFile) -> Mark:
        """The last bytes `file` handed out."""
        last = file.last()
        return cls(file.offset, len(last), head_digest(last))


def _read(stream: IO[bytes], size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = stream.read(size - len(out))
        if not chunk:
            break
        out += chunk
    return out


def read_head(path: str, size: int) -> bytes | None:
    """The first `size` bytes of the file's content (decompressed if it is gzip), or None
    if it cannot be read."""
    try:
        with open(path, "rb") as raw:
            return _read(gunzipped(raw), size)
    except (OSError, EOFError, ValueError):
        return None


def _holds(path: str, mark: Mark | None, *, deep: bool) -> bool | None:
    """Whether the file's content holds the bytes of `mark` before its offset; None for a
    gzip file unless `deep` (decompressing up to the offset costs)."""
    if mark is None or not mark.length:
        return True
    try:
        with open(path, "rb") as raw:
            stream = gunzipped(raw)
            if stream is raw:
                data = os.pread(raw.fileno(), mark.length, mark.offset - mark.length)
            elif not deep:
                return None
            else:
                skip = mark.offset - mark.length
                while skip:
                    chunk = stream.read(min(skip, 1 << 20))
                    if not chunk:
                        return False
                    skip -= len(chunk)
                data = _read(stream, mark.length)
    except (OSError, EOFError, ValueError):
        return False
    return len(data) == mark.length and head_digest(data) == mark.sha256


def locate(
    cands: list[Candidate],
    device: int,
    inode: int,
    head_len: int,
    head_sha256: str,
    mark: Mark | None = None,
) -> int | None:
    """The index of the file with this identity among `cands`, or None.

    First the file with this device and inode whose first `head_len` bytes still have this
    digest; else any file (renamed, copied or compressed) whose content starts with them.
    With no head (an empty file), the inode alone decides. With a `mark`, the file must
    also hold its bytes (a plain file is checked; a gzip one only when several files
    start with the head, as when a log begins with a fixed header).
    """
    for i, cand in enumerate(cands):
        if (
            (cand.device, cand.inode) == (device, inode)
            and (head_len == 0 or _head_is(cand.path, head_len, head_sha256))
            and _holds(cand.path, mark, deep=False) is not False
        ):
            return i
    if head_len == 0:
        return None
    unsure: list[int] = []  # gzip files starting with the head, not checked further yet
    for i, cand in enumerate(cands):
        if _head_is(cand.path, head_len, head_sha256):
            held = _holds(cand.path, mark, deep=False)
            if held:
                return i
            if held is None:
                unsure.append(i)
    if len(unsure) <= 1:
        return unsure[0] if unsure else None
    return next((i for i in unsure if _holds(cands[i].path, mark, deep=True)), None)


def _head_is(path: str, head_len: int, head_sha256: str) -> bool:
    head = read_head(path, head_len)
    return head is not None and len(head) == head_len and head_digest(head) == head_sha256


def _is_gzip(path: str) -> bool:
    try:
        with open(path, "rb") as raw:
            return raw.read(2) == GZIP_MAGIC
    except OSError:
        return False


def open_candidate(
    cand: Candidate,
    relist: Callable[[], list[Candidate]],
    *,
    offset: int = 0,
    line: int = 0,
    mark: Mark | None = None,
) -> TailFile:
    """`cand` opened at `offset` (line `line`). If its name no longer names it (rotation
    renamed it between listing and opening), it is opened under its new name if
    `relist()` lists it (same device and inode); else FileNotFoundError: look again.
    ShortFile if it holds fewer than `offset` bytes, or not the bytes of `mark` before it
    (checked once there, so a gzip file is decompressed only once)."""
    try:
        file = _open(cand, offset, line)
    except FileNotFoundError:
        renamed = [c for c in relist() if (c.device, c.inode) == (cand.device, cand.inode)]
        if not renamed:
            raise
        file = _open(renamed[0], offset, line)
    if mark is not None and mark.length and Mark.of(file) != mark:
        file.close()
        raise ShortFile(f"{file.path} does not hold the bytes read before offset {offset}")
    return file


def _open(cand: Candidate, offset: int, line: int) -> TailFile:
    expect = (cand.device, cand.inode)
    return TailFile.open(cand.path, after_ns(cand), offset=offset, line=line, expect=expect)


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


class Successors(NamedTuple):
    """What follows a finished file (see `newer_files`)."""

    #: the files to read next, oldest first; None while the finished file is missing
    files: list[Candidate] | None
    #: how many times in a row the finished file was missing
    misses: int
    #: the first of `files` holds the finished file's content and more (it replaced it):
    #: it is read from where the finished file was left, not from its start
    continues: bool = False


def newer_files(cands: list[Candidate], file: TailFile, misses: int) -> Successors:
    """The files of `cands` newer than the finished `file`, and the count of times in a
    row it was missing; None while it is missing fewer than `MISSES` times (renamed while
    listing?: look again at the next poll). Once it counts as deleted, the files rotated
    after it. A plain file other than `file` holding its content and more (the live file
    replaced by a longer copy) continues it."""
    idx = locate(cands, file.device, file.inode, len(file.head), file.head_sha256, Mark.of(file))
    if idx is not None:
        cand = cands[idx]
        other = not file.is_file(cand.device, cand.inode)
        if other and cand.size > file.offset and not _is_gzip(cand.path):
            return Successors(cands[idx:], 0, continues=True)  # a plain file: size is content
        return Successors(cands[idx + 1 :], 0)
    if misses < MISSES:
        return Successors(None, misses + 1)
    return Successors([c for c in cands if c.key_ns >= file.after_ns], misses)


def copy_of(live: str, file: TailFile) -> TailFile | None:
    """The backup of `live` that holds what was read of `file` (truncated in place: its
    copy, made by copytruncate), opened where `file` stands; None if there is none. Looked
    for a few times: a copy being compressed (its plain file removed while it is looked
    at) is found as its ``.gz`` the next time."""
    if not file.head:
        return None
    mark = Mark.of(file)
    for _ in range(MISSES):
        cands = [c for c in candidates(live) if not c.live]
        idx = locate(cands, -1, -1, len(file.head), file.head_sha256, mark)
        if idx is None:
            continue
        try:
            relist = partial(candidates, live)
            return open_candidate(cands[idx], relist, offset=file.offset, line=file.line, mark=mark)
        except FileNotFoundError:
            continue  # renamed or compressed meanwhile: look again
        except ShortFile:
            return None
    return None
