"""A conversation on a `duplex-serve`, with the surface of a `DuplexSession`.

`RemoteSession` is what the thin clients run: `duplex-chat --server --input` (a file, paced at
real time, into a WAV), `duplex-chat --server` live (the sound card; the TUI follows its events)
and `duplex-kiosk --server` (its supervisor and MQTT bridge drive it like a local session). Its
`events()` are the server's typed events, `submit()` sends the command on the wire, `wait()`
ends with the conversation, `stats()` counts what arrived.

What must not wait on the network stays here: echo cancellation is the local microphone's, and
a BREAK flushes the local speaker the moment it arrives (`SpeakerSink.flush`), as a hold pauses
it (`SpeakerSink.hold`), so time-to-silence is the local device's. A dropped connection is
reported (`Link.report`, and a `link` line in the event log) and retried with backoff; the new
connection is a new conversation on the server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from audio_io.format import STEP_SECONDS
from duplex.commands import Command, Say, Stop
from duplex.errors import NotSupportedError, SessionError
from duplex.eventlog import EventLog
from duplex.events import Control, EventBus, Hold, Mic, StateChanged, Subscription, from_dict
from duplex.serve import protocol
from duplex.serve.client import BlockWriter, Link, ServerError, close_of, frames_of
from duplex.stats import SessionStats
from duplex.tokens import Kind

_names = itertools.count(1)
QUICK_STEPS = 10  # a conversation closed within 1.6 s of its start did not really start ...
MAX_QUICK_FAILURES = 5  # ... and five of them in a row (a server that fails every conversation) end the retries


class FrameSource(Protocol):
    """Microphone frames (PCM16, one step each). `paced`: they exist ahead of time (a file) and are
    sent at real time, and the frames of an outage are skipped; else `read()` waits for each (a mic)."""

    paced: bool

    async def read(self) -> bytes | None: ...

    def skip(self, n: int) -> int:
        """Drop up to `n` frames (the audio of an outage); how many were dropped."""
        ...

    def close(self) -> None: ...


class SpeakerSink(Protocol):
    """Where the server's speaker blocks go: a WAV at their step, or the local sound card."""

    def play(self, step: int, frame: bytes) -> None: ...

    def flush(self) -> None:
        """A BREAK arrived: silence what is queued locally, now."""
        ...

    def hold(self, held: bool) -> None:
        """The reply paused (held) or its pause ended: pause what is queued locally, or play it again."""
        ...

    def close(self) -> None: ...


class FileFrames:
    """A file's frames, encoded before the conversation starts."""

    paced = True

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames
        self.index = 0

    async def read(self) -> bytes | None:
        if self.index >= len(self.frames):
            return None
        self.index += 1
        return self.frames[self.index - 1]

    def skip(self, n: int) -> int:
        n = max(0, min(n, len(self.frames) - self.index))
        self.index += n
        return n

    def close(self) -> None:
        pass


class RemoteSession:
    """`async with RemoteSession(link=..., source=..., sink=...) as session:` a conversation on a server."""

    def __init__(self, *, link: Link, source: FrameSource, sink: SpeakerSink | None = None,
                 events_path: str | Path | None = None, name: str | None = None) -> None:
        self.link = link
        self.name = name or f"remote-{next(_names)}"
        self.source = source
        self.sink = sink
        self._events_path = Path(events_path) if events_path is not None else None
        self._log: EventLog | None = None
        self._bus = EventBus()
        self.lines: list[dict[str, Any]] = []  # every event line, the client's `link` lines included
        self.replies: list[dict[str, Any]] = []
        self.servers: list[str] = []  # the server named by each hello
        self._outgoing: asyncio.Queue[str] = asyncio.Queue()  # commands
        self._driver: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._stopping = False
        self._sent = 0  # frames consumed from the source (sent, or skipped over an outage)
        self._step = 0  # speaker blocks: the step the next one belongs to
        self._t0 = 0.0
        self._sent_at: deque[tuple[int, float]] = deque()
        self._round_trips: deque[float] = deque(maxlen=4096)
        self.state = "IDLE"
        self.mic_open = True

    # ---- DuplexSession's surface ----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._driver is not None:
            raise SessionError(f"session {self.name!r} runs once; make a new RemoteSession")
        try:
            opened = await self.link.open()  # a hopeless server fails here, before any output exists
            self._log = EventLog(self._events_path) if self._events_path is not None else None
        except BaseException:
            self._close()
            raise
        self._t0 = time.monotonic()
        self._driver = asyncio.create_task(self._drive(opened), name=f"duplex.{self.name}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._driver is not None
        try:
            if exc is not None:
                self._driver.cancel()
            elif self.running:
                self.stop()
            await asyncio.wait([self._driver])
            failure = None if self._driver.cancelled() else self._driver.exception()
            if failure is not None and exc is None:
                raise failure
        finally:
            self._close()

    def events(self, *, maxsize: int = 10_000) -> Subscription:
        subscription = self._bus.subscribe(maxsize=maxsize)
        if self._done.is_set():
            subscription.close()
        return subscription

    @property
    def running(self) -> bool:
        return self._driver is not None and not self._done.is_set() and not self._stopping

    def submit(self, command: Command) -> None:
        if isinstance(command, Say):
            raise NotSupportedError("say(): not available through a server (a command carries no audio)")
        if not self.running:
            raise SessionError(f"{command.name}(): session {self.name!r} is not running")
        if isinstance(command, Stop):
            self._stopping = True
        self._outgoing.put_nowait(json.dumps({"cmd": command.name}))

    def stop(self) -> None:
        self.submit(Stop())

    def ping(self, id: str | int) -> None:
        """Ask the server whether it is alive; its reply lands in `replies`."""
        if self.running:
            self._outgoing.put_nowait(json.dumps({"cmd": "ping", "id": id}))

    async def wait(self) -> SessionStats:
        if self._driver is None:
            raise SessionError(f"session {self.name!r} was not started: use 'async with RemoteSession(...)'")
        await self._done.wait()
        return self.stats()

    def stats(self) -> SessionStats:
        trips = np.fromiter(self._round_trips, dtype=np.float64) if self._round_trips else np.zeros(1)
        return SessionStats(
            name=self.name, running=self.running, state=self.state, mic_open=self.mic_open, steps=self._step,
            session_s=round(self._step * STEP_SECONDS, 3), step_ms_p50=round(float(np.percentile(trips, 50)), 2),
            step_ms_p99=round(float(np.percentile(trips, 99)), 2), overruns=int((trips > STEP_SECONDS * 1000).sum()),
            realtime_factor=1.0, events=len(self.lines))

    # ---- the conversation, across reconnections -------------------------------------------------

    async def _drive(self, opened: tuple[ClientConnection, dict[str, Any]]) -> None:
        quick = 0  # conversations in a row that ended within QUICK_STEPS of their start
        try:
            while True:
                ws, hello = opened
                self.servers.append(str(hello.get("server")))
                started = self._step
                code, reason = await self._converse(ws)
                if code == protocol.NORMAL:  # the input ended and the reply's tail came, or a stop
                    return
                quick = quick + 1 if self._step - started < QUICK_STEPS else 0
                if code not in protocol.RETRYABLE or self._stopping or quick >= MAX_QUICK_FAILURES:
                    again = f"; {quick} times in a row right after connecting" if quick >= MAX_QUICK_FAILURES else ""
                    raise ServerError(f"{self.link.url}: the server closed the conversation: {reason} "
                                      f"(code {code}){again}")
                self.link.report(f"connection lost ({code}: {reason}); reconnecting")
                self._line({"t": self._now_t(), "type": "link", "what": "lost", "code": code, "reason": reason})
                opened = await self.link.open()
                if self.source.paced:  # the outage's audio is lost, as it would be for a live user
                    self._sent += self.source.skip(self._due() - self._sent)
                self._line({"t": self._now_t(), "type": "link", "what": "reconnected", "connects": self.link.connects,
                            "from_step": self._sent})
        finally:
            self._done.set()
            self._bus.close()

    async def _converse(self, ws: ClientConnection) -> tuple[int, str]:
        offset = self._sent  # this conversation's step 0 is the client's step `offset`
        self._step = max(self._step, offset)
        try:
            async with asyncio.TaskGroup() as tasks:
                sender = tasks.create_task(self._send(ws), name=f"duplex.{self.name}.send")
                commands = tasks.create_task(self._send_commands(ws), name=f"duplex.{self.name}.commands")
                code, reason = await self._receive(ws, offset)
                sender.cancel()
                commands.cancel()
        except* ConnectionClosed as group:  # a send after the close
            exc = group.exceptions[0]
            assert isinstance(exc, ConnectionClosed)
            code, reason = close_of(exc)
        return code, reason

    async def _send(self, ws: ClientConnection) -> None:
        while True:
            if self.source.paced:
                delay = self._t0 + self._sent * STEP_SECONDS - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            frame = await self.source.read()
            if frame is None:
                await ws.send(protocol.END)
                return
            self._sent_at.append((self._sent, time.perf_counter()))
            self._sent += 1
            await ws.send(frame)

    async def _send_commands(self, ws: ClientConnection) -> None:
        while True:
            await ws.send(await self._outgoing.get())

    async def _receive(self, ws: ClientConnection, offset: int) -> tuple[int, str]:
        """Blocks and events until the server closes; how it closed (code, reason) decides what next."""
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    self._block(message)
                    continue
                obj = json.loads(message)
                if obj.get("type") == "reply":
                    self.replies.append(obj)
                    continue
                if offset:  # one timeline across reconnections
                    obj["t"] = round(obj["t"] + offset * STEP_SECONDS, 4)
                    message = None
                self._event(obj, message)
        except ConnectionClosed as exc:
            return close_of(exc)
        return ws.close_code or 1006, ws.close_reason or "no reason given"

    def _block(self, frame: bytes) -> None:
        if self.sink is not None:
            self.sink.play(self._step, frame)
        self._step += 1
        while self._sent_at and self._sent_at[0][0] < self._step - 2:  # block k+1 follows frame k
            self._sent_at.popleft()
        if self._sent_at and self._sent_at[0][0] == self._step - 2:
            self._round_trips.append((time.perf_counter() - self._sent_at.popleft()[1]) * 1000.0)

    def _event(self, obj: dict[str, Any], text: str | None) -> None:
        self._line(obj, text)
        try:
            event = from_dict(obj)
        except ValueError:
            return  # a newer server's event type: logged, not interpreted
        match event:
            case Control(token=Kind.BREAK) if self.sink is not None:
                self.sink.flush()  # local, now: time-to-silence does not wait on the next block
            case Hold(held=held) if self.sink is not None:
                self.sink.hold(held)  # the same for a held reply: the block queued here is not heard out
            case StateChanged(dst=phase):
                self.state = phase.value
            case Mic(open=is_open):
                self.mic_open = is_open
        self._bus.publish(event)

    def _line(self, obj: dict[str, Any], text: str | None = None) -> None:
        self.lines.append(obj)
        if self._log is not None:
            self._log.write_line(text if text is not None else json.dumps(obj, separators=(",", ":")))

    def _due(self) -> int:
        return int((time.monotonic() - self._t0) / STEP_SECONDS)

    def _now_t(self) -> float:
        return round(max(self._sent, self._due()) * STEP_SECONDS, 4)

    def _close(self) -> None:
        self.source.close()
        if self.sink is not None:
            self.sink.close()
        if self._log is not None:
            self._log.close()


class FileClient:
    """`duplex-chat --server URL --input IN.wav [--output OUT.wav] [--events E.jsonl]`: the offline run,
    over a server, at real time. The input is read and encoded before connecting (a bad file fails first)."""

    def __init__(self, *, link: Link, input: Path, output: Path | None = None, events: Path | None = None) -> None:
        self.frames = frames_of(input)
        self.writer = BlockWriter(output) if output is not None else None
        self.session = RemoteSession(link=link, source=FileFrames(self.frames), sink=self.writer, events_path=events)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every line written to --events so far (the session's events and the client's `link` lines)."""
        return self.session.lines

    @property
    def servers(self) -> list[str]:
        return self.session.servers

    async def run(self) -> RemoteResult:
        async with self.session:
            await self.session.wait()
        return RemoteResult(self.session.lines, self.session.stats().steps, self.session.link.connects - 1,
                            self.session.replies)


@dataclass(slots=True)
class RemoteResult:
    events: list[dict[str, Any]]  # every line written to --events, link lines included
    steps: int  # speaker blocks received
    reconnects: int
    replies: list[dict[str, Any]]
