"""The microphone as a sounddevice callback stream, read by the engine as 160 ms 16 kHz chunks.

The PortAudio callback only copies the block into a preallocated ring (`SampleRing`), notes which
speaker sample was playing at that moment, and wakes the event loop with `call_soon_threadsafe`
(once per loop turn, not once per block). Everything else runs on the loop, off the audio thread:
soxr streaming conversion to 16 kHz, echo cancellation in 10 ms frames against what the speaker
played (paired by position, so the echo always lags its reference by the device latency), the
optional barge-in guard, level and speech activity for the UI, and the optional recorder.

Counters: `overflows` (PortAudio said input was lost), `lost` (the loop fell more than the ring
behind), `dropped_chunks` (the engine fell more than `max_backlog` chunks behind; oldest dropped).

One clock: chunk times (`speech_started`, the barge-in guard) are read off `now`, the session
clock the speaker stamps its edges with, at the callback that delivered the samples, so the two
never drift apart (counting chunks drifts with the sound card's clock, ~0.2 s/h). The speaker
reference's offset is tracked (the median of the last callbacks' observations, moved only when
it drifts by more than `OFFSET_SLACK`), not re-derived per callback, so the canceller sees a
steady alignment. The recorder (`tap`) gets a chunk when the engine takes it, so `--record`
holds what the model heard, not chunks dropped under backlog.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import soxr

from audio_io.aec import FRAME, EchoCanceller, PassThrough
from audio_io.devices import DeviceInfo, close_stream, sounddevice
from audio_io.echo_path import EchoPath
from audio_io.errors import DeviceError
from audio_io.format import SAMPLE_RATE, STEP_SAMPLES, STEP_SECONDS
from audio_io.live_output import LiveOutput
from audio_io.mic_profile import MicProfile
from audio_io.ring import SampleRing
from audio_io.speaker_route import SpeakerRoute
from audio_io.vad import WebRtcVad

OFFSET_OBSERVATIONS = 32  # callbacks whose reference offset the tracked one is the median of
OFFSET_SLACK = 3 * FRAME  # samples (16 kHz) the median may wander before the offset moves
SPEECH_GAP_S = 0.48  # silence shorter than this inside the user's speech keeps it one run (for the UI's figures)


class Tap(Protocol):
    """Receives each chunk as the engine gets it (the recorder)."""

    def chunk(self, raw: np.ndarray, clean: np.ndarray, played: np.ndarray) -> None: ...


_END = (np.zeros(0, dtype=np.float32), None, None)


class LiveInput:
    def __init__(self, device: DeviceInfo, *, rate: int = 0, block_ms: float = 20.0,
                 output: LiveOutput | None = None, aec: EchoCanceller | None = None, guard_s: float = 0.0,
                 latency: str | float = "high", stall_s: float = 3.0, max_backlog: int = 12,
                 tap: Tap | None = None, now: Callable[[], float] = time.monotonic) -> None:
        self.device = device
        self.rate = int(rate or device.default_samplerate)
        self.block = max(1, round(self.rate * block_ms / 1000))
        self.output = output
        self.aec = aec or PassThrough()
        self.guard_s = guard_s
        self.stall_s = stall_s
        self.max_backlog = max_backlog
        self.tap = tap
        self.now = now  # session clock (seconds), read in the callback
        self.overflows = self.dropped_chunks = 0
        self.level = 0.0  # peak of the last chunk the engine got (after echo cancellation)
        self.speech = False  # the last chunk sounded like speech (for the UI's turn latency)
        self.speech_started = -1.0  # session time the latest speech run began
        self.speech_ended = -1.0  # session time the latest finished speech run ended
        self.latency_s = 0.0
        self.error: str | None = None
        self._ring = SampleRing(self.rate * 4)
        self._offset: int | None = None  # speaker reference position minus 16 kHz mic position (tracked)
        self._seen = np.zeros(OFFSET_OBSERVATIONS, dtype=np.int64)  # raw offsets, written by the callback
        self._seen_n = 0
        self.offset_moves = 0  # times the tracked offset moved (drift or a device hiccup)
        self._stamp: tuple[int, float] = (0, 0.0)  # (ring.written, now()) at the latest callback
        self._resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32")
        self._pending = np.zeros(0, dtype=np.float32)  # 16 kHz, not yet framed
        self._raw = np.zeros(STEP_SAMPLES, dtype=np.float32)
        self._clean = np.zeros(STEP_SAMPLES, dtype=np.float32)
        self._played = np.zeros(STEP_SAMPLES, dtype=np.float32)
        self._fill = 0  # samples of the chunk in progress
        self._position = 0  # 16 kHz mic samples framed so far
        self._chunks_out = 0
        self._vad = WebRtcVad(2)
        self.profile = MicProfile()  # notices a stream moved to another microphone by the sound server
        shared = getattr(self.aec, "path", None)  # a gated canceller measures the echo path already
        self.speaker_route = SpeakerRoute(shared if isinstance(shared, EchoPath) else None)  # a moved speaker
        self._queue: asyncio.Queue[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = asyncio.Queue()
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self._closing = False
        self._stream = self._open(latency)

    # ---- lifecycle ------------------------------------------------------------------------

    def _open(self, latency: str | float) -> Any:
        sd = sounddevice()
        try:
            stream = sd.InputStream(samplerate=self.rate, blocksize=self.block, device=self.device.index,
                                    channels=1, dtype="float32", latency=latency,
                                    callback=self._callback, finished_callback=self._finished)
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceError(f"microphone {self.device.index} '{self.device.name}' cannot be opened at "
                              f"{self.rate} Hz ({exc})") from exc
        self.latency_s = float(stream.latency)
        return stream

    async def start(self, timeout: float = 10.0) -> None:
        """Start the stream and wait for its first block (devices can stall for seconds at start)."""
        self._loop = asyncio.get_running_loop()
        try:
            self._stream.start()
        except Exception as exc:
            raise DeviceError(f"microphone '{self.device.name}' cannot start ({exc})") from exc
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError as exc:
            raise DeviceError(f"microphone '{self.device.name}' delivered no audio in {timeout:.0f} s") from exc
        self._ring.read_pos = self._ring.written  # the session starts now: drop the start-up block
        self._position = self._ring.read_pos * SAMPLE_RATE // self.rate  # same origin as the callback's

    def close(self) -> None:
        self._closing = True
        close_stream(self._stream)
        self._queue.put_nowait(_END)  # wakes a pending read: the end

    def _finished(self) -> None:
        if not self._closing:
            self.error = f"microphone '{self.device.name}' stopped unexpectedly"
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, _END)

    # ---- the callback (PortAudio's thread) -----------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self.overflows += 1
        self._ring.write(indata[:, 0])
        self._stamp = (self._ring.written, self.now())
        if self.output is not None:
            mic16 = self._ring.written * SAMPLE_RATE // self.rate
            self._seen[self._seen_n % OFFSET_OBSERVATIONS] = self.output.reference.written - mic16
            self._seen_n += 1
        self._wake()

    def _wake(self) -> None:
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon_threadsafe(self._pump)

    # ---- the loop side --------------------------------------------------------------------

    def _pump(self) -> None:
        self._scheduled = False
        if not self._ready.is_set():
            self._ready.set()
            return
        self._track_offset()
        raw = self._ring.read_new()
        if raw.size:
            self._pending = np.concatenate([self._pending, self._resampler.resample_chunk(raw)])
        used = 0
        while self._pending.size - used >= FRAME:
            self._frame(self._pending[used : used + FRAME])
            used += FRAME
        self._pending = self._pending[used:]

    def _track_offset(self) -> None:
        n = min(self._seen_n, OFFSET_OBSERVATIONS)
        if n == 0:
            return
        median = int(np.partition(self._seen[:n], n // 2)[n // 2])  # an observed value, never a midpoint
        if self._offset is None or abs(median - self._offset) > OFFSET_SLACK:
            self.offset_moves += self._offset is not None
            self._offset = median

    def _frame(self, near: np.ndarray) -> None:
        i = self._fill
        ref = self._offset
        if ref is None:
            far = np.zeros(FRAME, dtype=np.float32)
        else:
            far = self.output.reference.copy_range(self._position + ref, self._position + ref + FRAME)  # type: ignore[union-attr]
        self._raw[i : i + FRAME] = near
        self._played[i : i + FRAME] = far
        self.aec.process(near, far, self._clean[i : i + FRAME])
        if self.output is not None:
            self.speaker_route.add(near, far)
        self._fill += FRAME
        self._position += FRAME
        if self._fill == STEP_SAMPLES:
            self._fill = 0
            self._emit()

    def _chunk_end_time(self) -> float:
        """Session time of the chunk's last sample: the latest callback's stamp, less what came after."""
        written, t = self._stamp
        return t - (written - self._position * self.rate / SAMPLE_RATE) / self.rate

    def _emit(self) -> None:
        t_end = self._chunk_end_time()
        self._chunks_out += 1
        chunk = self._clean.copy()
        self.profile.add(self._raw)
        if self.output is not None:
            self.speaker_route.check()
        self.level = float(np.abs(chunk).max())
        self._note_speech(chunk, t_end)
        if self._guarded(t_end):
            chunk[:] = 0.0
        raw, played = (self._raw.copy(), self._played.copy()) if self.tap is not None else (None, None)
        if self._queue.qsize() >= self.max_backlog:
            self._queue.get_nowait()
            self.dropped_chunks += 1
        self._queue.put_nowait((chunk, raw, played))

    def _note_speech(self, chunk: np.ndarray, t_end: float) -> None:
        speech = self._vad.speech_prob(chunk) >= 0.5 and self.level > 10 ** (-45 / 20)
        start = t_end - STEP_SECONDS
        if speech and not self.speech and (self.speech_ended < 0 or start - self.speech_ended > SPEECH_GAP_S):
            self.speech_started = start  # a new run: short gaps (commas, breaths) do not restart it
        if not speech and self.speech:
            self.speech_ended = t_end - STEP_SECONDS
        self.speech = speech

    def _guarded(self, t_end: float) -> bool:
        """Barge-in guard: deaf for `guard_s` after the speaker starts a run of model speech."""
        if self.guard_s <= 0.0 or self.output is None:
            return False
        since = self.output.audible_since
        return since is not None and t_end - since <= self.guard_s + STEP_SECONDS

    async def read(self) -> np.ndarray | None:
        """The next 160 ms chunk; None once closed; DeviceError when a device failed or stalled."""
        if self.error or (self.output is not None and self.output.error):
            raise DeviceError(self.error or self.output.error)  # type: ignore[union-attr]
        try:
            chunk, raw, played = await asyncio.wait_for(self._queue.get(), self.stall_s)
        except TimeoutError as exc:
            if self._closing:
                return None
            raise DeviceError(f"microphone '{self.device.name}' delivered no audio for {self.stall_s:.0f} s") from exc
        if chunk.size == 0:
            if self.error:
                raise DeviceError(self.error)
            return None
        if self.tap is not None and raw is not None and played is not None:
            self.tap.chunk(raw, chunk, played)  # what the engine takes is what the model hears
        return chunk

    def echo_figures(self) -> dict[str, object]:
        """The echo path as the canceller's gate measured it (empty without a gated canceller)."""
        figures = getattr(self.aec, "figures", None)
        return figures() if callable(figures) else {}

    @property
    def lost(self) -> int:
        return self._ring.lost
