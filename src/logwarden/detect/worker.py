"""The detect stage in a worker process of its own, so detection runs on another core.

Python runs one thread at a time in a process; the service's HTTPS side and ledger keep
one core busy at high rates, so `run` moves detection (and the alert sinks after it) into
a child process. The child is forked when the pipeline starts, before any thread runs,
with the compiled rules and unstarted sinks already in memory, and is fed over a pipe:

- parent → child: batches of records after the ledger (source, instance, seq, line,
  times, the raw bytes and the ledger index, MessagePack), alerts raised elsewhere (a
  silent source), and a final stop; the child decodes each record's view again from its
  bytes;
- child → parent: counts of alerts by rule and severity and the delivery figures of each
  receiver, every half second and at the end, for /metrics.

A full pipe blocks the sender: backpressure reaches the ledger stage and the sources as it
does between threads. The child ends when it is told to stop (after closing every window
and delivering every alert) or when the parent is gone (the pipe closes).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

import msgspec

from logwarden.detect.engine import Engine
from logwarden.detect.stage import DetectStage
from logwarden.detect.suppression import Suppressor
from logwarden.metrics import Metrics
from logwarden.normalize import FORMATS
from logwarden.normalize.base import MalformedInput
from logwarden.records import Alert, Record

__all__ = ["DetectWorker", "Sinks"]

log = logging.getLogger("logwarden.detect")

_RECORDS, _ALERT, _STOP = 0, 1, 2
_REPORT_SECS = 0.5
#: collect the youngest generation after this many new containers (default 700)
_GC_YOUNG = 10_000
_encode = msgspec.msgpack.Encoder().encode
_decode_message = msgspec.msgpack.Decoder(tuple[int, Any]).decode
_decode_alert = msgspec.msgpack.Decoder(Alert).decode


class Sinks(Protocol):
    """Where the worker's alerts go (`alerts.stage.AlertStage`): started in the child."""

    def start(self) -> None: ...
    def __call__(self, alert: Alert) -> None: ...
    def through(self, index: int) -> None:
        """Every alert of the records up to ledger entry `index` has been handed in."""
        ...

    def detected_through(self) -> int | None:
        """The last ledger entry whose alerts were kept before the last stop (None: no
        record of it); called in the service's process before `start`."""
        ...

    def close(self) -> None: ...
    def stats(self) -> Mapping[str, Any]:
        """Delivery figures by receiver (`alerts.delivery.ReceiverStats`)."""
        ...


class DetectWorker:
    """The parent's handle on the worker process."""

    def __init__(
        self, engine: Engine, suppressor: Suppressor | None, sinks: Sinks, metrics: Metrics
    ) -> None:
        self._engine = engine
        self._suppressor = suppressor
        self._sinks = sinks
        self._metrics = metrics
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._to_child: Connection | None = None
        self._reader: threading.Thread | None = None
        self.exitcode: int | None = None

    def start(self) -> None:
        """Fork the worker (call before starting threads)."""
        ctx = multiprocessing.get_context("fork")
        records_out, records_in = ctx.Pipe(duplex=False)
        counts_out, counts_in = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_child,
            args=(
                records_out,
                counts_in,
                (records_in, counts_out),
                self._engine,
                self._suppressor,
                self._sinks,
            ),
            name="logwarden-detect",
            daemon=True,
        )
        self._process.start()
        records_out.close()
        counts_in.close()
        self._to_child = records_in
        self._reader = threading.Thread(
            target=self._read_counts, args=(counts_out,), name="detect-counts", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def returncode(self, wait_secs: float = 1.0) -> int | None:
        """How the process ended (negative: the signal that ended it), waiting up to
        `wait_secs` for it to end; None if it still runs."""
        if self._process is None:
            return None
        self._process.join(wait_secs)
        return self._process.exitcode

    def records(self, records: Sequence[Record]) -> None:
        """Hand stored records to the worker (blocks while its pipe is full)."""
        rows = [
            (r.source, r.instance, r.seq, r.line, r.received_ns, r.time_ns, r.raw, r.index)
            for r in records
        ]
        self._send(_encode((_RECORDS, rows)))

    def alert(self, alert: Alert) -> None:
        self._send(_encode((_ALERT, msgspec.msgpack.encode(alert))))

    def stop(self) -> None:
        """Tell the worker to finish (close windows, deliver everything) and wait for it."""
        with contextlib.suppress(OSError):
            self._send(_encode((_STOP, None)))
        if self._process is not None:
            self._process.join()
            self.exitcode = self._process.exitcode
        if self._reader is not None:
            self._reader.join()
        if self._to_child is not None:
            self._to_child.close()

    def _send(self, data: bytes) -> None:
        assert self._to_child is not None, "the worker is not started"
        with self._lock:
            self._to_child.send_bytes(data)

    def _read_counts(self, conn: Connection) -> None:
        while True:
            try:
                report = msgspec.msgpack.decode(conn.recv_bytes())
            except (EOFError, OSError):
                return
            for rule, severity, n in report["alerts"]:
                self._metrics.alerts.labels(rule, severity).inc(n)
            self._metrics.deliveries(report["receivers"])


def _child(
    conn: Connection,
    counts: Connection,
    parent_ends: tuple[Connection, Connection],
    engine: Engine,
    suppressor: Suppressor | None,
    sinks: Sinks,
) -> None:
    for end in parent_ends:  # else the records pipe never ends when the parent dies
        end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when this ends
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sinks.start()
    # what exists now (compiled rules, the alert state loaded) lives as long as the
    # process: the collector leaves it alone; and it runs less often than by default
    # (every few hundred alerts make thousands of small containers, few of them cycles)
    gc.freeze()
    gc.set_threshold(_GC_YOUNG, *gc.get_threshold()[1:])
    tally: Counter[tuple[str, str]] = Counter()

    def emit(alert: Alert) -> None:
        tally[(alert.rule, alert.severity)] += 1
        sinks(alert)

    stage = DetectStage(engine, emit, suppressor)
    report_at = time.monotonic() + _REPORT_SECS
    status = 0
    try:
        while _step(conn, stage, sinks):
            if time.monotonic() >= report_at:
                _report(counts, tally, sinks)
                report_at = time.monotonic() + _REPORT_SECS
    except BaseException:  # said here: the parent only sees the exit status
        log.exception("the detection worker failed")
        status = 1
    finally:
        try:
            stage.finish()
            sinks.close()
            _report(counts, tally, sinks)
            counts.close()
        except BaseException:
            log.exception("the detection worker failed while stopping")
            status = 1
        os._exit(status)  # nothing of the parent's (atexit handlers, its threads) runs here


def _step(conn: Connection, stage: DetectStage, sinks: Sinks) -> bool:
    """Take one message (or, after a second without one, let time close windows); False
    at the end of the stream."""
    if not conn.poll(1.0):
        stage.idle(time.time_ns())
        return True
    try:
        kind, payload = _decode_message(conn.recv_bytes())
    except (EOFError, OSError):
        return False  # the parent is gone
    if kind == _RECORDS:
        records = _records(payload)
        stage.records(records)
        if records and records[-1].index >= 0:
            sinks.through(records[-1].index)
    elif kind == _ALERT:
        stage.alert(_decode_alert(payload))
    return kind != _STOP


def _records(rows: list[list[Any]]) -> list[Record]:
    out = []
    for source, instance, seq, line, received, when, raw, index in rows:
        try:
            view = FORMATS[source].decode(raw)
        except MalformedInput as exc:  # read once already; this process may go less deep
            log.error("ledger entry %d cannot be detected on: %s", index, exc)
            continue
        out.append(Record(source, instance, seq, line, received, when, raw, view, None, index))
    return out


def _report(conn: Connection, tally: Counter[tuple[str, str]], sinks: Sinks) -> None:
    report = {
        "alerts": [[rule, severity, n] for (rule, severity), n in tally.items()],
        "receivers": msgspec.to_builtins(sinks.stats()),
    }
    tally.clear()
    with contextlib.suppress(OSError):
        conn.send_bytes(msgspec.msgpack.encode(report))
