"""How fast delivery may try a receiver: a token bucket, and the backoff after a failure."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["TokenBucket", "backoff_secs"]

#: more doublings than this change nothing (max_backoff_secs is reached) but overflow floats
_MAX_DOUBLINGS = 60
_EPSILON = 1e-6


class TokenBucket:
    """`rate` sends per second on average, `burst` at once; a rate of 0 is no limit."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        if rate < 0 or burst < 1:
            raise ValueError(f"rate limit needs rate >= 0 and burst >= 1, not {rate}, {burst}")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = self._burst
        self._time = clock()

    def take(self) -> float:
        """Take a token and return 0.0, or return how many seconds until there is one."""
        if self._rate == 0:
            return 0.0
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._time) * self._rate)
        self._time = now
        if self._tokens >= 1.0 - _EPSILON:  # a clock in epoch seconds has steps of ~0.2 us
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self._rate


def backoff_secs(
    attempts: int,
    min_secs: float,
    max_secs: float,
    retry_after_secs: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait after the `attempts`-th failed send in a row (from 1).

    Exponential with full jitter above a floor: uniform in ``[min_secs, cap]`` where
    ``cap = min(max_secs, min_secs * 2**attempts)``, so a receiver is never tried again
    sooner than `min_secs` and many logwardens behind one receiver spread out. At least
    `retry_after_secs` when the receiver asked for it (HTTP 429 `Retry-After`), even
    beyond `max_secs`.
    """
    cap = min(max_secs, min_secs * 2.0 ** min(attempts, _MAX_DOUBLINGS))
    delay = min_secs + rand() * max(0.0, cap - min_secs)
    if retry_after_secs is not None:
        delay = max(delay, retry_after_secs)
    return delay
