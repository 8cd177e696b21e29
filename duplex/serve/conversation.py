"""One WebSocket connection, one conversation: a `DuplexSession` whose microphone and speaker are the socket.

The session runs on the virtual clock, paced by the client: each received frame is one step's
microphone input, and each step's speaker block goes back as one binary frame, exactly the block
an offline run writes to its WAV. Events leave in the order they happened relative to the audio
(`Outbox`): everything published before a block is sent before it, so a client that flushes its
speaker on BREAK never plays a block that was cut on the server.

What a client sends is checked as it arrives (`protocol`); a bad frame, an unknown command or a
flood closes this connection only, with a one-line reason. SIGTERM (`draining`) lets the model
finish its turn, then stops the session and closes with 1001.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from audio_io.format import STEP_SAMPLES, STEP_SECONDS
from audio_io.speaker import SpeakerQueue
from duplex.backbones.base import Model
from duplex.commands import Ping, Start, Stop
from duplex.config import Config
from duplex.errors import USER_ERRORS, SessionError
from duplex.events import Subscription
from duplex.mqtt.limits import TokenBucket
from duplex.mqtt.protocol import Request
from duplex.serve import protocol
from duplex.serve.protocol import EndOfInput, FrameError
from duplex.session import DuplexSession
from states import Phase

TURN_PHASES = (Phase.SPEAKING, Phase.DRAINING)  # a drain waits for these to end
_log = logging.getLogger("duplex.serve")


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits; a client over them is closed with TOO_FAST (4008)."""

    frames_per_s: float = 1.5 / STEP_SECONDS  # 1.5x real time: room to catch up after a network stall
    frame_burst: int = 32  # about 5 s of audio at once
    commands_per_s: float = 50.0  # the MQTT bridge's defaults
    command_burst: int = 20
    drain_timeout_s: float = 30.0  # longest wait for a model's turn to end on SIGTERM
    idle_timeout_s: float = 30.0  # a connection that sends no frame this long gives its slot back
    outbox_backlog: int = 1000  # messages waiting for a client that does not read (about a minute of blocks)


class StepLatency:
    """Server-wide: frame k received -> the speaker block computed from it sent (ms), recent steps only."""

    def __init__(self, keep: int = 4096) -> None:
        self.recent: deque[float] = deque(maxlen=keep)
        self.steps = 0
        self.late = 0  # over one step (160 ms): a real-time client would hear a gap

    def add(self, ms: float) -> None:
        self.recent.append(ms)
        self.steps += 1
        self.late += ms > STEP_SECONDS * 1000

    def figures(self) -> dict[str, float | int]:
        values = np.fromiter(self.recent, dtype=np.float64) if self.recent else np.zeros(1)
        return {"served_steps": self.steps, "late_steps": self.late,
                "step_ms_p50": round(float(np.percentile(values, 50)), 2),
                "step_ms_p99": round(float(np.percentile(values, 99)), 2)}


class Outbox:
    """Everything for the client, in order: the hello, events, speaker blocks, replies; None ends it.

    Bounded: a client that sends frames but does not read what comes back would otherwise grow it by
    a block per frame; past `backlog` items the connection is closed (SLOW_READER)."""

    def __init__(self, *, backlog: int = 1000) -> None:
        self.queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.backlog = backlog
        self._events: Subscription | None = None

    def follow(self, events: Subscription) -> None:
        self._events = events

    def put(self, item: str | bytes) -> None:
        if self.queue.qsize() >= self.backlog:
            raise FrameError(protocol.SLOW_READER, f"the client reads nothing back: {self.backlog} messages "
                                                   "wait to be sent")
        self.queue.put_nowait(item)

    def flush_events(self) -> None:
        """Queue every event published so far (each exactly its JSONL line)."""
        if self._events is not None:
            for event in self._events.pending():
                self.put(event.to_json())

    def end(self) -> None:
        self.flush_events()
        self.queue.put_nowait(None)


class ClientLeft(Exception):
    """The client closed the connection before the end of its input."""


_WAKE = object()  # put in a mic's queue to have it look at the step boundary again (a drain began)


class SocketMic:
    """The session's microphone: frames put by the receiver, None at the end of the input.

    `read()` is where a step begins, before its commands are applied, so `boundary()` (the drain)
    is asked there: a stop submitted then applies at this very step, with no model step in between
    that could start a turn. When it stops the session, the chunk returned is never heard."""

    def __init__(self, outbox: Outbox, *, idle_timeout_s: float, boundary: Callable[[], bool]) -> None:
        self._outbox = outbox
        self._idle_s = idle_timeout_s
        self._boundary = boundary
        self._frames: asyncio.Queue[Any] = asyncio.Queue()
        self._silence = np.zeros(STEP_SAMPLES, dtype=np.float32)
        self.arrivals: deque[float] = deque()  # perf_counter of frames read, until their block is sent
        self.ended = False  # the end of the input was read: the engine asks again during the reply's tail

    def put(self, samples: np.ndarray | None) -> None:
        self._frames.put_nowait(samples)

    def wake(self) -> None:
        self._frames.put_nowait(_WAKE)

    async def read(self) -> np.ndarray | None:
        self._outbox.flush_events()  # the speaker edges of the block just sent go out now, not a step later
        while not self.ended:
            if self._boundary():
                return self._silence
            try:
                async with asyncio.timeout(self._idle_s):
                    chunk = await self._frames.get()
            except TimeoutError:
                raise FrameError(protocol.IDLE, f"no audio for {self._idle_s:g} s; the slot is given back") from None
            if chunk is _WAKE:
                continue
            if chunk is None:
                self.ended = True
                break
            self.arrivals.append(time.perf_counter())
            return chunk  # type: ignore[no-any-return]
        return None

    def close(self) -> None:
        pass


class SocketSpeaker:
    """The session's speaker: a clocked output whose every block goes to the client as PCM16."""

    clocked = True

    def __init__(self, outbox: Outbox, mic: SocketMic, latency: StepLatency) -> None:
        self.queue = SpeakerQueue()
        self._outbox = outbox
        self._mic = mic
        self._latency = latency
        self._block = np.zeros(STEP_SAMPLES, dtype=np.float32)

    def advance(self) -> np.ndarray:
        self.queue.pull_into(self._block)
        self._outbox.flush_events()
        self._outbox.put(protocol.samples_to_frame(self._block))
        if self._mic.arrivals:  # the block that follows the step of the oldest frame read
            self._latency.add((time.perf_counter() - self._mic.arrivals.popleft()) * 1000.0)
        return self._block

    def close(self) -> None:
        pass


class Conversation:
    """Runs one connection to its end; `run()` returns the close code and reason it used."""

    def __init__(self, *, ws: ServerConnection, lane: Model, config: Config, limits: Limits,
                 latency: StepLatency, draining: asyncio.Event, hello: str, name: str) -> None:
        self.ws = ws
        self.limits = limits
        self.draining = draining
        self.outbox = Outbox(backlog=limits.outbox_backlog)
        self.outbox.put(hello)
        self.mic = SocketMic(self.outbox, idle_timeout_s=limits.idle_timeout_s, boundary=self._drain_now)
        speaker = SocketSpeaker(self.outbox, self.mic, latency)
        self.session = DuplexSession(config=config, input=self.mic, output=speaker, model=lane, name=name)
        self.outbox.follow(self.session.events(maxsize=0))
        self._frames = TokenBucket(rate=limits.frames_per_s, burst=limits.frame_burst)
        self._commands = TokenBucket(rate=limits.commands_per_s, burst=limits.command_burst)
        self._received = 0
        self._drain_deadline = 0.0
        self.close_code = protocol.NORMAL
        self.close_reason = "the input ended and the reply was sent"

    async def run(self) -> tuple[int, str]:
        try:
            async with self.session, asyncio.TaskGroup() as tasks:
                sender = tasks.create_task(self._send(), name=f"{self.session.name}.send")
                receiver = tasks.create_task(self._receive(), name=f"{self.session.name}.receive")
                drain = tasks.create_task(self._drain_when_asked(), name=f"{self.session.name}.drain")
                await self.session.wait()
                receiver.cancel()
                drain.cancel()
                self.outbox.end()
                await sender
        except* FrameError as group:
            error = group.exceptions[0]
            assert isinstance(error, FrameError)
            self._ending(error.code, str(error))
        except* (ConnectionClosed, ClientLeft):
            self._ending(protocol.NORMAL, "the client went away")
        except* USER_ERRORS as group:
            self._ending(protocol.SERVER_ERROR, f"the conversation failed: {group.exceptions[0]}")
        except* Exception as group:  # a bug in a model must not take the other conversations down
            _log.error("%s failed", self.session.name, exc_info=group.exceptions[0])
            self._ending(protocol.SERVER_ERROR, f"the conversation failed on the server "
                                                f"({type(group.exceptions[0]).__name__}); see the server log")
        return self.close_code, protocol.close_reason(self.close_reason)

    def _ending(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason

    async def _send(self) -> None:
        while (item := await self.outbox.queue.get()) is not None:
            await self.ws.send(item)

    async def _receive(self) -> None:
        async for message in self.ws:
            if isinstance(message, bytes):
                if not self._frames.allow():
                    raise FrameError(protocol.TOO_FAST, f"frames arrive faster than {self.limits.frames_per_s:g} per "
                                                        "second (real time is 6.25); pace them at 160 ms")
                self.mic.put(protocol.frame_to_samples(message, self._received))
                self._received += 1
                continue
            if not self._commands.allow():
                raise FrameError(protocol.TOO_FAST, f"commands arrive faster than {self.limits.commands_per_s:g} "
                                                    "per second")
            parsed = protocol.parse_text(message)
            if isinstance(parsed, EndOfInput):
                self.mic.put(None)
                return
            self._apply(parsed)
        raise ClientLeft()

    def _apply(self, request: Request) -> None:
        error = None
        if isinstance(request.cmd, Start):
            error = "a conversation is running (one per connection: open another connection for another)"
        elif not isinstance(request.cmd, Ping):
            try:
                self.session.submit(request.cmd)
                if isinstance(request.cmd, Stop):
                    self._ending(protocol.NORMAL, "stopped by the client")
            except SessionError as exc:
                error = str(exc)
        self.outbox.put(protocol.reply(request, error))

    async def _drain_when_asked(self) -> None:
        """SIGTERM: wake the microphone, so that a client between frames is stopped too."""
        await self.draining.wait()
        self._drain_deadline = time.monotonic() + self.limits.drain_timeout_s
        self.mic.wake()

    def _drain_now(self) -> bool:
        """At a step boundary: while draining, stop unless the model is in its turn (or the turn overran
        --drain-timeout). True when the session was stopped here."""
        if not self.draining.is_set() or not self.session.running:
            return False
        deadline = self._drain_deadline or time.monotonic() + self.limits.drain_timeout_s
        self._drain_deadline = deadline
        if self.session.phase in TURN_PHASES and time.monotonic() < deadline:
            return False
        self.session.stop()
        self._ending(protocol.GOING_AWAY, "server shutting down: the conversation ended after the model's turn; "
                                          "reconnect to continue")
        return True
