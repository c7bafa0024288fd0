"""The source compliance suite: the same four checks for every live source (Vector's
`assert_source_compliance`).

Each source is driven through an `Adapter`: it makes a source instance over one state
directory (a new instance stands for a restarted process), adds good and bad input units
to the source's real input (a file, a journal, an API server, a log group), and says what
identifies a record (the unit it came from), which stream a unit belongs to where the
source orders only per stream (per container, per log stream), and how a bad unit's
report must name it.

The checks, each a function taking an adapter:

1. `exactly_once_across_restarts`: runs that end by stop after a batch, by `emit` raising
   before the ledger stored a batch, and by `emit` raising after it stored it (the source's
   state not saved), with input added between runs and while the last run follows it:
   every good unit is emitted exactly once, in input order (per stream), seq 1..N.
2. `stop_drains`: `stop` set while `emit` holds a batch: `run` returns within 2 s of
   `emit` returning, the batch is kept, and the next run neither repeats nor skips.
3. `bad_input_counted_and_kept`: every bad unit is reported to `Rejects` once, with a
   `where` naming it, a reason and its raw bytes (kept in the rejects file), the source's
   `rejected` counts them, and every good unit is emitted.
4. `counters`: `events` counts the records emitted and durable (a batch whose `emit`
   raised is not counted), `last_event_ns` is set once records are emitted.

The fake ledger is a list: `emit` appends the batch and returns (durable), the next run's
`resume_seq` is the number of records stored.
"""

from __future__ import annotations

import base64
import io
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from logwarden.records import Record
from logwarden.rejects import Rejected, Rejects

__all__ = [
    "CHECKS",
    "Adapter",
    "BadUnit",
    "Source",
    "bad_input_counted_and_kept",
    "counters",
    "exactly_once_across_restarts",
    "stop_drains",
]

#: how long a run may take to reach the batch it is to end at, or to read what was added
RUN_TIMEOUT_SECS = 15.0
#: a stopped run must return within this long (of `emit` returning)
STOP_SECS = 2.0


class Source(Protocol):
    """What the suite needs of a live source: `run` and the counters."""

    events: int
    rejected: int
    last_event_ns: int

    def run(
        self, emit: Callable[[list[Record]], None], stop: threading.Event, resume_seq: int
    ) -> None: ...


@dataclass(frozen=True)
class BadUnit:
    """A bad unit added to the input: its report's `where` must match `where` (a regular
    expression, in full) and its kept raw bytes must contain `marker`."""

    where: str
    marker: bytes


class Adapter(Protocol):
    """How the suite drives one source over its real input.

    `good` lists the identities of the good units added so far, in input order; `bad` the
    bad units added so far. Identities are what `identity` gives for the record of a unit.
    `batch_events` is the source's batch size (the suite adds enough units that a run
    reaches the batch it is to stop or fail at). `settle_secs`: how long to watch a run
    that has emitted everything for a repeat (a source that re-reads a window).
    """

    name: str
    batch_events: int
    settle_secs: float
    good: list[Hashable]
    bad: list[BadUnit]

    def make(self, rejects: Rejects) -> Source:
        """A new source instance over the adapter's input and state directory."""
        ...

    def add(self, good: int, bad: int = 0) -> None:
        """Add `good` good units and `bad` bad units to the input, the bad ones spread
        among the good ones."""
        ...

    def identity(self, record: Record) -> Hashable:
        """What identifies the unit `record` came from (its raw bytes, a message)."""
        ...

    def stream(self, ident: Hashable) -> Hashable:
        """The stream a unit belongs to: units are in input order within a stream (a
        source that orders all of its input totally has one stream)."""
        ...


# --- running ------------------------------------------------------------------------------------


class Crash(Exception):
    """What the fake ledger raises to end a run inside `emit`."""


class Ledger:
    """The fake ledger: `emit` stores a batch (durable once it returns)."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.cond = threading.Condition()

    def store(self, batch: list[Record]) -> None:
        assert batch, "an empty batch was emitted"
        with self.cond:
            self.records.extend(batch)
            self.cond.notify_all()

    @property
    def seq(self) -> int:
        """The resume_seq of the next run: the number of records stored."""
        with self.cond:
            return len(self.records)

    def wait_for(self, count: int) -> bool:
        """Wait until `count` records are stored (at most RUN_TIMEOUT_SECS); whether they
        are."""
        with self.cond:
            return self.cond.wait_for(lambda: len(self.records) >= count, RUN_TIMEOUT_SECS)


class Run:
    """`source.run(emit, stop, resume_seq)` in a thread."""

    def __init__(
        self,
        source: Source,
        emit: Callable[[list[Record]], None],
        resume_seq: int,
        stop: threading.Event | None = None,
    ) -> None:
        self.source = source
        self.stop = threading.Event() if stop is None else stop
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(emit, resume_seq), daemon=True)
        self.thread.start()

    def _run(self, emit: Callable[[list[Record]], None], resume_seq: int) -> None:
        try:
            self.source.run(emit, self.stop, resume_seq)
        except BaseException as exc:  # handed to the check
            self.error = exc
        finally:
            self.ended.set()

    def wait(self, timeout: float, what: str) -> None:
        """Wait for `run` to return by itself."""
        if not self.ended.wait(timeout):
            self.finish()
            raise AssertionError(f"{what}: run did not return within {timeout:g} s")

    def finish(self) -> BaseException | None:
        """Set stop; `run` must return within STOP_SECS. Returns what it raised."""
        self.stop.set()
        began = time.monotonic()
        self.thread.join(RUN_TIMEOUT_SECS)
        assert not self.thread.is_alive(), "run did not return after stop"
        took = time.monotonic() - began
        assert took < STOP_SECS, f"run took {took:.2f} s to return after stop"
        return self.error


def run_until(adapter: Adapter, ledger: Ledger, rejects: Rejects, *, at: int, how: str) -> None:
    """Run a new instance until its `at`-th batch, then: ``stop`` (the batch is stored and
    stop is set), ``before`` (`emit` raises before storing it) or ``after`` (`emit` stores
    it, then raises: the ledger has it, the source's state does not)."""
    source = adapter.make(rejects)
    calls = 0
    stored_before = ledger.seq
    crashed: list[int] = []
    stop = threading.Event()

    def emit(batch: list[Record]) -> None:
        nonlocal calls
        calls += 1
        assert not crashed, "emit was called again after it raised"
        if calls == at and how == "before":
            crashed.append(len(batch))
            raise Crash("the ledger failed before storing the batch")
        ledger.store(batch)
        if calls == at and how == "after":
            crashed.append(len(batch))
            raise Crash("the process died after the ledger stored the batch")
        if calls == at:
            stop.set()

    run = Run(source, emit, ledger.seq, stop)
    what = f"{adapter.name}: a run to end ({how}) at batch {at}"
    run.wait(RUN_TIMEOUT_SECS, what)
    error = run.finish()
    if how == "stop":
        if error is not None:
            raise error
    elif not isinstance(error, Crash):
        raise AssertionError(f"{what}: run ended with {error!r}, not the Crash of emit")
    assert calls >= at, f"{what}: run ended after {calls} batches"
    durable = ledger.seq - stored_before - (crashed[0] if how == "after" else 0)
    assert source.events == durable, (
        f"{what}: events is {source.events}, but {durable} records were durable"
    )


def follow(
    adapter: Adapter,
    ledger: Ledger,
    rejects: Rejects,
    *,
    add_while_running: tuple[int, int] = (0, 0),
) -> Source:
    """Run a new instance until every good unit (and those added while it runs) is
    stored, watch it `settle_secs` more for repeats, and stop it."""
    source = adapter.make(rejects)
    run = Run(source, ledger.store, ledger.seq)
    try:
        if add_while_running != (0, 0):
            ledger.wait_for(min(len(adapter.good), ledger.seq + 1))
            adapter.add(*add_while_running)
        complete = ledger.wait_for(len(adapter.good))
        time.sleep(adapter.settle_secs)
    finally:
        error = run.finish()
    if error is not None:
        raise error
    if not complete:  # say which
        assert_exactly_once(adapter, ledger.records)
        raise AssertionError(f"{adapter.name}: only {ledger.seq} of {len(adapter.good)} arrived")
    return source


def assert_exactly_once(adapter: Adapter, records: list[Record]) -> None:
    """Every good unit once, in input order per stream, with seq 1..N."""
    got = [adapter.identity(r) for r in records]
    repeats = sorted(str(k) for k, n in Counter(got).items() if n > 1)
    assert not repeats, f"{adapter.name}: repeated: {repeats[:5]}"
    missing = [str(k) for k in adapter.good if k not in set(got)]
    assert not missing, f"{adapter.name}: lost: {missing[:5]} ({len(missing)} in all)"
    unexpected = set(got) - set(adapter.good)
    assert not unexpected, f"{adapter.name}: emitted what was not added: {unexpected}"
    for stream in dict.fromkeys(adapter.stream(k) for k in adapter.good):
        mine = [k for k in got if adapter.stream(k) == stream]
        want = [k for k in adapter.good if adapter.stream(k) == stream]
        assert mine == want, f"{adapter.name}: stream {stream!r} out of input order"
    seqs = [r.seq for r in records]
    assert seqs == list(range(1, len(records) + 1)), f"{adapter.name}: seq not 1..N: {seqs}"


def kept(keep: io.BytesIO) -> list[Rejected]:
    """The units kept in a rejects file."""
    decoder = msgspec.json.Decoder(Rejected)
    return [decoder.decode(line) for line in keep.getvalue().splitlines()]


# --- the checks ---------------------------------------------------------------------------------


def exactly_once_across_restarts(adapter: Adapter) -> None:
    """Stop, crash before the ledger stored a batch, crash after it did (the state not
    saved), with input added between the runs and while the last one follows it."""
    b = adapter.batch_events
    ledger, rejects = Ledger(), Rejects()
    adapter.add(3 * b, 1)
    run_until(adapter, ledger, rejects, at=1, how="stop")
    assert ledger.seq > 0
    adapter.add(2 * b, 1)
    run_until(adapter, ledger, rejects, at=2, how="before")
    adapter.add(2 * b, 1)
    run_until(adapter, ledger, rejects, at=2, how="after")
    run_until(adapter, ledger, rejects, at=1, how="after")  # right after the last one
    adapter.add(2 * b, 1)
    run_until(adapter, ledger, rejects, at=3, how="before")
    follow(adapter, ledger, rejects, add_while_running=(b + 1, 1))
    assert_exactly_once(adapter, ledger.records)


def stop_drains(adapter: Adapter) -> None:
    """Stop while `emit` holds a batch: run returns promptly once it is released, the batch
    is stored, and the next run goes on after it."""
    adapter.add(3 * adapter.batch_events)
    ledger, rejects = Ledger(), Rejects()
    entered, release = threading.Event(), threading.Event()
    held: list[int] = []

    def slow_emit(batch: list[Record]) -> None:
        if not held:
            held.append(len(batch))
            entered.set()
            assert release.wait(RUN_TIMEOUT_SECS), "never released"
        ledger.store(batch)

    source = adapter.make(rejects)
    run = Run(source, slow_emit, 0)
    try:
        assert entered.wait(RUN_TIMEOUT_SECS), f"{adapter.name}: no batch was emitted"
        run.stop.set()
        time.sleep(0.05)
        assert not run.ended.is_set(), f"{adapter.name}: run returned while emit was held"
    finally:
        release.set()
        released = time.monotonic()
        ended = run.ended.wait(RUN_TIMEOUT_SECS)
        took = time.monotonic() - released
    assert ended, f"{adapter.name}: run did not return after stop"
    assert took < STOP_SECS, f"{adapter.name}: run took {took:.2f} s to return after emit"
    if run.error is not None:
        raise run.error
    assert ledger.seq >= held[0], f"{adapter.name}: the held batch was not kept"
    assert source.events == ledger.seq
    follow(adapter, ledger, rejects)
    assert_exactly_once(adapter, ledger.records)


def bad_input_counted_and_kept(adapter: Adapter) -> None:
    """Bad units among good ones: each reported once (where, reason, raw), counted."""
    adapter.add(2 * adapter.batch_events, 3)
    adapter.add(adapter.batch_events, 2)
    keep = io.BytesIO()
    rejects = Rejects(keep=keep)
    ledger = Ledger()
    source = follow(adapter, ledger, rejects)
    assert_exactly_once(adapter, ledger.records)
    items = kept(keep)
    summary = [(i.where, i.reason) for i in items]
    assert len(items) == rejects.count == len(adapter.bad), (
        f"{adapter.name}: {len(adapter.bad)} bad units, {rejects.count} reports: {summary}"
    )
    assert source.rejected == len(adapter.bad), (
        f"{adapter.name}: rejected is {source.rejected}, {len(adapter.bad)} bad units"
    )
    for unit in adapter.bad:
        mine = [i for i in items if unit.marker in _raw(i)]
        assert len(mine) == 1, f"{adapter.name}: bad unit {unit.marker!r} reported {len(mine)}x"
        (item,) = mine
        assert re.fullmatch(unit.where, item.where), (
            f"{adapter.name}: {item.where!r} does not name the unit ({unit.where!r})"
        )
        assert item.reason.strip(), f"{adapter.name}: no reason for {item.where!r}"


def counters(adapter: Adapter) -> None:
    """`events` and `last_event_ns` over a run, and over a run whose `emit` failed."""
    began = time.time_ns()
    adapter.add(2 * adapter.batch_events, 1)
    ledger, rejects = Ledger(), Rejects()
    fresh = adapter.make(rejects)
    assert (fresh.events, fresh.rejected, fresh.last_event_ns) == (0, 0, 0)
    source = follow(adapter, ledger, rejects)
    assert source.events == ledger.seq == len(adapter.good), (
        f"{adapter.name}: events is {source.events}, {ledger.seq} records were emitted"
    )
    assert began < source.last_event_ns <= time.time_ns(), (
        f"{adapter.name}: last_event_ns is {source.last_event_ns}"
    )
    # a batch whose emit raised is not counted (`run_until` asserts it); a new instance
    # counts only what it emitted itself
    adapter.add(3 * adapter.batch_events)
    run_until(adapter, ledger, rejects, at=2, how="before")
    stored = ledger.seq
    last = follow(adapter, ledger, rejects)
    assert last.events == ledger.seq - stored, (
        f"{adapter.name}: events is {last.events}, {ledger.seq - stored} records were emitted"
    )
    assert began < last.last_event_ns <= time.time_ns(), (
        f"{adapter.name}: a restarted instance emitted {last.events} records, last_event_ns "
        f"is {last.last_event_ns} (their received_ns: "
        f"{sorted({r.received_ns for r in ledger.records[stored:]})})"
    )
    assert_exactly_once(adapter, ledger.records)


def _raw(item: Rejected) -> bytes:
    if item.raw is not None:
        return item.raw.encode()
    if item.raw_b64 is not None:
        return base64.b64decode(item.raw_b64)
    return b""


CHECKS: dict[str, Callable[[Any], None]] = {
    "exactly_once_across_restarts": exactly_once_across_restarts,
    "stop_drains": stop_drains,
    "bad_input_counted_and_kept": bad_input_counted_and_kept,
    "counters": counters,
}
