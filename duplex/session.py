"""The one place a conversation is wired: model, devices, clock, event bus, log and engine.

Every front end goes through it: `duplex-chat --input` (offline) and `duplex-chat` live (the TUI
follows `session.events()`), `duplex-kiosk`, the scenario runner and embedding programs:

    async with DuplexSession(config=cfg, input="question.wav", output="reply.wav") as session:
        async for event in session.events():
            match event:
                case Speaker(audible=True):
                    session.submit(StopSpeaking())

Each session owns its devices, bus, clock and log; the model's thread is the model's own
(`ModelWorker`), so sessions that share a model (the kiosk) take turns on one thread. Commands
are applied at the next 160 ms step boundary, exactly like the TUI's keys and MQTT commands.
Leaving the `async with` block stops the session; `await session.wait()` lets an offline input
play to its end.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from audio_io.clip import MAX_CLIP_S, check_clip, check_samples, load_clip_async
from audio_io.stream import open_input_async
from audio_io.wav import NullOutput, WavOutput
from duplex.backbones import Model, load_model
from duplex.clock import Clock, VirtualClock, WallClock
from duplex.commands import Command, Mute, Reset, Say, Stop, StopSpeaking, Unmute
from duplex.config import Config
from duplex.engine import Engine, InputDevice, Lifecycle, OutputDevice
from duplex.errors import NotSupportedError, SessionError
from duplex.eventlog import EventLog
from duplex.events import Event, EventBus, SessionStopped, SessionSummary, Subscription
from duplex.stats import SessionStats
from states import Phase

__all__ = ["DuplexSession", "Lifecycle", "NotSupportedError", "SessionError", "SessionStats"]

AudioSource = InputDevice | str | os.PathLike[str]
AudioSink = OutputDevice | str | os.PathLike[str] | None

_names = itertools.count(1)
_log = logging.getLogger(__name__)


class DuplexSession:
    """One conversation: `async with` starts it, leaving the block stops it and closes its devices.

    `input` is an InputDevice or the path of an audio file (any rate and channel count);
    `output` an OutputDevice, the path of a WAV to record exactly what the speaker plays, or None
    (nobody hears it). The session owns the devices it is given and closes them when it ends.
    `realtime` paces an offline input at wall-clock speed; `live` marks a live input (wall clock,
    and the session ends as soon as the input does); `clock` is the session clock when the devices
    need to share it (sound cards started before the session). `model` reuses an already loaded
    model. `events_path` writes every event as a JSON line. `summary`, if given, is called once
    the engine has stopped; its figures are published as the last event (`session live`).
    """

    def __init__(self, *, config: Config | None = None, input: AudioSource, output: AudioSink = None,
                 model: Model | None = None, realtime: bool = False, live: bool = False, clock: Clock | None = None,
                 events_path: str | os.PathLike[str] | None = None, name: str | None = None,
                 summary: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.config = config or Config()
        self.name = name or f"session-{next(_names)}"
        self._input_spec = input
        self._output_spec = output
        self._model = model
        self._realtime = realtime or live
        self._live = live
        self._clock = clock
        self._events_path = Path(events_path) if events_path is not None else None
        self._summary = summary
        self._bus = EventBus()  # exists before the start, so events() can be called early
        self._engine: Engine | None = None
        self._devices: list[InputDevice | OutputDevice] = []
        self._log: EventLog | None = None
        self._driver: asyncio.Task[None] | None = None
        self._says: set[asyncio.Task[None]] = set()  # say() files being decoded on worker threads
        self._done = asyncio.Event()

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def lifecycle(self) -> Lifecycle:
        """NEW until entered and stepping, then RUNNING, STOPPING, ENDED (the engine's, the only one)."""
        return self._engine.lifecycle if self._engine is not None else Lifecycle.NEW

    async def __aenter__(self) -> Self:
        if self._engine is not None:
            raise SessionError(f"session {self.name!r} runs once; make a new DuplexSession")
        try:
            await self._open_input()  # a bad input is reported before seconds of model loading
            model = self._model or await asyncio.to_thread(load_model, self.config)
            self._open_outputs()  # created only once the model has loaded
        except BaseException:  # the session owns the devices it was given, started or not: close them
            for given in (self._input_spec, self._output_spec):
                if given is not None and not isinstance(given, (str, os.PathLike)) and given not in self._devices:
                    self._devices.append(given)
            self._close()
            raise
        self._engine = Engine(model=model, input=self._devices[0], output=self._devices[1],  # type: ignore[arg-type]
                              bus=self._bus, clock=self._clock or (WallClock() if self._realtime else VirtualClock()),
                              config=self.config.engine, offline=not self._live)
        # No await after this: the first step (and the first event) comes when the caller's block first awaits.
        self._driver = asyncio.create_task(self._drive(self._engine), name=f"duplex.{self.name}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._driver is not None
        try:
            if exc is not None:
                self._driver.cancel()  # the block failed or was cancelled: end now (the step in flight is awaited)
                for say in list(self._says):
                    say.cancel()
            elif self.running:
                if self._says:  # files given to say() are queued before the Stop, like samples would be
                    await asyncio.wait(list(self._says))
                if self.running:
                    self.submit(Stop())  # applied at the first or next step
            await asyncio.wait([self._driver])  # never cancels the driver on our own cancellation
            failure = None if self._driver.cancelled() else self._driver.exception()
            if failure is not None and exc is None:
                raise failure
        finally:
            self._close()

    async def _drive(self, engine: Engine) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                if self._log is not None:
                    tasks.create_task(self._log.follow(self._bus.subscribe()), name=f"duplex.{self.name}.log")
                try:
                    await engine.run()
                    if self._summary is not None:
                        self._bus.publish(SessionSummary(engine.clock.now(), dict(self._summary())))
                finally:
                    self._bus.close()
        except BaseExceptionGroup as group:
            leaves = _leaves(group)
            if len(leaves) == 1:
                raise leaves[0] from leaves[0].__cause__
            raise
        finally:
            self._done.set()

    async def _open_input(self) -> None:
        source = self._input_spec
        if isinstance(source, (str, os.PathLike)):  # a file, or a pipe/FIFO read as a stream
            source = await open_input_async(Path(source))  # a writer is waited for off the loop
        self._devices.append(source)

    def _open_outputs(self) -> None:
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
        """Wait until the session ends (input over and reply finished, or stopped); return its stats.

        A failure of the session itself is raised when the `async with` block is left."""
        if self._engine is None:
            raise SessionError(f"session {self.name!r} was not started: use 'async with DuplexSession(...)'")
        await self._done.wait()
        return self.stats()

    async def play(self) -> list[Event]:
        """Enter, let the input play to its end, leave; every event of the session, in order."""
        collected = self.events(maxsize=0)
        async with self:
            await self.wait()
        return collected.pending()

    # ---- what the embedder sees -----------------------------------------------------------

    def events(self, *, maxsize: int = 10_000) -> Subscription:
        """An async iterator over every event published from now until the session ends.

        Call it before the `async with` or first thing inside the block to see the whole session.
        Events are the typed events of `duplex.events`; `event.to_dict()` is a line of the JSONL
        log. A consumer more than `maxsize` events behind loses the oldest (counted in `.dropped`).
        """
        subscription = self._bus.subscribe(maxsize=maxsize)
        if self._done.is_set():
            subscription.close()
        return subscription

    @property
    def running(self) -> bool:
        """Entered and not stopping (commands given before the first step are applied at it)."""
        return self._engine is not None and self._engine.lifecycle in (Lifecycle.NEW, Lifecycle.RUNNING)

    @property
    def engine(self) -> Engine | None:
        """The engine, once entered (for front ends that show its figures, e.g. the live UI)."""
        return self._engine

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
        summary = engine.stats.summary(engine.session_s, engine.wall_s)
        return SessionStats(
            name=self.name, running=self.running, state=engine.phase.value, mic_open=engine.mic_open,
            steps=engine.step_index, session_s=round(engine.session_s, 3),
            step_ms_p50=float(summary["step_ms_p50"]), step_ms_p99=float(summary["step_ms_p99"]),
            overruns=engine.stats.overruns, realtime_factor=summary["realtime_factor"],
            events=self._bus.history_size,
        )

    # ---- commands (applied at the next step boundary) -------------------------------------

    def submit(self, command: Command) -> None:
        """Hand one command to the engine (`duplex.commands`); SessionError once the session ended."""
        self._running_engine(command.name).submit(command)

    def _running_engine(self, command: str) -> Engine:
        """The engine, if it can take `command` now; else the SessionError saying why."""
        if self._engine is None:
            raise SessionError(f"{command}(): session {self.name!r} was not started: "
                               "use 'async with DuplexSession(...)'")
        if not self.running:
            raise SessionError(f"{command}(): session {self.name!r} has ended; start a new one")
        return self._engine

    def mute(self) -> None:
        """Close the microphone: the model hears silence until `unmute()`."""
        self.submit(Mute())

    def unmute(self) -> None:
        self.submit(Unmute())

    def stop_speaking(self) -> None:
        """Cut the model off as a barge-in would (a no-op while it is not speaking)."""
        self.submit(StopSpeaking())

    def reset(self) -> None:
        """Forget the conversation so far; the session keeps running, listening."""
        self.submit(Reset())

    def stop(self) -> None:
        """End the session at the next step (leaving the `async with` block does this too)."""
        self.submit(Stop())

    def say(self, audio: np.ndarray | str | os.PathLike[str]) -> asyncio.Task[None] | None:
        """Have the model speak `audio` (16 kHz mono float32 samples, or an audio file) when it can.

        Only a model loaded with `can_say` can; others raise NotSupportedError. Applied at the next
        step and reported as a `command` event, `{"command": "say", "seconds": ...}`.
        Samples are checked and submitted at once (returns None). A file's header is checked at
        once (a bad rate, over 120 s, a pipe: AudioFileError here), then it is decoded on a worker
        thread, so the event loop never waits on decoding or resampling, and submitted when ready:
        the returned task ends then; await it to know it was queued or to get a decoding error
        (one nobody awaits is logged).
        """
        if not isinstance(audio, (str, os.PathLike)):
            self.submit(Say(_say_audio(audio)))
            return None
        path = Path(audio)
        self._running_engine(Say.name).check_can_say()  # the errors a Say would raise, before decoding
        check_clip(path, max_s=MAX_CLIP_S, what="say()")
        task = asyncio.get_running_loop().create_task(self._say_file(path), name=f"{self.name} say()")
        self._says.add(task)
        task.add_done_callback(self._said)
        return task

    async def _say_file(self, path: Path) -> None:
        samples = await load_clip_async(path, max_s=MAX_CLIP_S, what="say()")
        self.submit(Say(samples))

    def _said(self, task: asyncio.Task[None]) -> None:
        self._says.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("session %s: say() dropped: %s", self.name, task.exception())


def summary_of(events: list[Event]) -> dict[str, Any]:
    """The compute summary of a finished session (its `session stopped` event), as the CLI prints it."""
    stopped = next((e for e in reversed(events) if isinstance(e, SessionStopped)), None)
    return stopped.summary() if stopped is not None else {}


def _say_audio(audio: np.ndarray) -> np.ndarray:
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
