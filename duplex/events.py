"""Session events and the in-process bus that fans them out to the log, the UI and bridges.

One `Event` type for every consumer (the JSONL log carries exactly `Event.to_dict()`). The bus
never blocks the engine: each subscriber has its own queue; a bounded subscriber that falls
behind loses its oldest events and sees the count in `Subscription.dropped`.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class EventType(enum.Enum):
    SESSION = "session"  # started / stopped
    STATE = "state"  # controller phase change: from, to
    CONTROL = "control"  # SHIFT, BREAK, EOT from the backbone
    SPEAKER = "speaker"  # audible model speech started / stopped
    TEXT = "text"  # transcript text from the backbone
    MIC = "mic"  # muted / unmuted
    COMMAND = "command"  # an outside command was applied
    STEP = "step"  # per-step compute (only with engine.step_events)
    OVERRUN = "overrun"  # a step took longer than its budget
    BAD_SAMPLES = "bad_samples"  # NaN/inf input samples replaced with silence (first time only)
    ERROR = "error"
    DEVICE = "device"  # a live sound device failed (lost) or came back (recovered)


@dataclass(frozen=True, slots=True)
class Event:
    t: float  # session seconds
    type: EventType
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 4), "type": self.type.value, **self.data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


_CLOSED = object()


class Subscription:
    """An async iterator over events published after it was created."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._maxsize = maxsize
        self.dropped = 0

    def _put(self, item: Any) -> None:
        if self._maxsize and self._queue.qsize() >= self._maxsize and item is not _CLOSED:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)

    def pending(self) -> list[Event]:
        """Everything queued right now, without waiting (for consumers polled once a step)."""
        out = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is _CLOSED:
                self._queue.put_nowait(item)
                break
            out.append(item)
        return out

    def close(self) -> None:
        self._bus._remove(self)
        self._put(_CLOSED)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(item)
            raise StopAsyncIteration
        return item


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self.history_size = 0

    def subscribe(self, *, maxsize: int = 0) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subscribers.append(sub)
        return sub

    def publish(self, event: Event) -> None:
        self.history_size += 1
        for sub in self._subscribers:
            sub._put(event)

    def close(self) -> None:
        for sub in list(self._subscribers):
            sub.close()

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
