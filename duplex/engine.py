"""The step loop: one 160 ms user chunk in, four model tokens out, actions executed.

The same loop runs live (sound card, wall clock) and offline (WAV or scripted input, virtual
clock). Every call into the model goes through its `ModelWorker` (one thread per model), so the
event loop stays free for devices, the UI and bridges, and no two calls ever overlap. Time is
counted in steps of the input, never in wall time, so a late step is caught up without drifting
from the audio clock. Outside commands (`duplex.commands`) enter only through `submit()` and are
applied at the next step boundary.

Timing (offline, exact): step k covers user audio [0.16k, 0.16(k+1)); its tokens are known at
0.16(k+1); audio they produce is played from 0.16(k+1) on. During step k the speaker plays what
earlier steps queued.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import soxr

from audio_io.format import SAMPLE_RATE, STEP_SAMPLES, STEP_SECONDS
from duplex.backbones.base import TOKENS_PER_STEP, Model
from duplex.clock import Clock, VirtualClock
from duplex.commands import Command, Say, Stop
from duplex.config import EngineConfig
from duplex.errors import DeviceError, NotSupportedError
from duplex.events import (
    BadSamples,
    CommandApplied,
    Control,
    Device,
    Error,
    Event,
    EventBus,
    Hold,
    Mic,
    Overrun,
    SessionStarted,
    SessionStopped,
    Speaker,
    StateChanged,
    Step,
    Text,
)
from duplex.finite import SampleGuard
from duplex.playback import Edge, OutputDevice, playback_for
from duplex.stats import StepStats
from duplex.tokens import CONTROL_KINDS, CONTROLLER_INPUT, Kind, Token
from duplex.worker import ModelWorker
from states import Action, Controller, Input, Phase, Transition

__all__ = ["Engine", "InputDevice", "Lifecycle", "OutputDevice"]


class InputDevice(Protocol):
    async def read(self) -> np.ndarray | None:
        """The next 160 ms chunk (2560 float32 samples, 16 kHz mono), or None at the end."""
        ...

    def close(self) -> None: ...


class Lifecycle(enum.Enum):
    """Where a session is; the engine is its single owner (the session reads it, never keeps its own)."""

    NEW = "new"  # made, no step yet (commands submitted now apply at the first step)
    RUNNING = "running"
    STOPPING = "stopping"  # Stop applied, or the input ended: the last step is being finished
    ENDED = "ended"  # the model is idle, `session stopped` is published


class Engine:
    def __init__(self, *, model: Model, input: InputDevice, output: OutputDevice,
                 bus: EventBus | None = None, clock: Clock | None = None,
                 config: EngineConfig | None = None, offline: bool = True) -> None:
        self.model = model
        self.worker = ModelWorker.of(model)
        self.input = input
        self.output = output
        self.playback = playback_for(output)
        self.bus = bus or EventBus()
        self.clock = clock or VirtualClock()
        self.config = config or EngineConfig()
        self.offline = offline  # the input ending lets the model finish its turn (max_tail_s)
        self.controller = Controller()
        self.stats = StepStats()
        self.step_index = 0
        self.lifecycle = Lifecycle.NEW
        self.mic_open = True
        self.transcript: list[str] = []
        self._pending_units: list[int] = []
        self._held = self._spoke = False  # this step: a held beat (HOLD_SPEAKER), a speech unit played
        self._speaker_held = False  # the speaker is paused for a held beat
        self._commands: list[Command] = []
        self._resampler: soxr.ResampleStream | None = None
        self._silence = np.zeros(STEP_SAMPLES, dtype=np.float32)
        self._lead_in = np.zeros(round(self.config.lead_in_ms * SAMPLE_RATE / 1000), dtype=np.float32)
        self._wall = (0.0, 0.0)  # perf_counter at the start and at the end (0 until then)
        self._tail_steps_used = 0
        self._finite = SampleGuard()  # NaN/inf input -> silence, reported once
        attach = getattr(input, "attach_status", None)  # live devices that reopen themselves
        if attach is not None:
            attach(self.device_status)

    # ---- public surface -------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self.controller.phase

    @property
    def wall_s(self) -> float:
        """Wall seconds from the first step to the end (or to now, while running)."""
        start, end = self._wall
        return 0.0 if not start else (end or time.perf_counter()) - start

    @property
    def session_s(self) -> float:
        return self.step_index * STEP_SECONDS

    def submit(self, command: Command) -> None:
        """Queue an outside command; it is applied at the next step boundary, on the model's thread
        where it touches the model. `Say` needs a model loaded with `can_say`."""
        if isinstance(command, Say):
            self.check_can_say()
        self._commands.append(command)

    def check_can_say(self) -> None:
        """NotSupportedError unless the model speaks on request; `say(path)` asks before decoding."""
        if not self.model.can_say:
            raise NotSupportedError(f"say(): backbone {self.model.name!r} cannot speak on request "
                                    "(it only answers the user)")

    def device_status(self, ok: bool | None, message: str) -> None:
        """A live device failed (DEGRADED: the model is cut off), came back (LISTENING), or changed
        under us (None: an event only).

        Called by the input between steps (from inside its read), so the controller is never fed
        concurrently with a step."""
        what = "changed" if ok is None else "recovered" if ok else "lost"
        self._publish(Device(self.clock.now(), what, message))
        if ok is not None:
            self._feed(Input.DEVICE_RECOVERED if ok else Input.DEVICE_ERROR)

    async def run(self, *, max_steps: int | None = None) -> None:
        """Run until the input ends (and the model has finished), Stop, or `max_steps`."""
        self._start()
        try:
            while self.lifecycle is Lifecycle.RUNNING:
                if max_steps is not None and self.step_index >= max_steps:
                    break
                edges = self.playback.before_step(self.step_index)  # block k plays while chunk k is recorded
                self._publish_edges(edges)
                chunk = await self._next_chunk()
                if chunk is None:
                    break
                await self._compute(chunk)
        except BaseException:
            await self._finish(failed=True)
            raise
        await self._finish(failed=False)

    async def step(self, chunk: np.ndarray) -> Sequence[Token]:
        """One full step: play one block, apply commands, compute, route tokens (starts the session)."""
        if self.lifecycle is Lifecycle.NEW:
            self._start()
        self._publish_edges(self.playback.before_step(self.step_index))
        return await self._compute(chunk)

    async def _compute(self, chunk: np.ndarray) -> Sequence[Token]:
        k = self.step_index
        self._apply_commands()
        if self.lifecycle is not Lifecycle.RUNNING:
            return ()
        heard = chunk if self.mic_open else self._silence
        started = time.perf_counter()
        tokens = await self.worker.step(heard)
        compute_ms = (time.perf_counter() - started) * 1000.0
        await self.clock.wait_until((k + 1) * STEP_SECONDS)
        if len(tokens) != TOKENS_PER_STEP:
            raise RuntimeError(f"backbone {self.model.name} returned {len(tokens)} tokens, not 4")
        self.stats.add(compute_ms)
        if compute_ms > self.config.overrun_ms:
            self.stats.overruns += 1
            self._publish(Overrun(self.clock.now(), k, round(compute_ms, 2)))
        if self.config.step_events:
            self._publish(Step(self.clock.now(), k, round(compute_ms, 3), [str(t) for t in tokens]))
        self._held = self._spoke = False
        for token in tokens:
            self._route(token)
        await self._decode_pending_audio()
        # A step of the turn with no speech in it is a held beat: silent now, not a step later when
        # the queued audio has played out; anything else (speech, the turn's end) plays on.
        held = self._held and not self._spoke and self.phase is Phase.SPEAKING
        if held != self._speaker_held:
            self._speaker_held = held
            self.playback.hold(held)
            self._publish(Hold(self.clock.now(), held))
        self._publish_edges(self.playback.after_step(k))
        if self.phase is Phase.DRAINING and self.playback.pending == 0:
            self._feed(Input.PLAYBACK_DONE)
        self.step_index += 1
        return tokens

    # ---- lifecycle ------------------------------------------------------------------------

    def _start(self) -> None:
        if self.lifecycle is not Lifecycle.NEW:
            raise RuntimeError("an Engine runs once; make a new one")
        self.lifecycle = Lifecycle.RUNNING
        self._wall = (time.perf_counter(), 0.0)
        self._publish(SessionStarted(self.clock.now(), self.model.name))
        self._feed(Input.START)

    async def _finish(self, *, failed: bool) -> None:
        """Stop the controller, let the model's thread finish what it was doing (awaited: a
        cancelled step is never raced, and the loop never blocks), then publish the summary."""
        self.lifecycle = Lifecycle.STOPPING
        try:
            if self.phase is not Phase.IDLE:
                self._feed(Input.STOP)
            if failed:  # the failure already propagating is the one to report
                with contextlib.suppress(Exception):
                    await self.worker.drain()
            else:
                await self.worker.drain()
        finally:
            self._wall = (self._wall[0], time.perf_counter())
            summary = self.stats.summary(self.session_s, self.wall_s)
            self._publish(SessionStopped(self.clock.now(), steps=self.step_index, **summary))
            self.lifecycle = Lifecycle.ENDED

    async def _next_chunk(self) -> np.ndarray | None:
        try:
            chunk = await self.input.read()
        except DeviceError as exc:
            self._publish(Error(self.clock.now(), str(exc)))
            self._feed(Input.DEVICE_ERROR)
            return None
        if chunk is not None:
            return self._finite.clean(chunk, self.step_index * STEP_SECONDS,
                                      lambda **data: self._publish(BadSamples(self.clock.now(), data)))
        if not self.offline:
            return None
        # Offline input ended: let the model finish its turn, on silence, within max_tail_s.
        busy = self.phase in (Phase.SPEAKING, Phase.DRAINING) or self.playback.pending > 0
        tail_steps = round(self.config.max_tail_s / STEP_SECONDS)
        if busy and self._tail_steps_used < tail_steps:
            self._tail_steps_used += 1
            return self._silence
        return None

    # ---- tokens and actions ---------------------------------------------------------------

    def _route(self, token: Token) -> None:
        if token.kind is Kind.TEXT:
            if token.text:
                self.transcript.append(token.text)
                self._publish(Text(self.clock.now(), token.text))
            return
        if token.kind in CONTROL_KINDS and token.kind is not Kind.THINK:
            self._publish(Control(self.clock.now(), token.kind))
        self._feed(CONTROLLER_INPUT[token.kind], token)

    def _feed(self, inp: Input, token: Token | None = None) -> Transition:
        result = self.controller.feed(inp)
        if result.changed:
            self._publish(StateChanged(self.clock.now(), result.source, result.target))
        for action in result.actions:
            self._execute(action, token)
        return result

    def _execute(self, action: Action, token: Token | None) -> None:
        """One controller action; anything that touches the model is posted to its thread."""
        if action is Action.PLAY_AUDIO and token is not None:
            self._pending_units.append(token.unit)
            self._spoke = True
        elif action is Action.HOLD_SPEAKER:
            self._held = True
        elif action is Action.START_SPEAKER:
            self.playback.start_turn(self._lead_in)
            self._resampler = None
        elif action is Action.FLUSH_SPEAKER:
            self._pending_units.clear()
            self.playback.flush()
        elif action is Action.CANCEL_SYNTHESIS:
            self.worker.reset_vocoder()
            self._resampler = None
        elif action is Action.TRUNCATE_CONTEXT:
            self.worker.heard(self.playback.units_heard())
        elif action is Action.RESET_CONTEXT:
            self.worker.reset()
            self.transcript.clear()
        elif action is Action.OPEN_MIC:
            if not self.mic_open:
                self._publish(Mic(self.clock.now(), open=True))
            self.mic_open = True
        elif action is Action.CLOSE_MIC:
            if self.mic_open and self.phase is not Phase.IDLE:
                self._publish(Mic(self.clock.now(), open=False))
            self.mic_open = False
        # DROP_AUDIO: nothing to do, by definition.

    def units_heard(self) -> int:
        """Speech units of the current turn that reached the speaker (the fade tail included)."""
        return self.playback.units_heard()

    async def _decode_pending_audio(self) -> None:
        """Decode this step's units on the model's thread (a neural vocoder is compute); once the
        turn has ended (EOT), drain the resampler's tail too."""
        rate = self.model.vocoder.sample_rate
        turn_over = self.phase is not Phase.SPEAKING
        if not self._pending_units and not (turn_over and self._resampler is not None):
            return
        units, self._pending_units = self._pending_units, []
        audio = await self.worker.decode(units) if units else np.zeros(0, np.float32)
        if rate != SAMPLE_RATE:
            if self._resampler is None:
                self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
            audio = self._resampler.resample_chunk(audio.astype(np.float32), last=turn_over)
            if turn_over:
                self._resampler = None
        self.playback.push(audio)

    def _apply_commands(self) -> None:
        commands, self._commands = self._commands, []
        for command in commands:
            if isinstance(command, Say):
                self.worker.say(command.audio)
                self._publish(CommandApplied(self.clock.now(), command.name, command.seconds))
                continue
            self._publish(CommandApplied(self.clock.now(), command.name))
            self._feed(command.input)
            if isinstance(command, Stop):
                self.lifecycle = Lifecycle.STOPPING

    # ---- events ---------------------------------------------------------------------------

    def _publish_edges(self, edges: list[Edge]) -> None:
        for t, audible in edges:
            self._publish(Speaker(t, audible))

    def _publish(self, event: Event) -> None:
        self.bus.publish(event)
