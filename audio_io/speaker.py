"""The speaker queue: model audio waiting to be played, and the count of what was played.

Shared by every output device. The producer (the engine) pushes decoded speech; the consumer (a
WAV sink once per step, or a sound card callback) pulls fixed blocks. A flush keeps a 5 ms
fade-out so a barge-in does not click, and the counters tell the engine exactly how much of a
turn the user heard. Storage is a preallocated ring, so pulling never allocates.
"""

from __future__ import annotations

import threading

import numpy as np

from audio_io.format import SAMPLE_RATE

FADE_SAMPLES = SAMPLE_RATE * 5 // 1000


class SpeakerQueue:
    """A bounded ring of float32 samples with flush-with-fade and played/dropped counters."""

    def __init__(self, capacity: int = SAMPLE_RATE * 120) -> None:
        self._ring = np.zeros(capacity, dtype=np.float32)
        self._head = 0  # index of the next sample to play
        self._size = 0
        self._lock = threading.Lock()  # held for a few microseconds: copies only
        self.played = 0  # model samples handed to the device so far (padding excluded)
        self.dropped = 0  # samples removed by flushes, never played
        self.overflowed = 0  # samples refused because the ring was full

    @property
    def capacity(self) -> int:
        return self._ring.size

    @property
    def queued(self) -> int:
        return self._size

    def push(self, samples: np.ndarray) -> None:
        with self._lock:
            n = min(samples.size, self._ring.size - self._size)
            self.overflowed += samples.size - n
            self._write(samples[:n])

    def pull_into(self, out: np.ndarray) -> int:
        """Fill `out` with queued audio, then silence; return how many samples were audio."""
        with self._lock:
            n = min(out.size, self._size)
            first = min(n, self._ring.size - self._head)
            out[:first] = self._ring[self._head : self._head + first]
            out[first:n] = self._ring[: n - first]
            out[n:] = 0.0
            self._head = (self._head + n) % self._ring.size
            self._size -= n
            self.played += n
            return n

    def pull(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.float32)
        self.pull_into(out)
        return out

    def flush(self, fade: int = FADE_SAMPLES) -> int:
        """Drop everything queued except a short fade-out; return the number of samples dropped."""
        with self._lock:
            keep = min(fade, self._size)
            tail = self._ring.take(np.arange(self._head, self._head + keep) % self._ring.size)
            tail *= np.linspace(1.0, 0.0, keep + 1, dtype=np.float32)[1:]
            dropped = self._size - keep
            self._size = 0
            self._write(tail)
            self.dropped += dropped
            return dropped

    def _write(self, samples: np.ndarray) -> None:
        tail = (self._head + self._size) % self._ring.size
        first = min(samples.size, self._ring.size - tail)
        self._ring[tail : tail + first] = samples[:first]
        self._ring[: samples.size - first] = samples[first:]
        self._size += samples.size
