"""A WAV stream as the microphone: `--input -` (a pipe), `/dev/stdin`, a FIFO.

The natural way to feed a session from another program is a pipe, and a pipe cannot seek, so
libsndfile's reader (which looks for the data size and seeks) is not used: the RIFF header is
parsed here, the samples are read in blocks as the engine asks for them, converted to 16 kHz
mono and resampled in a stream. The buffer holds one block at most, so memory does not depend on
the stream's length, and a writer that never comes (a FIFO nobody opens) or stalls is reported
after `timeout_s` instead of hanging. The data size in the header is taken as a limit only when
it is plausible: streaming writers put 0 or 0xFFFFFFFF there.
"""

from __future__ import annotations

import asyncio
import os
import select
import stat
import struct
import time
from pathlib import Path

import numpy as np
import soxr

from audio_io.errors import AudioFileError
from audio_io.format import SAMPLE_RATE, STEP_SAMPLES, next_chunk
from audio_io.wav import WavInput

MIN_RATE, MAX_RATE = 8_000, 384_000
MAX_CHANNELS = 32
MAX_SKIPPED_CHUNK = 1 << 20  # metadata before the samples (all chunks): more is not a WAV stream
READ_BYTES = 1 << 16
STREAM_TIMEOUT_S = 10.0
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_UNKNOWN_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)


def is_stream(path: Path) -> bool:
    """`-`, or a path that is a pipe, FIFO or character device (read as a stream, never probed)."""
    if str(path) == "-":
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def open_input(path: Path, *, timeout_s: float = STREAM_TIMEOUT_S) -> StreamInput | WavInput:
    """The microphone for `--input PATH`: a stream reader for pipes, the file reader otherwise."""
    return StreamInput(path, timeout_s=timeout_s) if is_stream(path) else WavInput(path)


async def open_input_async(path: Path, *, timeout_s: float = STREAM_TIMEOUT_S) -> StreamInput | WavInput:
    """`open_input` for code on the event loop: a stream's header is waited for on a worker thread.

    A FIFO with no writer yet would otherwise hold the loop (every other session, the UI, remote
    control) for up to `timeout_s` before its one-line error. If the caller is cancelled while the
    thread waits, the stream it opens later is closed, never leaked."""
    if not is_stream(path):
        return WavInput(path)  # a file's header is at hand: read at once
    opening = asyncio.ensure_future(asyncio.to_thread(StreamInput, path, timeout_s=timeout_s))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_unclaimed)
        raise


def _close_unclaimed(opening: asyncio.Future[StreamInput]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


class StreamInput:
    """16 kHz mono 160 ms chunks from a WAV byte stream, read in bounded blocks."""

    def __init__(self, path: Path, *, timeout_s: float = STREAM_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.name = "standard input" if str(path) == "-" else str(path)
        self.timeout_s = timeout_s
        try:
            self._fd = os.dup(0) if str(path) == "-" else os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            os.set_blocking(self._fd, False)
        except OSError as exc:
            raise AudioFileError(self.name, f"cannot open the stream ({exc.strerror or exc})") from exc
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._buf = bytearray()
        self._eof = False  # the writer closed the pipe
        self._done = False  # every sample was delivered to _pending
        try:
            self._read_header()
        except BaseException:
            self.close()
            raise
        self._pending = np.zeros(0, dtype=np.float32)
        self._resampler = (soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32")
                           if self.rate != SAMPLE_RATE else None)
        self.duration = 0.0  # unknown until the stream ends

    # ---- raw bytes ------------------------------------------------------------------------

    def _more(self, limit: int = READ_BYTES) -> bool:
        """Read what the writer has (waiting up to timeout_s); False at the end of the stream."""
        if self._eof:
            return False
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AudioFileError(self.name, f"no data for {self.timeout_s:g} s (no writer on the pipe, "
                                                "or it stalled)")
            if not self._poll.poll(left * 1000):
                continue
            try:
                data = os.read(self._fd, limit)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise AudioFileError(self.name, f"reading the stream failed ({exc.strerror or exc})") from exc
            if not data:
                self._eof = True
                return False
            self._buf += data
            return True

    def _take(self, n: int, what: str) -> bytes:
        while len(self._buf) < n:
            if not self._more():
                raise AudioFileError(self.name, f"the stream ended inside the WAV header ({what})")
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    # ---- header ---------------------------------------------------------------------------

    def _read_header(self) -> None:
        riff, _, wave = struct.unpack("<4sI4s", self._take(12, "RIFF"))
        if riff not in (b"RIFF", b"RF64") or wave != b"WAVE":
            raise AudioFileError(self.name, "not a WAV stream (a pipe needs WAV: e.g. sox ... -t wav -)")
        fmt: tuple[int, ...] | None = None
        skipped = 0
        while True:
            tag, size = struct.unpack("<4sI", self._take(8, "chunk"))
            if tag == b"data":
                break
            skipped += size
            if skipped > MAX_SKIPPED_CHUNK:
                raise AudioFileError(self.name, f"over {MAX_SKIPPED_CHUNK} bytes of WAV chunks before the "
                                                f"samples ({tag!r})")
            body = self._take(size + (size & 1), tag.decode("latin-1"))
            if tag == b"fmt ":
                if size < 16:
                    raise AudioFileError(self.name, "WAV 'fmt ' chunk too short")
                fmt = struct.unpack("<HHIIHH", body[:16])
                if fmt[0] == _EXTENSIBLE and size >= 26:
                    fmt = (struct.unpack("<H", body[24:26])[0], *fmt[1:])
        if fmt is None:
            raise AudioFileError(self.name, "WAV stream without a 'fmt ' chunk before its samples")
        code, channels, rate, _, _, bits = fmt
        self.rate, self.channels, self.bits = rate, channels, bits
        if (code, bits) not in ((_PCM, 8), (_PCM, 16), (_PCM, 24), (_PCM, 32), (_FLOAT, 32), (_FLOAT, 64)):
            raise AudioFileError(self.name, f"WAV sample format {code} with {bits} bits is not supported "
                                            "(PCM 8/16/24/32 or float 32/64)")
        if not MIN_RATE <= rate <= MAX_RATE:
            raise AudioFileError(self.name, f"sample rate {rate} Hz is outside {MIN_RATE}..{MAX_RATE} Hz")
        if not 1 <= channels <= MAX_CHANNELS:
            raise AudioFileError(self.name, f"{channels} channels (1..{MAX_CHANNELS} supported)")
        self._code = code
        self._frame = channels * bits // 8
        self._left = None if size in _UNKNOWN_SIZES else size  # bytes of samples still to come

    # ---- samples --------------------------------------------------------------------------

    def _decode(self, raw: bytes) -> np.ndarray:
        bits = self.bits
        if self._code == _FLOAT:
            x = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float32)
        elif bits == 8:
            x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
        elif bits == 24:
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
            x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8).astype(np.float32) / 8388608.0
        else:
            dtype, scale = ("<i2", 32768.0) if bits == 16 else ("<i4", 2147483648.0)
            x = np.frombuffer(raw, dtype).astype(np.float32) / np.float32(scale)
        return x.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)

    def _fill(self) -> None:
        """One block of samples into `_pending` (resampled); at the end, the resampler's tail."""
        more = self._left is None or self._left > 0
        if more and len(self._buf) < self._frame:
            more = self._more()
        usable = len(self._buf) - len(self._buf) % self._frame
        if self._left is not None:
            usable = min(usable, self._left - self._left % self._frame)
        raw = bytes(self._buf[:usable])
        del self._buf[:usable]
        if self._left is not None:
            self._left -= usable
            more = more and self._left >= self._frame
        last = not more
        mono = self._decode(raw) if raw else np.zeros(0, np.float32)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono, last=last)
        self._pending = np.concatenate([self._pending, mono])
        if last:
            self._done = True
            self._buf.clear()  # a partial frame or chunks after the samples: not audio

    def read_now(self) -> np.ndarray | None:
        while self._pending.size < STEP_SAMPLES and not self._done:
            self._fill()
        if self._pending.size == 0:
            return None
        chunk, self._pending = next_chunk(self._pending)
        return chunk

    async def read(self) -> np.ndarray | None:
        """Waits for the writer on a worker thread: the event loop never blocks on the pipe."""
        return await asyncio.to_thread(self.read_now)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
