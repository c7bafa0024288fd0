"""`TailFile` and the rotation helpers on real files: the identity of a file (its first
bytes, the last bytes read) is the same however it was opened; a file truncated and written
again is noticed before anything of its new content is used, even when it grew back past
the point read; a file renamed between listing and opening is opened under its new name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from logwarden.sources._position import HEAD_BYTES
from logwarden.sources._rotation import Mark, candidates, locate, open_candidate
from logwarden.sources._tail import TailFile


def lines(tag: bytes, count: int) -> bytes:
    return b"".join(b"%s line %04d of the log\n" % (tag, i) for i in range(count))


def read_all(tail: TailFile) -> list[bytes]:
    out = []
    while tail.fill():
        while (line := tail.take_line()) is not None:
            out.append(line)
    return out


@pytest.mark.parametrize("offset", [0, 40, 400, 1100])
def test_the_head_is_the_files_first_bytes_after_opening_at_any_offset(
    tmp_path: Path, offset: int
) -> None:
    path = tmp_path / "access.log"
    lines = b"".join(b"short line %03d\n" % i for i in range(200))  # 3,200 bytes
    path.write_bytes(lines[:1500])
    tail = TailFile.open(str(path), 0, offset=offset)
    while tail.fill():
        pass
    with path.open("ab") as out:  # the file grows after it was opened
        out.write(lines[1500:])
    while tail.fill():
        pass
    assert tail.head == lines[:HEAD_BYTES]
    assert not tail.truncated()
    tail.close()


def test_a_short_file_that_grows_keeps_its_first_bytes_only(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(b"a\n" * 10)
    tail = TailFile.open(str(path), 0, offset=10)
    with path.open("ab") as out:
        out.write(b"b\n" * 1000)
    while tail.fill():
        pass
    assert tail.head == path.read_bytes()[:HEAD_BYTES]
    tail.close()


def test_a_rewound_file_is_identified_by_its_new_head(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(lines(b"old", 200))
    tail = TailFile.open(str(path), 0)
    read_all(tail)
    assert tail.head_sha256 == hashlib.sha256(tail.head).hexdigest()
    os.truncate(path, 0)
    path.write_bytes(lines(b"new", 200))
    assert tail.truncated()
    tail.rewind()
    read_all(tail)
    assert tail.head.startswith(b"new line 0000")
    assert tail.head_sha256 == hashlib.sha256(tail.head).hexdigest()  # not the old one's
    tail.close()


@pytest.mark.parametrize("header", [b"", b"# a fixed header of this log, longer than 1 KiB\n" * 30])
def test_truncated_and_grown_back_past_the_point_read_hands_nothing_out(
    tmp_path: Path, header: bytes
) -> None:
    """copytruncate and a fast writer between two polls: the new content is longer than
    what was read. With a fixed header longer than the head, only the last bytes read
    tell the new content from growth."""
    path = tmp_path / "access.log"
    path.write_bytes(header + lines(b"old", 100))
    tail = TailFile.open(str(path), 0)
    assert len(read_all(tail)) == header.count(b"\n") + 100
    with path.open("r+b") as out:  # truncated and written again, by the same descriptor
        out.truncate(0)
        out.write(header + lines(b"new", 300))
    assert tail.fill() == 0  # nothing of the new content is taken as growth
    assert tail.take_line() is None
    assert tail.truncated()
    tail.rewind()
    assert read_all(tail)[-1] == b"new line 0299 of the log"
    assert not tail.truncated()
    tail.close()


def test_growth_is_not_taken_for_a_truncation(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(lines(b"a", 100) + b"a partial li")
    tail = TailFile.open(str(path), 0)
    read_all(tail)
    with path.open("ab") as out:
        out.write(b"ne\n" + lines(b"b", 100))
    got = read_all(tail)
    assert got[0] == b"a partial line" and len(got) == 101
    assert not tail.truncated()
    tail.close()


def test_a_file_renamed_between_listing_and_opening_is_opened_under_its_new_name(
    tmp_path: Path,
) -> None:
    live = tmp_path / "access.log"
    live.write_bytes(lines(b"first", 10))
    (listed,) = candidates(str(live))
    os.rename(live, tmp_path / "access.log.1")  # rotated (logrotate create) meanwhile
    live.write_bytes(lines(b"second", 10))
    tail = open_candidate(listed, lambda: candidates(str(live)))
    assert tail.path == str(tmp_path / "access.log.1")
    assert read_all(tail)[0] == b"first line 0000 of the log"
    tail.close()
    (tmp_path / "access.log.1").unlink()  # deleted: nowhere to be found
    with pytest.raises(FileNotFoundError):
        open_candidate(listed, lambda: candidates(str(live)))


def test_a_file_that_only_starts_like_the_saved_one_is_not_taken_for_it(tmp_path: Path) -> None:
    """A fixed header longer than the head: the saved file is told from another file of
    the log by the last bytes before the saved offset."""
    header = b"# a fixed header of this log, longer than 1 KiB\n" * 30
    old, new = tmp_path / "access.log.1", tmp_path / "access.log"
    old.write_bytes(header + lines(b"old", 50))
    new.write_bytes(header + lines(b"new", 50))
    tail = TailFile.open(str(old), 0)
    read_all(tail)
    mark = Mark.of(tail)
    os.rename(old, tmp_path / "access.log.2")  # another inode was saved: look by content
    cands = candidates(str(new))
    assert [Path(c.path).name for c in cands] == ["access.log.2", "access.log"]
    found = locate(cands, -1, -1, len(tail.head), tail.head_sha256, mark)
    assert found == 0
    assert locate(cands[1:], -1, -1, len(tail.head), tail.head_sha256, mark) is None
    tail.close()
