"""The embedding API: one conversation as an async context manager that yields its events.

Kiosk and app builders drive the runtime from their own asyncio program instead of the CLI:

    async with DuplexSession(config=cfg, input="question.wav", output="reply.wav") as session:
        async for event in session.events():
            if event.type is EventType.SPEAKER and event.data["what"] == "started":
                session.stop_speaking()

Each session owns its model, devices, event bus, clock and worker thread, so several sessions
run side by side in one process without sharing state. Commands are applied at the next 160 ms
step boundary, exactly like the TUI's keys and the MQTT bridge's commands. Leaving the `async
with` block stops the session; `await session.wait()` lets an offline input play to its end.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from audio_io.clip import MAX_CLIP_S, check_samples, load_clip
from audio_io.format import SAMPLE_RATE, STEP_SECONDS
from audio_io.stream import open_input
from audio_io.wav import NullOutput, WavOutput
from duplex.backbones import Model, load_model
from duplex.clock import Clock, VirtualClock, WallClock
from duplex.config import Config
from duplex.engine import Command, Engine, InputDevice, Lifecycle, OutputDevice
from duplex.errors import NotSupportedError, SessionError
from duplex.eventlog import EventLog
from duplex.events import Event, EventBus, EventType, Subscription
from states import Phase

__all__ = ["DuplexSession", "NotSupportedError", "SessionError", "SessionStats", "SupportsSay"]

AudioSource = InputDevice | str | os.PathLike[str]
AudioSink = OutputDevice | str | os.PathLike[str] | None

_names = itertools.count(1)


@runtime_checkable
class SupportsSay(Protocol):
    """A backbone that can take the turn unprompted and speak given audio."""

    def say(self, audio: np.ndarray) -> None:
        """Speak `audio` (16 kHz mono float32) at the next chance to take the turn.

        Called on the event loop while `step()` may be running on the worker thread: implementations
        queue the audio (a `deque.append` is enough) and act on it inside `step()`.
        """
        ...


class SessionState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class SessionStats:
    """A snapshot of one session; `to_dict()` is what the MQTT bridge publishes as metrics."""

    name: str
    running: bool
    state: str  # the controller phase: IDLE, LISTENING, SPEAKING, DRAINING, DEGRADED
    mic_open: bool
    steps: int
    session_s: float
    step_ms_p50: float
    step_ms_p99: float
    overruns: int
    realtime_factor: float  # session seconds per wall second so far
    events: int  # events published so far

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DuplexSession:
    """One conversation: `async with` starts it, leaving the block stops it and closes its devices.

    `input` is an InputDevice or the path of an audio file (any rate and channel count);
    `output` an OutputDevice, the path of a WAV to record exactly what the speaker plays, or None
    (nobody hears it). The session owns the devices it is given and closes them when it ends.
    `realtime` paces an offline input at wall-clock speed; `live` marks a live input (wall clock,
    and the session ends as soon as the input does); `clock` is the session clock when the devices
    need to share it (sound cards started before the session). `model` reuses an already loaded
    model (never share one between sessions that run at the same time).
    """

    def __init__(self, *, config: Config | None = None, input: AudioSource, output: AudioSink = None,
                 model: Model | None = None, realtime: bool = False, live: bool = False, clock: Clock | None = None,
                 events_path: str | os.PathLike[str] | None = None, name: str | None = None) -> None:
        self.config = config or Config()
        self.name = name or f"session-{next(_names)}"
        self._input_spec = input
        self._output_spec = output
        self._model = model
        self._realtime = realtime or live
        self._live = live
        self._clock = clock
        self._events_path = Path(events_path) if events_path is not None else None
        self._bus = EventBus()  # exists before the start, so events() can be called early
        self._state = SessionState.NEW
        self._engine: Engine | None = None
        self._devices: list[InputDevice | OutputDevice] = []
        self._log: EventLog | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._done = asyncio.Event()
        self._wall = (0.0, 0.0)  # perf_counter at start, at end (0 while running)

    # ---- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not SessionState.NEW:
            raise SessionError(f"session {self.name!r} runs once; make a new DuplexSession")
        try:
            model = self._model or await asyncio.to_thread(load_model, self.config)
            self._open_devices()
            engine = Engine(model=model, input=self._devices[0], output=self._devices[1],  # type: ignore[arg-type]
                            bus=self._bus, clock=self._clock or (WallClock() if self._realtime else VirtualClock()),
                            config=self.config.engine, offline=not self._live)
            self._engine = engine
            self._tasks = asyncio.TaskGroup()
            await self._tasks.__aenter__()
        except BaseException:  # the session owns the devices it was given, started or not: close them
            for given in (self._input_spec, self._output_spec):
                if given is not None and not isinstance(given, (str, os.PathLike)) and given not in self._devices:
                    self._devices.append(given)
            self._close()
            raise
        if self._log is not None:
            self._tasks.create_task(self._log.follow(self._bus.subscribe()), name=f"duplex.{self.name}.eventlog")
        # Created last, with no await after it: the engine's first step (and its first event)
        # comes only when the caller's block first awaits.
        self._tasks.create_task(self._drive(engine), name=f"duplex.{self.name}.engine")
        self._state = SessionState.RUNNING
        self._wall = (time.perf_counter(), 0.0)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._tasks is not None and self._engine is not None
        if self._engine.lifecycle is not Lifecycle.STOPPED:
            self._engine.stop()  # queued: applied at the first or next step
        try:
            await self._tasks.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            leaves = _leaves(group)
            if len(leaves) == 1:
                raise leaves[0] from leaves[0].__cause__
            raise
        finally:
            self._close()

    async def _drive(self, engine: Engine) -> None:
        try:
            await engine.run()
        finally:
            self._state = SessionState.ENDED
            self._wall = (self._wall[0], time.perf_counter())
            self._bus.close()
            self._done.set()

    def _open_devices(self) -> None:
        source = self._input_spec
        if isinstance(source, (str, os.PathLike)):
            source = open_input(Path(source))  # a file, or a pipe/FIFO read as a stream
        self._devices.append(source)
        sink = self._output_spec
        try:
            if sink is None:
                sink = NullOutput()
            elif isinstance(sink, (str, os.PathLike)):
                sink = WavOutput(Path(sink))
            self._devices.append(sink)
            if self._events_path is not None:
                self._log = EventLog(self._events_path)
        except BaseException:
            self._close()
            raise

    def _close(self) -> None:
        for device in self._devices:
            device.close()
        self._devices.clear()
        if self._log is not None:
            self._log.close()

    async def wait(self) -> SessionStats:
        """Wait until the session ends (input over and reply finished, or stopped); return its stats."""
        if self._state is SessionState.NEW:
            raise SessionError(f"session {self.name!r} was not started: use 'async with DuplexSession(...)'")
        await self._done.wait()
        return self.stats()

    # ---- what the embedder sees -----------------------------------------------------------

    def events(self, *, maxsize: int = 10_000) -> Subscription:
        """An async iterator over every event published from now until the session ends.

        Call it before the `async with` or first thing inside the block to see the whole session.
        Events are `duplex.events.Event` objects; `event.to_dict()` is a line of the JSONL log. A
        consumer more than `maxsize` events behind loses the oldest (counted in `.dropped`).
        """
        subscription = self._bus.subscribe(maxsize=maxsize)
        if self._state is SessionState.ENDED:
            subscription.close()
        return subscription

    @property
    def running(self) -> bool:
        """Entered and not ended (commands given before the first step are applied at it)."""
        engine = self._engine
        return self._state is SessionState.RUNNING and engine is not None and engine.lifecycle is not Lifecycle.STOPPED

    @property
    def phase(self) -> Phase:
        return self._engine.phase if self._engine is not None else Phase.IDLE

    @property
    def transcript(self) -> list[str]:
        return list(self._engine.transcript) if self._engine is not None else []

    def stats(self) -> SessionStats:
        engine = self._engine
        if engine is None:
            return SessionStats(self.name, False, Phase.IDLE.value, True, 0, 0.0, 0.0, 0.0, 0, 0.0, 0)
        start, end = self._wall
        wall = (end or time.perf_counter()) - start
        session_s = engine.step_index * STEP_SECONDS
        summary = engine.stats.summary()
        return SessionStats(
            name=self.name, running=self.running, state=engine.phase.value, mic_open=engine.mic_open,
            steps=engine.step_index, session_s=round(session_s, 3),
            step_ms_p50=float(summary["step_ms_p50"]), step_ms_p99=float(summary["step_ms_p99"]),
            overruns=engine.stats.overruns, realtime_factor=round(session_s / wall, 2) if wall > 0 else 0.0,
            events=self._bus.history_size,
        )

    # ---- commands (applied at the next step boundary) -------------------------------------

    def mute(self) -> None:
        """Close the microphone: the model hears silence until `unmute()`."""
        self._submit(Command.MUTE)

    def unmute(self) -> None:
        self._submit(Command.UNMUTE)

    def stop_speaking(self) -> None:
        """Cut the model off as a barge-in would (a no-op while it is not speaking)."""
        self._submit(Command.STOP_SPEAKING)

    def reset(self) -> None:
        """Forget the conversation so far; the session keeps running, listening."""
        self._submit(Command.RESET)

    def stop(self) -> None:
        """End the session at the next step (leaving the `async with` block does this too)."""
        self._submit(Command.STOP)

    def say(self, audio: np.ndarray | str | os.PathLike[str]) -> None:
        """Have the model speak `audio` (16 kHz mono float32 samples, or an audio file) when it can.

        Only backbones that implement `SupportsSay` can; others raise NotSupportedError. The call
        is reported as a `command` event, `{"command": "say", "seconds": ...}` (called before the
        first step, just after the session's start events).
        """
        engine = self._running_engine("say")
        backbone = engine.model.backbone
        if not isinstance(backbone, SupportsSay):
            raise NotSupportedError(f"say(): backbone {engine.model.name!r} cannot speak on request "
                                    "(it only answers the user)")
        samples = _say_audio(audio)
        backbone.say(samples)
        data = {"command": "say", "seconds": round(samples.size / SAMPLE_RATE, 3)}
        if engine.lifecycle is Lifecycle.NEW:  # after the engine's start events: its task runs first
            asyncio.get_running_loop().call_soon(lambda: self._bus.publish(Event(engine.clock.now(),
                                                                                 EventType.COMMAND, data)))
        else:
            self._bus.publish(Event(engine.clock.now(), EventType.COMMAND, data))

    def _submit(self, command: Command) -> None:
        self._running_engine(command.name.lower()).submit(command)

    def _running_engine(self, what: str) -> Engine:
        if self._engine is None:
            raise SessionError(f"{what}(): session {self.name!r} was not started: use 'async with DuplexSession(...)'")
        if not self.running:
            raise SessionError(f"{what}(): session {self.name!r} has ended; start a new one")
        return self._engine


def _say_audio(audio: np.ndarray | str | os.PathLike[str]) -> np.ndarray:
    if isinstance(audio, (str, os.PathLike)):
        return load_clip(Path(audio), max_s=MAX_CLIP_S, what="say()")  # bounded: header checked first
    if not isinstance(audio, np.ndarray):
        raise TypeError(f"say(): expected samples (numpy array) or an audio file path, got {type(audio).__name__}")
    if audio.ndim != 1 or audio.size == 0 or not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"say(): samples must be a non-empty 1-D float array at 16 kHz, got "
                         f"shape {audio.shape} dtype {audio.dtype}")
    if not np.isfinite(audio).all():
        raise ValueError("say(): samples contain NaN or infinity")
    check_samples(audio, max_s=MAX_CLIP_S, what="say()")
    return audio.astype(np.float32, copy=False)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
