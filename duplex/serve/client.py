"""The thin client of `duplex-serve`: a connection that survives its server, and the offline file run.

`Link` opens a conversation (token, subprotocol, the server's hello) and says which failures are
worth retrying: a dropped connection, a draining or full server, a 503 from a load balancer with
no server up are retried with backoff (the MQTT bridge's `Backoff`, 0.25 s doubling to 2 s, +-20 %
jitter) for up to `retry_for_s`; a refused token, a wrong path or a frame the server rejected
are one-line errors at once (`ServerError`, exit status 2).

`FileClient` is `duplex-chat --server URL --input IN.wav --output OUT.wav --events E.jsonl`: it
sends the input at real time, one 160 ms frame per step, writes each speaker block the server
sends at its step (the WAV equals the local offline run's, byte for byte) and each event line as
it came (the same JSONL). After a reconnect the new conversation continues from the input frame
due at that moment: the audio of the outage is lost, as it would be for a live user; the output
stays sample-aligned with the input (silence over the gap) and events keep one timeline (their
`t` shifted by the new conversation's start), with a `{"type":"link"}` line for the loss and the
reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from audio_io.errors import AudioFileError, one_line
from audio_io.format import SAMPLE_RATE, STEP_SAMPLES, STEP_SECONDS
from audio_io.wav import WavInput, sync_header
from duplex.errors import DuplexError
from duplex.eventlog import EventLog
from duplex.mqtt.limits import Backoff
from duplex.serve import protocol

Report = Callable[[str], None]


class ServerError(DuplexError):
    """The server refused the conversation or the client's input, or could not be reached in time."""


def stderr_report(prog: str) -> Report:
    return lambda line: print(f"{prog}: {line}", file=sys.stderr, flush=True)


@dataclass(slots=True)
class Link:
    """How to reach a server, and how long to keep trying."""

    url: str
    token: str | None = None
    ssl: ssl.SSLContext | None = None
    retry_for_s: float = 30.0
    report: Report = field(default=stderr_report("duplex-chat"))
    backoff: Backoff = field(default_factory=lambda: Backoff(low=0.25, high=2.0))
    connects: int = 0

    async def open(self) -> tuple[ClientConnection, dict[str, Any]]:
        """A conversation and the server's hello; retried with backoff, ServerError when hopeless."""
        started = time.monotonic()
        while True:
            try:
                opened = await self._connect()
            except _Retry as exc:
                if time.monotonic() - started > self.retry_for_s:
                    raise ServerError(f"{self.url}: {exc} (retried for {self.retry_for_s:g} s)") from None
                delay = self.backoff.next()
                self.report(f"{self.url}: {exc}; retrying in {delay:.1f} s")
                await asyncio.sleep(delay)
                continue
            self.backoff.reset()
            self.connects += 1
            return opened

    async def _connect(self) -> tuple[ClientConnection, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            ws = await connect(self.url, subprotocols=[protocol.SUBPROTOCOL],  # type: ignore[list-item]
                               additional_headers=headers, compression=None, max_size=protocol.MAX_MESSAGE_BYTES,
                               ssl=self.ssl, open_timeout=10)
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = one_line(exc.response.body.decode(errors="replace")) if exc.response.body else ""
            if status in (502, 503, 504):
                raise _Retry(f"HTTP {status} (no server free)") from None
            raise ServerError(f"{self.url}: refused: HTTP {status} {body}".rstrip()) from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise _Retry(f"cannot connect ({one_line(exc)})") from None
        try:
            return ws, protocol.check_hello(await ws.recv())
        except ConnectionClosed as exc:
            code, reason = _close_of(exc)
            if code in protocol.RETRYABLE:
                raise _Retry(f"closed {code}: {reason}") from None
            raise ServerError(f"{self.url}: closed {code}: {reason}") from None
        except protocol.FrameError as exc:
            await ws.close()
            raise ServerError(f"{self.url}: {exc}") from None


class _Retry(Exception):
    """A failure that a later attempt may not meet."""


def _close_of(exc: ConnectionClosed) -> tuple[int, str]:
    if exc.rcvd is None:
        return 1006, "the connection dropped"
    return exc.rcvd.code, exc.rcvd.reason or "no reason given"


class BlockWriter:
    """Speaker blocks into a PCM16 WAV at their step: silence over gaps, a repeated step written once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = sf.SoundFile(str(path), "w", SAMPLE_RATE, 1, subtype="PCM_16")
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(path, f"cannot write ({one_line(exc)})") from exc
        self.steps = 0
        self._silence = np.zeros(STEP_SAMPLES, dtype="<i2")

    def write(self, step: int, frame: bytes) -> None:
        if step < self.steps:
            return
        try:
            while self.steps < step:
                self._file.write(self._silence)
                self.steps += 1
            self._file.write(np.frombuffer(frame, dtype="<i2"))
            self.steps += 1
            if self.steps % 6 == 0:
                sync_header(self._file)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(self.path, f"writing failed after {self.steps * STEP_SECONDS:.2f} s "
                                            f"({one_line(exc)}: disk full?); the WAV keeps what was written") from exc

    def close(self) -> None:
        if not self._file.closed:
            with contextlib.suppress(sf.LibsndfileError, RuntimeError, OSError):
                self._file.close()


@dataclass(slots=True)
class RemoteResult:
    events: list[dict[str, Any]]  # every line written to --events, link lines included
    steps: int  # speaker blocks received
    reconnects: int
    replies: list[dict[str, Any]]


class FileClient:
    """An input file to a server at real time; its speaker and events to files, as the offline run writes them."""

    def __init__(self, *, link: Link, input: Path, output: Path | None = None, events: Path | None = None,
                 commands: list[tuple[float, str]] | None = None) -> None:
        self.link = link
        self.frames = frames_of(input)  # read and encoded before connecting: sending costs nothing
        self._output_path = output
        self._events_path = events
        self._commands = sorted(commands or [])  # (session seconds, JSON text): scripted operator commands
        self.events: list[dict[str, Any]] = []
        self.servers: list[str] = []  # the name in each hello: which server each connection reached
        self.replies: list[dict[str, Any]] = []
        self._writer: BlockWriter | None = None
        self._log: EventLog | None = None
        self._next = 0  # the next input frame to send
        self._t0 = 0.0

    async def run(self) -> RemoteResult:
        try:
            await self._converse()
        finally:
            if self._writer:
                self._writer.close()
            if self._log:
                self._log.close()
        return RemoteResult(self.events, self._writer.steps if self._writer else 0, self.link.connects - 1,
                            self.replies)

    async def _converse(self) -> None:
        while True:
            ws, hello = await self.link.open()
            self.servers.append(str(hello.get("server")))
            if self.link.connects == 1:  # outputs are created once a server has answered, not before
                self._writer = BlockWriter(self._output_path) if self._output_path else None
                self._log = EventLog(self._events_path) if self._events_path else None
                self._t0 = time.monotonic()
            else:  # continue with the frame due now: the outage's audio is lost, as for a live user
                self._next = max(self._next, min(len(self.frames), self._due_now()))
                self._line({"t": round(self._next * STEP_SECONDS, 4), "type": "link", "what": "reconnected",
                            "connects": self.link.connects, "from_step": self._next})
            offset = self._next
            try:
                async with asyncio.TaskGroup() as tasks:
                    sender = tasks.create_task(self._send(ws), name="duplex.client.send")
                    code, reason = await self._receive(ws, offset)
                    sender.cancel()
            except* ConnectionClosed as group:  # a send after the close
                exc = group.exceptions[0]
                assert isinstance(exc, ConnectionClosed)
                code, reason = _close_of(exc)
            if code == protocol.NORMAL:  # the input ended and the reply's tail came, or a stop command
                return
            if code not in protocol.RETRYABLE:
                raise ServerError(f"{self.link.url}: the server closed the conversation: {reason} (code {code})")
            self.link.report(f"connection lost ({code}: {reason}); reconnecting")
            self._line({"t": round(self._due_now() * STEP_SECONDS, 4), "type": "link", "what": "lost",
                        "code": code, "reason": reason})

    def _due_now(self) -> int:
        return int((time.monotonic() - self._t0) / STEP_SECONDS)

    async def _send(self, ws: ClientConnection) -> None:
        while self._next < len(self.frames):
            due = self._t0 + self._next * STEP_SECONDS
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            while self._commands and self._commands[0][0] <= self._next * STEP_SECONDS:
                await ws.send(self._commands.pop(0)[1])
            await ws.send(self.frames[self._next])
            self._next += 1
        await ws.send(protocol.END)

    async def _receive(self, ws: ClientConnection, offset: int) -> tuple[int, str]:
        """Blocks and events until the server closes; how it closed (code, reason) decides what next."""
        step = offset
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    if self._writer is not None:
                        self._writer.write(step, message)
                    step += 1
                    continue
                obj = json.loads(message)
                if obj.get("type") == "reply":
                    self.replies.append(obj)
                    continue
                if offset:
                    obj["t"] = round(obj["t"] + offset * STEP_SECONDS, 4)
                    self._line(obj)
                else:
                    self._line(obj, message)
        except ConnectionClosed as exc:
            return _close_of(exc)
        return ws.close_code or 1006, ws.close_reason or "no reason given"

    def _line(self, obj: dict[str, Any], text: str | None = None) -> None:
        self.events.append(obj)
        if self._log is not None:
            self._log.write_line(text if text is not None else json.dumps(obj, separators=(",", ":")))


def frames_of(path: Path) -> list[bytes]:
    """The input as PCM16 frames of one step (the last padded with silence, as the offline run pads it)."""
    source = WavInput(path)
    try:
        frames = []
        while (chunk := source.read_now()) is not None:
            frames.append(protocol.samples_to_frame(chunk))
        return frames
    finally:
        source.close()
