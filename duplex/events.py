"""Session events, one frozen dataclass per kind, and the in-process bus that fans them out.

Consumers `match` on the classes (`case Control(token=Kind.BREAK)`), so a renamed value is a
type error rather than a trigger that silently never fires. Every event's `to_dict()` is exactly
one line of the JSONL log (`{"t": ..., "type": ..., ...}`), the contract the log, the MQTT bridge
and the golden test rely on. `type` (the JSON `type` as an `EventType`) and `data` (the line
without `t` and `type`) remain for readers that still work on the dict form.

The bus never blocks the engine: each subscriber has its own queue; a bounded subscriber that
falls behind loses its oldest events and sees the count in `Subscription.dropped`.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from duplex.tokens import Kind
from states import Phase


class EventType(enum.Enum):
    SESSION = "session"  # started / stopped / live (the live summary)
    STATE = "state"  # controller phase change: from, to
    CONTROL = "control"  # SHIFT, BREAK, EOT from the backbone
    SPEAKER = "speaker"  # audible model speech started / stopped
    HOLD = "hold"  # the model paused its reply to hear the user out (held), or the pause ended (released)
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
    """The base of every event: `t` in session seconds."""

    t: float
    type: ClassVar[EventType]

    def payload(self) -> dict[str, Any]:
        """The JSON fields after `t` and `type`, in log order."""
        raise NotImplementedError

    @property
    def data(self) -> Mapping[str, Any]:
        return self.payload()

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 4), "type": self.type.value, **self.payload()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    backbone: str
    type: ClassVar[EventType] = EventType.SESSION

    def payload(self) -> dict[str, Any]:
        return {"what": "started", "backbone": self.backbone}


@dataclass(frozen=True, slots=True)
class SessionStopped(Event):
    """The last event of a session; its fields are the session's compute summary."""

    steps: int
    step_ms_p50: float
    step_ms_p99: float
    overruns: int
    realtime_factor: float
    type: ClassVar[EventType] = EventType.SESSION

    def payload(self) -> dict[str, Any]:
        return {"what": "stopped", "steps": self.steps, "step_ms_p50": self.step_ms_p50,
                "step_ms_p99": self.step_ms_p99, "overruns": self.overruns, "realtime_factor": self.realtime_factor}

    def summary(self) -> dict[str, Any]:
        """The figures in the order the CLI prints them."""
        return {"step_ms_p50": self.step_ms_p50, "step_ms_p99": self.step_ms_p99, "overruns": self.overruns,
                "realtime_factor": self.realtime_factor, "steps": self.steps}


@dataclass(frozen=True, slots=True)
class SessionSummary(Event):
    """A live session's closing figures (latencies, device counters), published just before it ends."""

    figures: Mapping[str, Any]
    type: ClassVar[EventType] = EventType.SESSION

    def payload(self) -> dict[str, Any]:
        return {"what": "live", **self.figures}


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    src: Phase
    dst: Phase
    type: ClassVar[EventType] = EventType.STATE

    def payload(self) -> dict[str, Any]:
        return {"from": self.src.value, "to": self.dst.value}


@dataclass(frozen=True, slots=True)
class Control(Event):
    token: Kind  # SHIFT, BREAK or EOT
    type: ClassVar[EventType] = EventType.CONTROL

    def payload(self) -> dict[str, Any]:
        return {"token": self.token.value}


@dataclass(frozen=True, slots=True)
class Speaker(Event):
    audible: bool  # model speech started (True) or stopped (False) being heard
    type: ClassVar[EventType] = EventType.SPEAKER

    def payload(self) -> dict[str, Any]:
        return {"what": "started" if self.audible else "stopped"}


@dataclass(frozen=True, slots=True)
class Hold(Event):
    """The reply paused (a held beat: the speaker silenced, what is queued kept) or the pause
    ended: the reply goes on, or a BREAK or the turn's end took it. A thin client pauses its own
    speaker on it, as it flushes on a BREAK."""

    held: bool
    type: ClassVar[EventType] = EventType.HOLD

    def payload(self) -> dict[str, Any]:
        return {"what": "held" if self.held else "released"}


@dataclass(frozen=True, slots=True)
class Text(Event):
    text: str
    type: ClassVar[EventType] = EventType.TEXT

    def payload(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True, slots=True)
class Mic(Event):
    open: bool
    type: ClassVar[EventType] = EventType.MIC

    def payload(self) -> dict[str, Any]:
        return {"what": "unmuted" if self.open else "muted"}


@dataclass(frozen=True, slots=True)
class CommandApplied(Event):
    command: str  # the command's wire name: mute, unmute, stop_speaking, reset, stop, say
    seconds: float | None = None  # say: the length of the audio
    type: ClassVar[EventType] = EventType.COMMAND

    def payload(self) -> dict[str, Any]:
        return {"command": self.command} | ({} if self.seconds is None else {"seconds": self.seconds})


@dataclass(frozen=True, slots=True)
class Step(Event):
    step: int
    ms: float
    tokens: Sequence[str] = field(default_factory=tuple)
    type: ClassVar[EventType] = EventType.STEP

    def payload(self) -> dict[str, Any]:
        return {"step": self.step, "ms": self.ms, "tokens": list(self.tokens)}


@dataclass(frozen=True, slots=True)
class Overrun(Event):
    step: int
    ms: float
    type: ClassVar[EventType] = EventType.OVERRUN

    def payload(self) -> dict[str, Any]:
        return {"step": self.step, "ms": self.ms}


@dataclass(frozen=True, slots=True)
class BadSamples(Event):
    """NaN/inf input samples were replaced with silence (reported the first time only)."""

    figures: Mapping[str, Any]  # samples, at, replaced_with (duplex.finite.SampleGuard)
    type: ClassVar[EventType] = EventType.BAD_SAMPLES

    def payload(self) -> dict[str, Any]:
        return dict(self.figures)


@dataclass(frozen=True, slots=True)
class Device(Event):
    """A live sound device was lost, came back (recovered) or was changed under the session."""

    what: str  # lost | recovered | changed
    message: str
    type: ClassVar[EventType] = EventType.DEVICE

    def payload(self) -> dict[str, Any]:
        return {"what": self.what, "message": self.message}


@dataclass(frozen=True, slots=True)
class Error(Event):
    message: str
    type: ClassVar[EventType] = EventType.ERROR

    def payload(self) -> dict[str, Any]:
        return {"message": self.message}


def from_dict(line: Mapping[str, Any]) -> Event:
    """The typed event of one JSONL line (`to_dict()` inverted); ValueError if it is not one."""
    d = dict(line)
    try:
        t, kind, what = float(d.pop("t")), EventType(d.pop("type")), d.pop("what", None)
        match kind:
            case EventType.SESSION if what == "started":
                return SessionStarted(t, d["backbone"])
            case EventType.SESSION if what == "stopped":
                return SessionStopped(t, **d)
            case EventType.SESSION if what == "live":
                return SessionSummary(t, d)
            case EventType.STATE:
                return StateChanged(t, Phase(d["from"]), Phase(d["to"]))
            case EventType.CONTROL:
                return Control(t, Kind(d["token"]))
            case EventType.SPEAKER if what in ("started", "stopped"):
                return Speaker(t, what == "started")
            case EventType.HOLD if what in ("held", "released"):
                return Hold(t, what == "held")
            case EventType.MIC if what in ("muted", "unmuted"):
                return Mic(t, what == "unmuted")
            case EventType.TEXT:
                return Text(t, d["text"])
            case EventType.COMMAND:
                return CommandApplied(t, d["command"], d.get("seconds"))
            case EventType.STEP:
                return Step(t, d["step"], d["ms"], tuple(d["tokens"]))
            case EventType.OVERRUN:
                return Overrun(t, d["step"], d["ms"])
            case EventType.ERROR:
                return Error(t, d["message"])
            case EventType.BAD_SAMPLES:
                return BadSamples(t, d)
            case EventType.DEVICE if what is not None:
                return Device(t, what, d["message"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an event line: {dict(line)} ({exc})") from None
    raise ValueError(f"not an event line: {dict(line)}")


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
