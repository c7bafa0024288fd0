"""Several streams of records as one, in event-time order, each opened only when due.

Correlation needs a source's events in time order (within its lateness). Logs read
together are rarely one after another: an HA control plane has an audit log per
kube-apiserver, each holding part of the same minutes. `merge` interleaves them by event
time. An input is opened when the merge reaches the time of its first event, so the
rotated logs of one apiserver are still read one after another, with one of them open,
however many there are. Each stream is read in its own order; one that is not sorted
stays as it is (its lateness is the correlator's to judge).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator, Sequence

from logwarden.records import Record

__all__ = ["Opener", "merge"]

#: An input to merge: the time of its first event (None: unknown, opened at once) and
#: what opens it (a stream of its records).
Opener = tuple[int | None, Callable[[], Generator[Record, None, None]]]


def merge(inputs: Sequence[Opener], emit: Callable[[Record], object]) -> None:
    """Emit the records of every input, merged by `Record.time_ns` (ties in input order)."""
    # inputs not yet opened, the next one last; unknown first times sort first
    waiting = sorted(
        (
            (-1 if first is None else first, order, opener)
            for order, (first, opener) in enumerate(inputs)
        ),
        key=lambda item: (item[0], item[1]),
        reverse=True,
    )
    heap: list[tuple[int, int, Record, Generator[Record, None, None]]] = []
    try:
        _merge(waiting, heap, emit)
    finally:  # stopped, or `emit` raised: the inputs still open are closed now
        for *_, records in heap:
            records.close()


def _merge(
    waiting: list[tuple[int, int, Callable[[], Generator[Record, None, None]]]],
    heap: list[tuple[int, int, Record, Generator[Record, None, None]]],
    emit: Callable[[Record], object],
) -> None:
    while heap or waiting:
        while waiting and (not heap or waiting[-1][0] <= heap[0][0]):
            _first, order, opener = waiting.pop()
            records = opener()
            record = next(records, None)
            if record is not None:
                heapq.heappush(heap, (record.time_ns, order, record, records))
        if not heap:
            continue
        if len(heap) == 1:  # one input open: its records go through until the next is due
            _time, order, record, records = heap[0]
            emit(record)
            due = waiting[-1][0] if waiting else None
            for record in records:
                if due is not None and record.time_ns >= due:
                    heap[0] = (record.time_ns, order, record, records)
                    break
                emit(record)
            else:
                heap.clear()
            continue
        _time, order, record, records = heap[0]
        emit(record)
        following = next(records, None)
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following.time_ns, order, following, records))
