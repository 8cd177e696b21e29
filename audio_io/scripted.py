"""The scripted virtual microphone: clips, background noise and self-echo mixed into 160 ms chunks.

Clips start at absolute times or relative to engine events (seen on the event bus as they
happen). Self-echo feeds what the speaker played back into the microphone at a gain and delay,
the case that makes real systems interrupt themselves; the engine plays block k before it reads
chunk k, so echo of block k reaches chunk k exactly as in a room. Everything is seeded, so a run
is reproducible sample for sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from audio_io.format import SAMPLE_RATE, STEP_SAMPLES, STEP_SECONDS, rms
from audio_io.speaker import SpeakerQueue


@dataclass(slots=True)
class ScheduledClip:
    """A clip and, once known, where it starts on the session clock (in samples)."""

    audio: np.ndarray
    start: int | None = None  # None until its trigger fires
    late_by: int = 0  # samples it could not start on time (trigger fired mid-chunk)


def noise_signal(kind: str, level_db: float, n: int, seed: int, source: np.ndarray | None = None) -> np.ndarray:
    """`n` samples of white, pink (1/f power, via FFT shaping) or looped file noise at `level_db` dBFS RMS."""
    rng = np.random.default_rng(seed)
    if kind == "file":
        assert source is not None and source.size
        base = np.resize(source, n).astype(np.float64)
    else:
        base = rng.standard_normal(n)
        if kind == "pink":
            spectrum = np.fft.rfft(base)
            f = np.arange(spectrum.size, dtype=np.float64)
            f[0] = 1.0
            base = np.fft.irfft(spectrum / np.sqrt(f), n)
    level = rms(base.astype(np.float32))
    scaled = base / max(level, 1e-12) * 10 ** (level_db / 20)
    return scaled.astype(np.float32)


class EchoPath:
    """The speaker-to-microphone leak: a delay line of played samples times a gain."""

    def __init__(self, gain_db: float, delay_ms: float, capacity_s: float = 2.0) -> None:
        self.gain = 10 ** (gain_db / 20)
        self.delay = round(delay_ms * SAMPLE_RATE / 1000)
        self._history = np.zeros(self.delay + round(capacity_s * SAMPLE_RATE), dtype=np.float32)
        self._written = 0  # samples of speaker output recorded so far

    def played(self, block: np.ndarray) -> None:
        h = self._history
        h[: -block.size] = h[block.size :]
        h[-block.size :] = block
        self._written += block.size

    def into(self, chunk: np.ndarray, chunk_start: int) -> None:
        """Add the echo heard during [chunk_start, chunk_start + len) to `chunk`."""
        # h[-1] is the sample played at time self._written - 1.
        first = chunk_start - self.delay
        offset = self._history.size - (self._written - first)
        lo = max(offset, 0)
        hi = min(offset + chunk.size, self._history.size)
        if hi > lo:
            chunk[lo - offset : hi - offset] += self.gain * self._history[lo:hi]


class EchoTap:
    """An output device wrapper that lets the echo path hear every block the speaker plays."""

    def __init__(self, inner: object, echo: EchoPath) -> None:
        self.inner = inner
        self.echo = echo
        self.queue: SpeakerQueue = inner.queue  # type: ignore[attr-defined]
        self.clocked = True

    def advance(self) -> np.ndarray:
        block = self.inner.advance()  # type: ignore[attr-defined]
        self.echo.played(block)
        return block

    def close(self) -> None:
        self.inner.close()  # type: ignore[attr-defined]


class ScriptedMicrophone:
    """An input device that plays a script; `trigger(i, t)` starts clip i at session time t."""

    def __init__(self, clips: Sequence[ScheduledClip], *, duration: float, noise: np.ndarray | None = None,
                 echo: EchoPath | None = None, before_read: Callable[[float], None] | None = None) -> None:
        self.clips = list(clips)
        self.total = round(duration / STEP_SECONDS) * STEP_SAMPLES
        self.noise = noise
        self.echo = echo
        self.before_read = before_read
        self.recorded = np.zeros(self.total, dtype=np.float32)  # exactly what the engine heard
        self._pos = 0

    @property
    def now(self) -> float:
        return self._pos / SAMPLE_RATE

    def trigger(self, index: int, t: float) -> None:
        """Start clip `index` at session time `t`, or at the next chunk if `t` has passed."""
        clip = self.clips[index]
        if clip.start is None:
            wanted = round(t * SAMPLE_RATE)
            clip.start = max(wanted, self._pos)
            clip.late_by = clip.start - wanted

    async def read(self) -> np.ndarray | None:
        if self.before_read is not None:
            self.before_read(self.now)
        if self._pos >= self.total:
            return None
        lo, hi = self._pos, self._pos + STEP_SAMPLES
        chunk = np.zeros(STEP_SAMPLES, dtype=np.float32)
        for clip in self.clips:
            if clip.start is None or clip.start >= hi or clip.start + clip.audio.size <= lo:
                continue
            a, b = max(lo, clip.start), min(hi, clip.start + clip.audio.size)
            chunk[a - lo : b - lo] += clip.audio[a - clip.start : b - clip.start]
        if self.noise is not None:
            chunk += self.noise[lo:hi]
        if self.echo is not None:
            self.echo.into(chunk, lo)
        self.recorded[lo:hi] = chunk
        self._pos = hi
        return chunk

    def close(self) -> None:
        pass
