"""What the alert manager tracks, held in memory only while it is in use.

An alert storm can make a hundred thousand tracked alerts and as many groups; most of them,
once notified, wait hours for their next repeat. `Tracked` keeps the most recently used
entries (`hot` of them) as objects and *parks* the rest: they stay in the state file the
manager saves to (`alerts.state`), and only their keys stay here. Asking for a parked
entry reads it back (and makes it hot again). Only entries the state file already holds
as they are may be parked (the manager parks right after it saves, and says which entries
must stay: changed since, or in use).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Tracked"]

T = TypeVar("T")


class Tracked(Generic[T]):
    """A mapping of keys to entries, the least recently used parked (see the module doc)."""

    def __init__(self, read: Callable[[str], T | None], hot: int) -> None:
        self._read = read
        self.hot_max = hot
        #: entries in memory, the least recently used first
        self._hot: dict[str, T] = {}
        self._parked: set[str] = set()
        #: entries read back from the state file so far
        self.reads = 0

    def get(self, key: str) -> T | None:
        hot = self._hot
        entry = hot.pop(key, None)
        if entry is None:
            if key not in self._parked:
                return None
            entry = self._read(key)
            self._parked.discard(key)  # in memory from now, or (lost from the file) gone
            if entry is None:
                return None
            self.reads += 1
        hot[key] = entry  # the most recently used
        return entry

    def __getitem__(self, key: str) -> T:
        entry = self.get(key)
        if entry is None:
            raise KeyError(key)
        return entry

    def __setitem__(self, key: str, entry: T) -> None:
        self._parked.discard(key)
        self._hot.pop(key, None)
        self._hot[key] = entry

    def pop(self, key: str) -> None:
        """Forget `key` if it is tracked."""
        self._hot.pop(key, None)
        self._parked.discard(key)

    def __len__(self) -> int:
        return len(self._hot) + len(self._parked)

    def __iter__(self) -> Iterator[str]:
        """Every key, hot and parked."""
        yield from list(self._hot)
        yield from list(self._parked)

    def values(self) -> Iterator[T]:
        """Every entry: those in memory, then the parked ones as read back (which stay
        parked)."""
        yield from list(self._hot.values())
        for key in list(self._parked):
            entry = self._read(key)
            if entry is not None:
                yield entry

    def hot(self) -> list[T]:
        """The entries in memory."""
        return list(self._hot.values())

    def parked(self, key: str) -> bool:
        return key in self._parked

    def add_parked(self, key: str) -> None:
        """Track `key`, whose entry the state file holds, without reading it."""
        self._hot.pop(key, None)
        self._parked.add(key)

    def park(self, keep: Callable[[str, T], bool]) -> int:
        """Park the least recently used entries beyond `hot_max`, except those `keep`
        says must stay in memory; returns how many were parked."""
        excess = len(self._hot) - self.hot_max
        if excess <= 0:
            return 0
        gone: list[str] = []
        for key, entry in self._hot.items():
            if len(gone) >= excess:
                break
            if not keep(key, entry):
                gone.append(key)
        for key in gone:
            del self._hot[key]
        self._parked.update(gone)
        return len(gone)
