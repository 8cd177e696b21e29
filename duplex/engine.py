"""The step loop: one 160 ms user chunk in, four model tokens out, actions executed.

The same loop runs live (sound card, wall clock) and offline (WAV or scripted input, virtual
clock). Backbone compute runs on a dedicated worker thread so the event loop stays free for
devices, the UI and bridges. Time is counted in steps of the input, never in wall time, so a late
step is caught up without drifting from the audio clock.

Timing (offline, exact): step k covers user audio [0.16k, 0.16(k+1)); its tokens are known at
0.16(k+1); audio they produce is played from 0.16(k+1) on. During step k the speaker plays what
earlier steps queued.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import soxr

from audio_io.format import SAMPLE_RATE, STEP_SAMPLES, STEP_SECONDS, UNIT_SAMPLES
from audio_io.speaker import SpeakerQueue
from duplex.backbones.base import TOKENS_PER_STEP, Model
from duplex.clock import Clock, VirtualClock
from duplex.config import EngineConfig
from duplex.errors import DeviceError
from duplex.events import Event, EventBus, EventType
from duplex.finite import SampleGuard
from duplex.stats import StepStats
from duplex.tokens import CONTROL_KINDS, CONTROLLER_INPUT, Kind, Token
from states import Action, Controller, Input, Phase, Transition


class InputDevice(Protocol):
    async def read(self) -> np.ndarray | None:
        """The next 160 ms chunk (2560 float32 samples, 16 kHz mono), or None at the end."""
        ...

    def close(self) -> None: ...


class OutputDevice(Protocol):
    queue: SpeakerQueue
    clocked: bool  # True: the engine plays one step per step via advance(); False: a callback plays

    def advance(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class Command(enum.Enum):
    """What the outside world (API, MQTT, TUI keys) may ask of a running session."""

    MUTE = Input.MUTE
    UNMUTE = Input.UNMUTE
    STOP_SPEAKING = Input.STOP_SPEAKING
    RESET = Input.RESET
    STOP = Input.STOP


class Lifecycle(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(slots=True)
class Turn:
    """Book-keeping for the model turn in progress (for truncation and speaker events)."""

    start_played: int = 0  # speaker.played when this turn's first sample was queued
    audible: bool = False


class Engine:
    def __init__(self, *, model: Model, input: InputDevice, output: OutputDevice,
                 bus: EventBus | None = None, clock: Clock | None = None,
                 config: EngineConfig | None = None, offline: bool = True) -> None:
        self.model = model
        self.input = input
        self.output = output
        self.bus = bus or EventBus()
        self.clock = clock or VirtualClock()
        self.config = config or EngineConfig()
        self.offline = offline
        self.controller = Controller()
        self.stats = StepStats()
        self.step_index = 0
        self.lifecycle = Lifecycle.NEW
        self.mic_open = True
        self.transcript: list[str] = []
        self._turn = Turn()
        self._pending_units: list[int] = []
        self._commands: asyncio.Queue[Command] = asyncio.Queue()
        self._resampler: soxr.ResampleStream | None = None
        self._silence = np.zeros(STEP_SAMPLES, dtype=np.float32)
        self._lead_in = np.zeros(round(self.config.lead_in_ms * SAMPLE_RATE / 1000), dtype=np.float32)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duplex-backbone")
        self._wall_start = 0.0
        self._tail_steps_used = 0
        self._finite = SampleGuard()  # NaN/inf input -> silence, reported once
        attach = getattr(input, "attach_status", None)  # live devices that reopen themselves
        if attach is not None:
            attach(self.device_status)

    # ---- public surface -------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self.controller.phase

    def submit(self, command: Command) -> None:
        """Queue an outside command; it is applied at the next step boundary."""
        self._commands.put_nowait(command)

    def stop(self) -> None:
        self.submit(Command.STOP)

    def device_status(self, ok: bool | None, message: str) -> None:
        """A live device failed (DEGRADED: the model is cut off), came back (LISTENING), or changed
        under us (None: an event only).

        Called by the input between steps (from inside its read), so the controller is never fed
        concurrently with a step."""
        what = "changed" if ok is None else "recovered" if ok else "lost"
        self._publish(EventType.DEVICE, what=what, message=message)
        if ok is not None:
            self._feed(Input.DEVICE_RECOVERED if ok else Input.DEVICE_ERROR)

    async def run(self, *, max_steps: int | None = None) -> None:
        """Run until the input ends (and the model has finished), STOP, or `max_steps`."""
        self._start()
        try:
            while self.lifecycle is Lifecycle.RUNNING:
                if max_steps is not None and self.step_index >= max_steps:
                    break
                played = self._play()  # the speaker plays block k while the mic records chunk k
                chunk = await self._next_chunk()
                if chunk is None:
                    break
                await self._compute(chunk, played)
        finally:
            self._finish()

    async def step(self, chunk: np.ndarray) -> Sequence[Token]:
        """One full step: play one block, apply commands, compute, route tokens (starts the session)."""
        if self.lifecycle is Lifecycle.NEW:
            self._start()
        return await self._compute(chunk, self._play())

    def _play(self) -> np.ndarray | None:
        """A clocked speaker plays the next block now; a callback device plays on its own."""
        if not self.output.clocked:
            return None
        before = self.output.queue.played
        block = self.output.advance()
        self._track_block(self.step_index, block, self.output.queue.played - before)
        return block

    async def _compute(self, chunk: np.ndarray, played: np.ndarray | None) -> Sequence[Token]:
        k = self.step_index
        self._apply_commands()
        if self.lifecycle is not Lifecycle.RUNNING:
            return ()
        heard = chunk if self.mic_open else self._silence
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        tokens = await loop.run_in_executor(self._executor, self.model.backbone.step, heard)
        compute_ms = (time.perf_counter() - started) * 1000.0
        step_end = (k + 1) * STEP_SECONDS
        await self.clock.wait_until(step_end)
        self._check_tokens(tokens)
        self.stats.add(compute_ms)
        if compute_ms > self.config.overrun_ms:
            self.stats.overruns += 1
            self._publish(EventType.OVERRUN, step=k, ms=round(compute_ms, 2))
        if self.config.step_events:
            self._publish(EventType.STEP, step=k, ms=round(compute_ms, 3), tokens=[str(t) for t in tokens])
        for token in tokens:
            self._route(token)
        await self._decode_pending_audio()
        self._track_speaker(k, played)
        if self.phase is Phase.DRAINING and self.output.queue.queued == 0:
            self._feed(Input.PLAYBACK_DONE)
        self.step_index += 1
        return tokens

    # ---- lifecycle ------------------------------------------------------------------------

    def _start(self) -> None:
        if self.lifecycle is not Lifecycle.NEW:
            raise RuntimeError("an Engine runs once; make a new one")
        self.lifecycle = Lifecycle.RUNNING
        self._wall_start = time.perf_counter()
        self._publish(EventType.SESSION, what="started", backbone=self.model.name)
        self._feed(Input.START)

    def _finish(self) -> None:
        if self.lifecycle is Lifecycle.RUNNING:
            self.lifecycle = Lifecycle.STOPPED
        if self.phase is not Phase.IDLE:
            self._feed(Input.STOP)
        wall = time.perf_counter() - self._wall_start
        self.stats.wall_s = wall
        self.stats.session_s = self.step_index * STEP_SECONDS
        self._publish(EventType.SESSION, what="stopped", steps=self.step_index, **self.stats.summary())
        self._executor.shutdown(wait=True)

    async def _next_chunk(self) -> np.ndarray | None:
        try:
            chunk = await self.input.read()
        except DeviceError as exc:
            self._publish(EventType.ERROR, message=str(exc))
            self._feed(Input.DEVICE_ERROR)
            return None
        if chunk is not None:
            return self._finite.clean(chunk, self.step_index * STEP_SECONDS,
                                      lambda **data: self._publish(EventType.BAD_SAMPLES, **data))
        if not self.offline:
            return None
        # Offline input ended: let the model finish its turn, on silence, within max_tail_s.
        busy = self.phase in (Phase.SPEAKING, Phase.DRAINING) or self.output.queue.queued > 0
        tail_steps = round(self.config.max_tail_s / STEP_SECONDS)
        if busy and self._tail_steps_used < tail_steps:
            self._tail_steps_used += 1
            return self._silence
        return None

    # ---- tokens and actions ---------------------------------------------------------------

    def _check_tokens(self, tokens: Sequence[Token]) -> None:
        if len(tokens) != TOKENS_PER_STEP:
            raise RuntimeError(f"backbone {self.model.name} returned {len(tokens)} tokens, not 4")

    def _route(self, token: Token) -> None:
        if token.kind is Kind.TEXT:
            if token.text:
                self.transcript.append(token.text)
                self._publish(EventType.TEXT, text=token.text)
            return
        if token.kind in CONTROL_KINDS and token.kind is not Kind.THINK:
            self._publish(EventType.CONTROL, token=token.kind.value)
        self._feed(CONTROLLER_INPUT[token.kind], token)

    def _feed(self, inp: Input, token: Token | None = None) -> Transition:
        result = self.controller.feed(inp)
        if result.changed:
            self._publish(EventType.STATE, **{"from": result.source.value, "to": result.target.value})
        for action in result.actions:
            self._execute(action, token)
        return result

    def _execute(self, action: Action, token: Token | None) -> None:
        queue = self.output.queue
        if action is Action.PLAY_AUDIO and token is not None:
            self._pending_units.append(token.unit)
        elif action is Action.START_SPEAKER:
            if self.output.clocked and self._lead_in.size and queue.queued == 0:
                queue.push(self._lead_in)  # live devices have a jitter buffer of their own
            self._turn = Turn(start_played=queue.played + queue.queued)
            self._resampler = None
        elif action is Action.FLUSH_SPEAKER:
            self._pending_units.clear()
            queue.flush()
        elif action is Action.CANCEL_SYNTHESIS:
            self.model.vocoder.reset()
            self._resampler = None
        elif action is Action.TRUNCATE_CONTEXT:
            self.model.backbone.heard(self.units_heard())
        elif action is Action.RESET_CONTEXT:
            self.model.backbone.reset()
            self.transcript.clear()
        elif action is Action.OPEN_MIC:
            if not self.mic_open:
                self._publish(EventType.MIC, what="unmuted")
            self.mic_open = True
        elif action is Action.CLOSE_MIC:
            if self.mic_open and self.phase is not Phase.IDLE:
                self._publish(EventType.MIC, what="muted")
            self.mic_open = False
        # DROP_AUDIO: nothing to do, by definition.

    def units_heard(self) -> int:
        """Speech units of the current turn that reached the speaker (the fade tail included)."""
        queue = self.output.queue
        return max(0, queue.played + queue.queued - self._turn.start_played) // UNIT_SAMPLES

    async def _decode_pending_audio(self) -> None:
        """Decode this step's units on the worker thread (a neural vocoder is compute, and the loop
        never waits on compute); once the turn has ended (EOT), drain the resampler's tail too."""
        vocoder = self.model.vocoder
        turn_over = self.phase is not Phase.SPEAKING
        if not self._pending_units and not (turn_over and self._resampler is not None):
            return
        units, self._pending_units = self._pending_units, []
        if units:
            loop = asyncio.get_running_loop()
            audio = await loop.run_in_executor(self._executor, vocoder.decode, units)
        else:
            audio = np.zeros(0, np.float32)
        if vocoder.sample_rate != SAMPLE_RATE:
            if self._resampler is None:
                self._resampler = soxr.ResampleStream(vocoder.sample_rate, SAMPLE_RATE, 1, dtype="float32")
            audio = self._resampler.resample_chunk(audio.astype(np.float32), last=turn_over)
            if turn_over:
                self._resampler = None
        self.output.queue.push(audio)

    def _apply_commands(self) -> None:
        while not self._commands.empty():
            command = self._commands.get_nowait()
            self._publish(EventType.COMMAND, command=command.name.lower())
            self._feed(command.value)
            if command is Command.STOP:
                self.lifecycle = Lifecycle.STOPPED

    # ---- speaker events -------------------------------------------------------------------

    def _track_speaker(self, k: int, played: np.ndarray | None) -> None:
        """Speaker edges of a callback device, after the step's audio was queued."""
        if played is not None:
            return  # a clocked output: already tracked by _track_block as the block played
        queue = self.output.queue
        t0 = k * STEP_SECONDS
        if queue.timed:  # a callback device stamps its own edges
            for t, audible in queue.take_marks():
                self._turn.audible = audible
                self._publish_at(t, EventType.SPEAKER, what="started" if audible else "stopped")
            return
        active = queue.queued > 0  # a callback device without timestamps: judge from the counters
        if active != self._turn.audible:
            self._turn.audible = active
            self._publish_at(t0, EventType.SPEAKER, what="started" if active else "stopped")

    def _track_block(self, k: int, block: np.ndarray, from_queue: int) -> None:
        """Speaker edges of a clocked output, decided as block k is played (so events stay in time order).

        `from_queue` samples of the block came from the queue; fewer than a block means the queue
        ran dry inside it: the speaker stopped there.
        """
        t0 = k * STEP_SECONDS
        if not self._turn.audible and from_queue:
            self._turn.audible = True
            nonzero = np.flatnonzero(block[:from_queue])
            self._publish_at(t0 + (nonzero[0] if nonzero.size else 0) / SAMPLE_RATE, EventType.SPEAKER,
                             what="started")
        if self._turn.audible and from_queue < block.size:
            self._turn.audible = False
            self._publish_at(t0 + from_queue / SAMPLE_RATE, EventType.SPEAKER, what="stopped")

    # ---- events ---------------------------------------------------------------------------

    def _publish(self, type: EventType, **data: object) -> None:
        self._publish_at(self.clock.now(), type, **data)

    def _publish_at(self, t: float, type: EventType, **data: object) -> None:
        self.bus.publish(Event(t, type, data))
