"""Rate limit for incoming commands and backoff for reconnects: small, clock-injected, testable.

A flood of commands must cost the session nothing, so the limit is applied where a message
enters the bridge, before it is parsed or queued; what it refuses is only counted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class TokenBucket:
    """Allow `burst` at once and `rate` per second after that."""

    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class Backoff:
    """Exponential delays from `low` to `high`, with +-20 % jitter so kiosks do not retry in step."""

    def __init__(self, *, low: float, high: float, rng: random.Random | None = None) -> None:
        self.low = low
        self.high = max(high, low)
        self._rng = rng or random.Random()
        self._next = low

    def reset(self) -> None:
        self._next = self.low

    def next(self) -> float:
        delay = self._next
        self._next = min(self.high, self._next * 2)
        return delay * self._rng.uniform(0.8, 1.2)


@dataclass(slots=True)
class CommandCounters:
    received: int = 0  # every message on the command topic
    answered: int = 0  # replies sent (ok or error)
    refused: int = 0  # answered with an error
    dropped: int = 0  # over the rate limit or the queue: never parsed, never answered
    dropped_unreported: int = 0  # dropped since the last rate-limit notice


class GateQueue(asyncio.Queue[Any]):
    """The bridge's incoming-message queue: the rate limit is its door.

    aiomqtt puts each received message here from its socket callback. Messages over the limit
    (or beyond `maxsize`) are counted and discarded before anyone parses them.
    """

    def __init__(self, maxsize: int, *, bucket: TokenBucket, counters: CommandCounters) -> None:
        super().__init__(maxsize)
        self._bucket = bucket
        self._counters = counters

    def put_nowait(self, item: Any) -> None:
        self._counters.received += 1
        if self.full() or not self._bucket.allow():
            self._counters.dropped += 1
            self._counters.dropped_unreported += 1
            return
        super().put_nowait(item)
