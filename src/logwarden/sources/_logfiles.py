"""Helpers the file sources share: gzip reading, rotation names, container items.

`Gunzip` decompresses every member of a gzip file and ends cleanly at a cut. Rotated
kube-apiserver logs (lumberjack) carry their rotation time in their name
(``audit-2024-05-17T08-00-00.000.log``, optionally ``.gz``): `rotation_time` reads it.
`event_items` turns the items of an EventList or JSON array into events and their times,
reporting the items that are not events.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from logwarden.normalize.base import Format, MalformedInput

__all__ = ["GZIP_MAGIC", "Gunzip", "event_items", "gunzipped", "rotation_time"]

#: The first two bytes of every gzip file.
GZIP_MAGIC = b"\x1f\x8b"

_ROTATED = re.compile(r"-(\d{4})-(\d\d)-(\d\d)T(\d\d)-(\d\d)-(\d\d)(?:\.(\d+))?(?=\.|$)")


def rotation_time(name: str) -> float | None:
    """Seconds since the epoch of the rotation time in a lumberjack backup's name, or None."""
    m = _ROTATED.search(name)
    if m is None:
        return None
    year, month, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    frac = m.group(7)
    try:
        when = datetime(year, month, day, hour, minute, sec, tzinfo=UTC)
    except ValueError:
        return None  # not a date after all
    return when.timestamp() + (float("0." + frac) if frac else 0.0)


def event_items(
    fmt: Format,
    items: Sequence[tuple[bytes, object]],
    where: str,
    report: Callable[[str, str, bytes], object],
) -> list[tuple[bytes, Any, int]]:
    """The items of one container unit (see `Format.decode`) that are events, as
    ``(raw, view, event time)``; every other item is reported at `where`."""
    out: list[tuple[bytes, Any, int]] = []
    for raw, view in items:
        if isinstance(view, MalformedInput):
            report(where, str(view), raw)
            continue
        try:
            when = fmt.time_ns(view)
        except MalformedInput as exc:
            report(where, str(exc), raw)
            continue
        out.append((raw, view, when))
    return out


class Gunzip(io.RawIOBase):
    """Decompresses gzip (all members) as a raw stream that never loses what it decoded.

    `gzip.GzipFile` raises at a cut-off end and the buffered reader around it drops what
    was already decompressed; this reader instead ends the stream cleanly at the cut and
    sets `truncated`, so every complete line is read (and a cut last line is reported as
    malformed) before the cut itself is reported.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._zlib = zlib.decompressobj(wbits=31)
        self._pending = b""
        self._done = False
        self.truncated = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._done:
            self._fill()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _fill(self) -> None:
        chunk = self._raw.read(1 << 16)
        if not chunk:
            self._done = True
            self.truncated = not self._zlib.eof
            self._pending = self._zlib.flush()
            return
        out = []
        while chunk:
            if self._zlib.eof:  # the next member of a multi-member file
                if not chunk.strip(b"\0"):
                    break  # zero padding after the last member, as gzip(1) accepts
                self._zlib = zlib.decompressobj(wbits=31)
            out.append(self._zlib.decompress(chunk))
            chunk = self._zlib.unused_data
        self._pending = b"".join(out)


def gunzipped(raw: io.BufferedReader, buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> IO[bytes]:
    """`raw` itself, or a stream of its decompressed content when it starts as gzip."""
    if raw.peek(2)[:2] != GZIP_MAGIC:
        return raw
    return io.BufferedReader(Gunzip(raw), buffer_size=buffer_size)
