"""Helpers of the file tail tests: real rotation, a steady writer, a durable fake ledger.

`rotate` does to a live log what kube-apiserver's lumberjack does (rename to
``<stem>-<UTC time><ext>``, create a new live file, gzip the backup and remove the plain
one) or what logrotate does (``<name>.1``, ``<name>.2.gz``, ...; with ``dateext``,
``<name>-<date>-<epoch ms>.gz``). `RotatingWriter`
appends real lines at a steady pace from its own thread, sometimes in two writes (so the
tail sees partial lines), and rotates every few lines. `Sink` is a fake `emit` (a batch is
durable once it returns), `running` runs a source in a thread.
"""

from __future__ import annotations

import gzip
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from logwarden.records import Record
from logwarden.sources.log_file import LogFileSource

_last_ms = 0


def _now_ms() -> int:
    """Milliseconds since the epoch, never the same twice."""
    global _last_ms
    _last_ms = max(time.time_ns() // 1_000_000, _last_ms + 1)
    return _last_ms


def lumberjack_name(live: Path) -> Path:
    """The backup name lumberjack gives `live` now (UTC, milliseconds, never repeated)."""
    ms = _now_ms()
    stamp = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H-%M-%S")
    stem, ext = os.path.splitext(live.name)
    return live.with_name(f"{stem}-{stamp}.{ms % 1000:03d}{ext}")


def gzip_file(path: Path) -> Path:
    """Compress `path` to `path.gz` in pieces (a partial .gz is visible meanwhile), then
    remove `path`, as lumberjack's and logrotate's compressors do."""
    target = path.with_name(path.name + ".gz")
    data = path.read_bytes()
    with gzip.open(target, "wb") as out:
        for i in range(0, len(data), 8192):
            out.write(data[i : i + 8192])
            out.flush()
    path.unlink()
    return target


def rotate(live: Path, *, style: str = "lumberjack", compress: bool = True) -> Path:
    """Rotate `live` (which the caller must have closed) and create a new empty live file.
    Returns the backup's final path."""
    if style in {"lumberjack", "dateext"}:
        if style == "lumberjack":
            backup = lumberjack_name(live)
        else:  # logrotate's dateext, with ``dateformat -%Y%m%d-%s`` in milliseconds
            ms = _now_ms()
            day = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y%m%d")
            backup = live.with_name(f"{live.name}-{day}-{ms}")
        os.rename(live, backup)
        live.touch()
        return gzip_file(backup) if compress else backup
    numbered = re.compile(re.escape(live.name) + r"\.(\d+)(\.gz)?")
    found = sorted(
        (
            (int(m.group(1)), m.group(2) or "")
            for p in live.parent.iterdir()
            if (m := numbered.fullmatch(p.name))
        ),
        reverse=True,
    )
    for n, gz in found:
        os.rename(
            live.with_name(f"{live.name}.{n}{gz}"), live.with_name(f"{live.name}.{n + 1}{gz}")
        )
        if n == 1 and compress and not gz:  # delaycompress: the previous backup is compressed
            gzip_file(live.with_name(f"{live.name}.2"))
    backup = live.with_name(live.name + ".1")
    os.rename(live, backup)
    live.touch()
    return backup


class RotatingWriter(threading.Thread):
    """Appends `lines` to `live` at a steady pace, rotating every `rotate_every` lines.

    `written` lists each line with its line number in the file it went to, in order.
    """

    def __init__(
        self,
        live: Path,
        lines: list[bytes],
        *,
        rotate_every: int,
        style: str = "lumberjack",
        pace_secs: float = 0.001,
        seed: int = 1,
    ) -> None:
        super().__init__(daemon=True)
        self.live = live
        self.lines = lines
        self.rotate_every = rotate_every
        self.style = style
        self.pace_secs = pace_secs
        self.random = random.Random(seed)
        self.written: list[tuple[bytes, int]] = []
        self.rotations = 0
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            self._write_all()
        except BaseException as exc:  # reported by the test through `finish`
            self.error = exc

    def _write_all(self) -> None:
        out = open(self.live, "ab", buffering=0)  # noqa: SIM115 - closed below
        lineno = 0
        try:
            for line in self.lines:
                if self.halt.is_set():
                    return
                if lineno == self.rotate_every:
                    out.close()
                    rotate(self.live, style=self.style)
                    self.rotations += 1
                    out = open(self.live, "ab", buffering=0)  # noqa: SIM115
                    lineno = 0
                cut = self.random.randrange(1, len(line)) if self.random.random() < 0.3 else 0
                if cut:
                    out.write(line[:cut])  # the tail may see this partial line
                    time.sleep(self.pace_secs)
                out.write(line[cut:] + b"\n")
                lineno += 1
                self.written.append((line, lineno))
                time.sleep(self.pace_secs)
        finally:
            out.close()

    def finish(self, timeout: float = 20) -> None:
        """Wait for the writer to end; re-raise what it raised."""
        self.join(timeout)
        assert not self.is_alive(), "the writer did not finish"
        if self.error is not None:
            raise self.error


class Sink:
    """A fake `emit`: a batch is durable once appended to `records`."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.batches = 0
        self.cond = threading.Condition()

    def __call__(self, batch: list[Record]) -> None:
        assert batch, "an empty batch was emitted"
        with self.cond:
            self.records.extend(batch)
            self.batches += 1
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 20) -> None:
        """Wait until at least `count` records are stored."""
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.records) >= count, timeout)
        assert ok, f"only {len(self.records)} of {count} records arrived"


class HeldSink(Sink):
    """A `Sink` that holds every batch until `release` (a ledger that is slow to make it
    durable): `entered` is set once the source has handed one in."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self._gate = threading.Event()

    def __call__(self, batch: list[Record]) -> None:
        self.entered.set()
        assert self._gate.wait(10)
        super().__call__(batch)

    def release(self) -> None:
        self._gate.set()


@contextmanager
def running(source: LogFileSource, emit: object, resume_seq: int = 0) -> Iterator[threading.Event]:
    """Run `source` in a thread; on leaving, stop it, wait for it and re-raise its error."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            source.run(emit, stop, resume_seq)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the source did not stop"
        if errors:
            raise errors[0]  # the source's own error explains a failed wait best


def seqs_and_lines(records: list[Record]) -> tuple[list[int], list[tuple[bytes, int]]]:
    """The seqs of `records`, and their raw bytes with their line numbers."""
    return [r.seq for r in records], [(r.raw, r.line) for r in records]


def append(path: Path, lines: list[bytes]) -> list[tuple[bytes, int]]:
    """Append whole lines to `path`; return them with their line numbers in it."""
    first = path.read_bytes().count(b"\n") if path.exists() else 0
    with open(path, "ab") as fh:
        fh.write(b"".join(line + b"\n" for line in lines))
    return [(line, first + i + 1) for i, line in enumerate(lines)]
