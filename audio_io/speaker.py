"""The speaker queue: model audio waiting to be played, and the count of what was played.

Shared by every output device. The producer (the engine) pushes decoded speech; the consumer (a
WAV sink once per step, or a sound card callback) pulls fixed blocks. A flush keeps a 5 ms
fade-out so a barge-in does not click, and the counters tell the engine exactly how much of a
turn the user heard. Storage is a preallocated ring, so pulling never allocates.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from audio_io.format import SAMPLE_RATE

FADE_SAMPLES = SAMPLE_RATE * 5 // 1000


class SpeakerQueue:
    """A bounded ring of float32 samples with flush-with-fade and played/dropped counters."""

    def __init__(self, capacity: int = SAMPLE_RATE * 120) -> None:
        self._ring = np.zeros(capacity, dtype=np.float32)
        self._head = 0  # index of the next sample to play
        self._size = 0
        self._fade = np.linspace(1.0, 0.0, FADE_SAMPLES + 1, dtype=np.float32)[1:]
        self._tail = np.zeros(FADE_SAMPLES, dtype=np.float32)  # flush works here: no allocation under the lock
        self._lock = threading.Lock()  # held for a few microseconds: copies only
        self.played = 0  # model samples handed to the device so far (padding excluded)
        self.dropped = 0  # samples removed by flushes, never played
        self.overflowed = 0  # samples refused because the ring was full
        self.flushes = 0  # flush() calls so far
        self.flushed_at = 0.0  # time.monotonic() of the last flush (for time-to-silence)
        self.timed = False  # a callback device stamps speaker edges with mark()
        self._marks: deque[tuple[float, bool]] = deque(maxlen=256)

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

    def flush(self) -> int:
        """Drop everything queued except a short fade-out; return the number of samples dropped."""
        with self._lock:
            keep = min(FADE_SAMPLES, self._size)
            tail = self._tail[:keep]
            first = min(keep, self._ring.size - self._head)  # the queued head, in up to two pieces
            tail[:first] = self._ring[self._head : self._head + first]
            tail[first:] = self._ring[: keep - first]
            tail *= self._fade[:keep]
            dropped = self._size - keep
            self._size = 0
            self._write(tail)
            self.dropped += dropped
            self.flushes += 1
            self.flushed_at = time.monotonic()
            return dropped

    def drop(self, n: int) -> int:
        """Drop up to `n` queued samples unplayed (no fade: nobody has heard them); return how many."""
        with self._lock:
            k = min(n, self._size)
            self._head = (self._head + k) % self._ring.size
            self._size -= k
            self.dropped += k
            return k

    def mark(self, t: float, audible: bool) -> None:
        """A callback device notes that the speaker became audible or silent at session time `t`."""
        with self._lock:
            self.timed = True
            self._marks.append((t, audible))

    def take_marks(self) -> list[tuple[float, bool]]:
        """The edges noted since the last call, oldest first (for the engine's speaker events)."""
        with self._lock:
            marks = list(self._marks)
            self._marks.clear()
            return marks

    def _write(self, samples: np.ndarray) -> None:
        tail = (self._head + self._size) % self._ring.size
        first = min(samples.size, self._ring.size - tail)
        self._ring[tail : tail + first] = samples[:first]
        self._ring[: samples.size - first] = samples[first:]
        self._size += samples.size
