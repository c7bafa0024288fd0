"""The monitoring pipeline: sources → redact → ledger → detect → alerts.

Sources hand batches of records to `Pipeline.submit`, which returns a future that is done
once the whole batch is durable in the ledger (the webhook answers 200 only then, a file
source saves its position only then). Three stages run in their own threads and talk
through bounded queues that count records:

- the *ledger stage* takes every batch waiting (group commit: one write and one fsync for
  all of them), redacts each record, drops records a sender retried after they were
  stored (webhook sources: same `auditID` and `stage` as a recently stored record),
  numbers webhook records, appends them, resolves the futures, and passes the records on;
- the *detect stage* runs the engine (rules, correlations) and suppression and hands each
  alert to the alert stage (`alerts.stage`); when idle it lets windows close on wall time;
- a *watch* thread raises "stopped arriving" alerts for sources that went quiet.

Queues block when full (backpressure reaches the file sources, which wait); a webhook
submission does not wait but gets `Saturated`, so the apiserver retries later. Nothing is
acknowledged before it is durable, and nothing accepted is dropped: `stop` drains every
stage in order before it returns.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec

from logwarden.detect.engine import Engine
from logwarden.detect.silence import SilenceWatch
from logwarden.detect.stage import DetectStage
from logwarden.detect.suppression import Suppressor
from logwarden.detect.worker import DetectWorker, Sinks
from logwarden.ledger.layout import LedgerError
from logwarden.ledger.sink import LedgerSink
from logwarden.ledger.tail import entries_between, last_seqs, recent_entries
from logwarden.metrics import Metrics
from logwarden.normalize import FORMATS, k8s_audit
from logwarden.normalize.base import MalformedInput
from logwarden.records import Alert, Record
from logwarden.redact import Redactor
from logwarden.sources.base import Saturated

__all__ = ["Pipeline", "Saturated"]

log = logging.getLogger("logwarden.pipeline")

#: how many recently stored (auditID, stage) pairs are remembered to drop retried records
DEDUPE_WINDOW = 262_144
T = TypeVar("T")


@dataclass
class _Batch:
    source_id: str
    records: list[Record]
    numbered: bool  # False: the ledger stage numbers them and drops retried records
    future: Future[int] = field(default_factory=Future)


class _Queue(Generic[T]):
    """A FIFO of batches bounded by the number of records in it."""

    def __init__(self, name: str, limit: int, metrics: Metrics) -> None:
        self.name = name
        self.limit = limit
        self._items: collections.deque[tuple[int, T]] = collections.deque()
        self._events = 0
        self._cond = threading.Condition()
        self._gauge = metrics.queue.labels(name)

    def put(self, item: T, events: int, *, block: bool) -> None:
        with self._cond:
            # a batch larger than the bound still goes through an empty queue
            while self._events and self._events + events > self.limit:
                if not block:
                    raise Saturated(
                        f"the {self.name} queue is full ({self._events} records)", full=True
                    )
                self._cond.wait()
            self._items.append((events, item))
            self._events += events
            self._gauge.set(self._events)
            self._cond.notify_all()

    def take(self, max_events: int, timeout: float) -> list[T]:
        """Everything waiting, up to about `max_events` records (at least one batch), or []."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            out: list[T] = []
            taken = 0
            while self._items and (not out or taken + self._items[0][0] <= max_events):
                events, item = self._items.popleft()
                taken += events
                out.append(item)
            self._events -= taken
            self._gauge.set(self._events)
            if out:
                self._cond.notify_all()
            return out

    def __len__(self) -> int:
        return self._events


class Pipeline:
    """Wires the stages; `start`, then `submit` from sources, then `stop` (drains)."""

    def __init__(
        self,
        ledger: LedgerSink,
        engine: Engine,
        sinks: Sinks,
        metrics: Metrics,
        *,
        redactor: Redactor | None = None,
        suppressor: Suppressor | None = None,
        silence: SilenceWatch | None = None,
        queue_events: int = 100_000,
        batch_events: int = 1024,
        detect_worker: bool = False,
    ) -> None:
        """`detect_worker`: run detection and the alert stage in a worker process (`detect.worker`)
        instead of a thread of this one."""
        self.ledger = ledger
        self.metrics = metrics
        self._sinks = sinks
        self._redactor = redactor or Redactor()
        self.silence = silence
        self.worker = DetectWorker(engine, suppressor, sinks, metrics) if detect_worker else None
        self._stage = DetectStage(engine, self._emit, suppressor)
        self._batch_events = max(batch_events, 1)
        self._ingest: _Queue[_Batch] = _Queue("ledger", queue_events, metrics)
        self._detect: _Queue[list[Record]] = _Queue("detect", queue_events, metrics)
        self._seq: dict[str, int] = {}
        self._marks: dict[tuple[str, str], int] = {}
        self._seen: set[tuple[str | None, str | None]] = set()
        self._seen_order: collections.deque[tuple[str | None, str | None]] = collections.deque()
        self._per_source: dict[str, tuple[Any, Any]] = {}  # labelled children, looked up once
        self._per_rule: dict[tuple[str, str], Any] = {}
        metrics.on_scrape(self._refresh)
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failed: str | None = None
        self._ledger_done = threading.Event()
        #: ledger entries stored but not detected on before the last stop (first, last)
        self.replay: tuple[int, int] | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Fork the detection worker (before any thread runs), open the ledger, learn where
        each source left off, start the stages."""
        through = self._sinks.detected_through()
        if self.worker is not None:
            self.worker.start()
        else:
            self._sinks.start()
        self.ledger.start()
        # no mark: the alert state never saved one (new, or its first save did not happen)
        first = 0 if through is None else through + 1
        if first <= self.ledger.last_index:
            self.replay = (first, self.ledger.last_index)
            log.warning(
                "ledger entries %d to %d were stored but not detected on before the last "
                "stop: detecting on them first",
                *self.replay,
            )
        self._marks = last_seqs(self.ledger.path)
        for entry in recent_entries(self.ledger.path):
            if entry.source == k8s_audit.SOURCE:
                self._remember(_key_of_raw(entry.raw))
        stages = [("ledger", self._ledger_stage), ("detect", self._detect_stage)]
        if self.silence is not None:
            stages.append(("watch", self._watch))
        for name, target in stages:
            thread = threading.Thread(target=target, name=f"pipeline-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def resume_seq(self, instance: str, source: str = k8s_audit.SOURCE) -> int:
        """The last `seq` of (source, instance) durable in the ledger (0 if none)."""
        return self._marks.get((source, instance), 0)

    @property
    def ready(self) -> bool:
        """Taking records (started, not stopping, nothing has failed)."""
        return bool(self._threads) and not self._closing.is_set() and self.failure is None

    @property
    def failure(self) -> str | None:
        """Why the pipeline cannot go on, if it cannot."""
        if self._failed is None and self.detection_lost:
            self._failed = self._worker_ended()
        return self._failed

    @property
    def detection_lost(self) -> bool:
        """The detection worker process ended without being told to (killed, crashed)."""
        worker = self.worker
        running = bool(self._threads) and not self._closing.is_set()
        return worker is not None and running and not worker.alive

    def _worker_ended(self) -> str:
        assert self.worker is not None
        code = self.worker.returncode()
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"status {code}"
        return f"the detection worker process ended ({how})"

    def stop(self) -> None:
        """Stop taking records and drain every stage: all accepted records reach the ledger,
        the detectors and the alert stage before this returns."""
        self._closing.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self.ledger.shutdown()
        if self.worker is not None:
            self.worker.stop()
        else:
            self._sinks.close()

    def _refresh(self) -> None:
        """Gauges read from the ledger (and, without a worker, the receivers' delivery
        figures) when metrics are scraped."""
        if self.worker is None:
            self.metrics.deliveries(msgspec.to_builtins(self._sinks.stats()))
        try:
            writer = self.ledger.writer
        except LedgerError:  # not started, or stopped
            return
        self.metrics.ledger_entries.set(writer.size)
        if writer.last_checkpoint_ns:
            self.metrics.checkpoint_age.set(max(0.0, time.time() - writer.last_checkpoint_ns / 1e9))
        segments = self.ledger.path / "segments"
        with contextlib.suppress(OSError):
            total = sum(e.stat().st_size for e in os.scandir(segments) if e.name.endswith(".seg"))
            self.metrics.ledger_bytes.set(total)

    # -- sources ---------------------------------------------------------------------------

    def submit(
        self, source_id: str, records: Sequence[Record], *, block: bool = True, numbered: bool
    ) -> Future[int]:
        """Queue a batch; the future gives the number of records stored once all are durable.

        `numbered`: the source gave each record its `seq` (a file source resuming exactly);
        otherwise the ledger stage numbers them per source and drops retried records.
        With `block` False a full queue raises `Saturated` instead of waiting.
        """
        if self._closing.is_set() or self._failed is not None:
            raise Saturated(self._failed or "logwarden is shutting down", full=False)
        batch = _Batch(source_id, list(records), numbered)
        if self.silence is not None and batch.records:
            self.silence.seen(source_id)
        self._ingest.put(batch, len(batch.records), block=block)
        return batch.future

    # -- the ledger stage ------------------------------------------------------------------

    def _ledger_stage(self) -> None:
        try:
            while True:
                batches = self._ingest.take(self._batch_events * 8, 0.25)
                if not batches:
                    if self._closing.is_set():
                        return
                    continue
                try:
                    self._store(batches)
                except Exception as exc:  # a bug: refuse what is left, say why, stay up
                    log.exception("the ledger stage failed")
                    self._fail([b for b in batches if not b.future.done()], f"{exc!r}")
        finally:
            self._ledger_done.set()

    def _store(self, batches: list[_Batch]) -> None:
        stored: list[Record] = []
        counts: list[int] = []
        kept: list[_Batch] = []
        for batch in batches:
            try:
                records = [self._redact(r) for r in batch.records]
            except MalformedInput as exc:  # not stored unredacted: refused, said why
                batch.future.set_exception(MalformedInput(f"cannot be redacted: {exc}"))
                continue
            if not batch.numbered:
                records = self._number(batch.source_id, records)
            counts.append(len(records))
            stored.extend(records)
            kept.append(batch)
        batches = kept
        if stored and not self.ledger.process(stored):
            self._fail(batches, "; ".join(self.ledger.errors[-1:]) or "it gave no reason")
            return
        first = self.ledger.last_index - len(stored) + 1  # only this thread appends
        for i, record in enumerate(stored):
            record.index = first + i
        now = time.time()
        for batch, n in zip(batches, counts, strict=True):
            received, last = self._source_metrics(batch.source_id)
            received.inc(n)
            last.set(now)
            batch.future.set_result(n)
        self.metrics.ledger_entries.set(self.ledger.last_index + 1)
        if stored:
            self._detect.put(stored, len(stored), block=True)

    def _source_metrics(self, source_id: str) -> tuple[Any, Any]:
        found = self._per_source.get(source_id)
        if found is None:
            m = self.metrics
            found = self._per_source[source_id] = (
                m.events.labels(source_id),
                m.last_event.labels(source_id),
            )
        return found

    def _redact(self, record: Record) -> Record:
        out = self._redactor.redact(record)
        if out is not record:
            self.metrics.redacted.inc()
        return out

    def _number(self, source_id: str, records: list[Record]) -> list[Record]:
        """Drop records already stored (a sender's retry) and number the rest."""
        seq = self._seq.get(source_id)
        if seq is None:
            seq = self.resume_seq(source_id)
        out: list[Record] = []
        for record in records:
            key = _key_of_view(record)
            if key in self._seen:
                self.metrics.duplicates.labels(source_id).inc()
                continue
            self._remember(key)
            seq += 1
            record.seq = seq
            out.append(record)
        self._seq[source_id] = seq
        return out

    def _remember(self, key: tuple[str | None, str | None]) -> None:
        if key[0] is None or key in self._seen:
            return
        self._seen.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > DEDUPE_WINDOW:
            self._seen.discard(self._seen_order.popleft())

    def _fail(self, batches: list[_Batch], reason: str) -> None:
        self._failed = f"the ledger failed: {reason}"
        log.error("the ledger failed, logwarden takes no more records: %s", reason)
        for batch in batches:
            batch.future.set_exception(Saturated(f"not stored: {reason}", full=False))

    # -- the detect stage ------------------------------------------------------------------

    def _detect_stage(self) -> None:
        """Detection in this process, or feeding the worker process that runs it (which
        lets time close its windows, and closes them at the end, by itself)."""
        stage, worker = self._stage, self.worker
        feed = self._detect_here if worker is None else self._to_worker
        if self.replay is not None:
            try:
                self._replay(feed)
            except (LedgerError, OSError) as exc:  # the ledger's own checks say the rest
                log.error("detecting on the stored records again stopped: %s", exc)
        while True:
            batches = self._detect.take(self._batch_events * 8, 1.0)
            if not batches:
                if self._ledger_done.is_set() and not len(self._detect):
                    break
                if worker is None:
                    stage.idle(time.time_ns())
                continue
            for batch in batches:
                feed(batch)
        if worker is None:
            stage.finish()

    def _replay(self, feed: Callable[[list[Record]], None]) -> None:
        """The records of the ledger entries in `replay`, to detection, in batches."""
        assert self.replay is not None
        first, last = self.replay
        batch: list[Record] = []
        for index, entry in entries_between(self.ledger.path, first, last):
            fmt = FORMATS.get(entry.source)
            try:
                if fmt is None:
                    raise MalformedInput(f"no format {entry.source!r}")
                view = fmt.decode(entry.raw)
                when = fmt.time_ns(view)
            except MalformedInput as exc:  # it was decoded once to be stored: not expected
                log.error("ledger entry %d cannot be detected on again: %s", index, exc)
                continue
            batch.append(
                Record(
                    entry.source,
                    entry.instance,
                    entry.seq,
                    0,
                    entry.received_ns,
                    when,
                    entry.raw,
                    view,
                    None,
                    index,
                )
            )
            if len(batch) >= self._batch_events:
                feed(batch)
                self.metrics.replayed.inc(len(batch))
                batch = []
        if batch:
            feed(batch)
            self.metrics.replayed.inc(len(batch))

    def _detect_here(self, records: list[Record]) -> None:
        self._stage.records(records)
        if records and records[-1].index >= 0:
            self._sinks.through(records[-1].index)

    def _to_worker(self, records: list[Record]) -> None:
        assert self.worker is not None
        try:
            self.worker.records(records)
        except OSError:  # the worker is gone: nothing more can be detected
            if self._failed is None:
                self._failed = self._worker_ended()
                log.error("%s: records are stored, not detected on", self._failed)

    def _emit(self, alert: Alert) -> None:
        key = (alert.rule, alert.severity)
        counter = self._per_rule.get(key)
        if counter is None:
            counter = self._per_rule[key] = self.metrics.alerts.labels(*key)
        counter.inc()
        self._sinks(alert)

    def _raise(self, alert: Alert) -> None:
        """An alert of the pipeline's own (silence): straight to the alert stage."""
        if self.worker is None:
            self._stage.alert(alert)
            return
        with contextlib.suppress(OSError):
            self.worker.alert(alert)

    # -- silence ---------------------------------------------------------------------------

    def _watch(self) -> None:
        assert self.silence is not None
        while not self._closing.wait(1.0):
            for alert in self.silence.check():
                self._raise(alert)


def _key_of_view(record: Record) -> tuple[str | None, str | None]:
    view = record.view
    if view.__class__ is k8s_audit.AuditEvent:
        return (view.auditID, view.stage)
    return (getattr(view, "auditID", None), getattr(view, "stage", None))


def _key_of_raw(raw: bytes) -> tuple[str | None, str | None]:
    try:
        view = k8s_audit.decode_raw(raw)
    except ValueError:
        return (None, None)
    return (view.auditID, view.stage)
