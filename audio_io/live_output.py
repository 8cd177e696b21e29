"""The speaker as a sounddevice callback stream: plays the engine's SpeakerQueue as it fills.

The callback pulls one block of 16 kHz audio from the queue, resamples it to the device rate
with a fixed-block polyphase filter (`audio_io.blockrate`) and writes it out; it never blocks
(the queue's lock guards a few copies) and never allocates beyond numpy scalars. So a flush
(barge-in) takes effect at the very next callback, with the queue's 5 ms fade: time-to-silence
is at most one block plus the fade. Each callback also

- writes what it played into `reference` (16 kHz), for the echo canceller and the recorder;
- holds a turn's first audio back `jitter_s` (a playout delay) so that the next steps arrive
  before the speaker runs dry, and counts `underruns` (the queue ran dry mid-turn and audio
  came back within a step) and `xruns` (PortAudio reported an output underflow); a reply the
  queue held (paused) plays again at once when it resumes, its queue never having run dry;
- stamps speaker edges (audible / silent) on the session clock for the engine's speaker events;
- measures time-to-silence after each flush (flush -> last non-zero sample leaving the callback);
- notes `last_callback` (time.monotonic()), so the loop can tell a stalled stream (a suspended
  sink stops calling back, and would otherwise play its stale queue when it resumes).

The queue can be handed in: a session that reopens its speaker (`audio_io.live_link`) keeps one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from audio_io.blockrate import BlockResampler, block_frames
from audio_io.devices import DeviceInfo, close_stream, sounddevice
from audio_io.errors import DeviceError
from audio_io.format import SAMPLE_RATE, STEP_SECONDS
from audio_io.ring import SampleRing
from audio_io.speaker import FADE_SAMPLES, SpeakerQueue

TTS_SLOTS = 256  # time-to-silence measurements kept


class LiveOutput:
    """A sound card speaker; `clocked = False`: its callback plays, the engine only pushes."""

    clocked = False

    def __init__(self, device: DeviceInfo, *, rate: int = 0, block_ms: float = 20.0, jitter_s: float = 0.16,
                 latency: str | float = "high", now: Callable[[], float] = time.monotonic,
                 queue: SpeakerQueue | None = None) -> None:
        self.device = device
        self.rate = int(rate or device.default_samplerate)
        self.n16, self.block = block_frames(SAMPLE_RATE, self.rate, block_ms)
        self.block_s = self.n16 / SAMPLE_RATE
        self.jitter_s = jitter_s
        self.queue = queue or SpeakerQueue()
        self.queue.timed = True  # speaker events come from this callback's marks, never from counters
        self.reference = SampleRing(SAMPLE_RATE * 8)
        self.now = now  # session clock (seconds), readable from any thread
        self.error: str | None = None
        self.xruns = self.underruns = 0
        self.level = 0.0  # peak of the last block (0..1)
        self.latency_s = 0.0  # device buffering after the callback (PortAudio's estimate)
        self.audible_since: float | None = None  # session time the current audible run began
        self.tts_s = np.zeros(TTS_SLOTS)  # time-to-silence measurements (ring)
        self.tts_count = 0
        self._resampler = BlockResampler(SAMPLE_RATE, self.rate, self.n16)
        self._pulled = np.zeros(self.n16, dtype=np.float32)
        self._out = np.zeros(self.block, dtype=np.float32)
        self._mask = np.zeros(self.n16, dtype=bool)
        self._playing = False
        self._hold_since: float | None = None
        self._dry_at = -1.0
        self._seen_flushes = 0
        self._seen_pauses = 0
        self._held = False  # the queue was paused (a held reply): its resume plays at once, no underrun
        self._tts_from: float | None = None  # monotonic flush time while a measurement is open
        self._tts_last = 0.0
        self._closing = False
        self.callbacks = 0
        self.last_callback = time.monotonic()  # the stream is not expected to call back before start()
        self._stream = self._open(latency)

    # ---- lifecycle ------------------------------------------------------------------------

    def _open(self, latency: str | float) -> Any:
        sd = sounddevice()
        try:
            stream = sd.OutputStream(samplerate=self.rate, blocksize=self.block, device=self.device.index,
                                     channels=1, dtype="float32", latency=latency,
                                     callback=self._callback, finished_callback=self._finished)
        except (sd.PortAudioError, ValueError) as exc:
            raise DeviceError(f"speaker {self.device.index} '{self.device.name}' cannot be opened at "
                              f"{self.rate} Hz ({exc})") from exc
        self.latency_s = float(stream.latency)
        return stream

    def start(self) -> None:
        self.last_callback = time.monotonic()
        try:
            self._stream.start()
        except Exception as exc:
            raise DeviceError(f"speaker '{self.device.name}' cannot start ({exc})") from exc

    async def started(self, timeout: float) -> None:
        """Wait for the first callback: a stream on a suspended sink opens but is never called."""
        deadline = time.monotonic() + timeout
        while self.callbacks == 0:
            if self.error or time.monotonic() > deadline:
                raise DeviceError(self.error or f"speaker '{self.device.name}' played nothing in {timeout:.1f} s")
            await asyncio.sleep(0.02)

    def advance(self) -> None:
        """Callback devices play on their own; the engine never calls this."""
        return None

    def close(self) -> None:
        self._closing = True
        close_stream(self._stream)

    def _finished(self) -> None:
        if not self._closing:
            self.error = f"speaker '{self.device.name}' stopped unexpectedly"

    # ---- the callback (PortAudio's thread) -----------------------------------------------

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.output_underflow:
            self.xruns += 1
        self.callbacks += 1
        self.last_callback = time.monotonic()
        t = self.now()
        mono = time.monotonic()
        queue = self.queue
        if queue.pauses != self._seen_pauses:  # (before flushes: a pause then a cut leaves nothing held)
            self._seen_pauses, self._held = queue.pauses, True
        if queue.flushes != self._seen_flushes:
            self._seen_flushes, self._held = queue.flushes, False
            if self._playing:
                self._tts_from = self._tts_last = queue.flushed_at
            else:  # a turn still held back by the jitter buffer: its fade-out would be heard, not cut
                queue.drop(FADE_SAMPLES)
        n = queue.pull_into(self._pulled) if self._playing or self._ready(t) else 0
        if n == 0:
            self._pulled[:] = 0.0
        self._track(t, n)
        self.reference.write(self._pulled)
        self._resampler.process(self._pulled, self._out)
        outdata[:] = self._out[:, None]
        peak = max(float(self._pulled.max()), -float(self._pulled.min()))
        self.level = peak
        if self._tts_from is not None:
            self._measure_silence(mono, peak, n)

    def _ready(self, t: float) -> bool:
        """Jitter buffer: a turn's first audio waits `jitter_s` before it plays; audio that returns
        sooner than that after the speaker ran dry (an underrun mid-turn) plays at once."""
        if self.queue.queued == 0:
            self._hold_since = None
            return False
        if self._held:  # a resumed reply was held back already, as long as its hold lasted
            return True
        if self._hold_since is None:
            if 0.0 <= t - self._dry_at < self.jitter_s:
                return True
            self._hold_since = t
        return t - self._hold_since >= self.jitter_s - 1e-3

    def _track(self, t: float, n: int) -> None:
        if n and not self._playing:
            self._playing = True
            self._hold_since = None
            self.audible_since = t
            if 0.0 <= t - self._dry_at < max(self.jitter_s, STEP_SECONDS) and not self._held:
                self.underruns += 1  # the turn went on after the speaker had run dry
            self._held = self.queue.paused
            self.queue.mark(t, True)
        if self._playing and n < self.n16:
            self._playing = False
            self.audible_since = None
            self._dry_at = t + n / SAMPLE_RATE
            self.queue.mark(self._dry_at, False)

    def _measure_silence(self, mono: float, peak: float, n: int) -> None:
        if peak > 0.0:
            np.not_equal(self._pulled, 0.0, out=self._mask)
            last = self.n16 - int(self._mask[::-1].argmax())
            self._tts_last = mono + (last + self._resampler.delay_in) / SAMPLE_RATE
        if n < self.n16 and self._tts_from is not None:  # the faded tail is out
            self.tts_s[self.tts_count % TTS_SLOTS] = max(0.0, self._tts_last - self._tts_from)
            self.tts_count += 1
            self._tts_from = None

    # ---- read by the loop -----------------------------------------------------------------

    def time_to_silence(self) -> list[float]:
        """Time-to-silence of each flush so far (the last TTS_SLOTS), in seconds."""
        n = min(self.tts_count, TTS_SLOTS)
        start = self.tts_count - n
        return [float(self.tts_s[(start + i) % TTS_SLOTS]) for i in range(n)]
