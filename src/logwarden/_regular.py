"""Reading a whole input file that must be a regular file of bounded size.

Shared by the config loader and the scan's inputs: a FIFO or a device named as a file
must be refused, not waited on (opening a FIFO blocks until a writer comes) or read
forever (`/dev/zero`), and a huge file must not be read into memory.
"""

from __future__ import annotations

import os
import stat

__all__ = ["NotRegular", "TooLarge", "read_regular"]


class NotRegular(Exception):
    """The path names a directory, FIFO, socket or device, not a regular file."""

    def __init__(self, directory: bool) -> None:
        super().__init__("a directory" if directory else "not a regular file")
        self.directory = directory


class TooLarge(Exception):
    """The file holds more bytes than the limit."""


def read_regular(path: str, limit: int) -> bytes:
    """The bytes of the regular file `path`; NotRegular for anything else (opened without
    blocking), TooLarge past `limit` bytes (no more than `limit + 1` are read), OSError as
    the system raises it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(stat.S_ISDIR(mode))
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0 and (chunk := os.read(fd, left)):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    if left <= 0:
        raise TooLarge(f"larger than {limit} bytes")
    return b"".join(chunks)
