"""`TailFile`: the identity of a file (its first bytes) is the same however it was opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from logwarden.sources._position import HEAD_BYTES
from logwarden.sources._tail import TailFile


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
