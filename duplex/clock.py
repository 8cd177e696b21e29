"""Session clocks: wall time for live sessions, virtual time for offline ones.

Both count seconds from the session start. The virtual clock jumps to whatever time the engine
waits for, so an offline session runs as fast as compute allows with exact timestamps.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    async def wait_until(self, t: float) -> None: ...


class VirtualClock:
    def __init__(self) -> None:
        self._now = 0.0

    def now(self) -> float:
        return self._now

    async def wait_until(self, t: float) -> None:
        self._now = max(self._now, t)


class WallClock:
    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    async def wait_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            await asyncio.sleep(delay)
