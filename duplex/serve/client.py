"""The thin client's connection to `duplex-serve`: a link that survives its server, and the file ends.

`Link` opens a conversation (token, subprotocol, the server's hello) and says which failures are
worth retrying: a dropped connection, a draining or full server, a 503 from a load balancer with
no server up are retried with backoff (the MQTT bridge's `Backoff`, 0.25 s doubling to 2 s, +-20 %
jitter) for up to `retry_for_s`; a refused token, a wrong path or a frame the server rejected
are one-line errors at once (`ServerError`, exit status 2).

`BlockWriter` writes the server's speaker blocks into a WAV at their step and `frames_of` encodes
an input file into frames: with them `duplex.serve.remote.FileClient` is the offline run over a server.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        except ssl.SSLCertVerificationError as exc:  # a wrong CA or host name does not fix itself
            raise ServerError(f"{self.url}: the server's certificate is not trusted ({one_line(exc)}); "
                              "for a private CA set SSL_CERT_FILE") from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise _Retry(f"cannot connect ({one_line(exc)})") from None
        try:
            return ws, protocol.check_hello(await ws.recv())
        except ConnectionClosed as exc:
            code, reason = close_of(exc)
            if code in protocol.RETRYABLE:
                raise _Retry(f"closed {code}: {reason}") from None
            raise ServerError(f"{self.url}: closed {code}: {reason}") from None
        except protocol.FrameError as exc:
            await ws.close()
            raise ServerError(f"{self.url}: {exc}") from None


class _Retry(Exception):
    """A failure that a later attempt may not meet."""


def close_of(exc: ConnectionClosed) -> tuple[int, str]:
    """The close code and reason the server sent (1006 when the connection just dropped)."""
    if exc.rcvd is None:
        return 1006, "the connection dropped"
    return exc.rcvd.code, exc.rcvd.reason or "no reason given"


class BlockWriter:
    """Speaker blocks into a PCM16 WAV at their step: silence over gaps, a repeated step written once.

    The file is created by the first block, so a server that never answers leaves an existing file alone."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: sf.SoundFile | None = None
        self.steps = 0
        self._silence = np.zeros(STEP_SAMPLES, dtype="<i2")

    def play(self, step: int, frame: bytes) -> None:
        if step < self.steps:
            return
        try:
            if self._file is None:
                self._file = sf.SoundFile(str(self.path), "w", SAMPLE_RATE, 1, subtype="PCM_16")
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

    def flush(self) -> None:
        """Nothing to silence: the server's blocks are already what the speaker plays after a BREAK."""

    def hold(self, held: bool) -> None:
        """Nothing to pause: the server's blocks are already silent while the reply is held."""

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            with contextlib.suppress(sf.LibsndfileError, RuntimeError, OSError):
                self._file.close()


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
