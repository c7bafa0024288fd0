"""Deadlines by key, the soonest first: what the alert manager looks at on each tick,
without walking every group or escalation it holds."""

from __future__ import annotations

import heapq

__all__ = ["NEVER", "Timers"]

#: a deadline that never comes
NEVER = 1 << 62


class Timers:
    """At most one deadline per key; setting a key again replaces its deadline."""

    def __init__(self) -> None:
        self._due: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []

    def set(self, key: str, due_ns: int) -> None:
        if due_ns >= NEVER:
            self._due.pop(key, None)
            return
        if self._due.get(key) == due_ns:
            return
        self._due[key] = due_ns
        heapq.heappush(self._heap, (due_ns, key))
        if len(self._heap) > 4 * len(self._due) + 64:  # mostly replaced deadlines: rebuild
            self._heap = [(d, k) for k, d in self._due.items()]
            heapq.heapify(self._heap)

    def discard(self, key: str) -> None:
        self._due.pop(key, None)

    def due(self, now_ns: int) -> list[str]:
        """The keys whose deadline has come, soonest first (their deadlines are cleared)."""
        out = []
        heap, due = self._heap, self._due
        while heap and heap[0][0] <= now_ns:
            at, key = heapq.heappop(heap)
            if due.get(key) == at:
                del due[key]
                out.append(key)
        return out

    def next_ns(self) -> int:
        heap, due = self._heap, self._due
        while heap and due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else NEVER

    def keys(self) -> list[str]:
        return list(self._due)
