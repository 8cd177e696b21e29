"""The speaker queue: model audio waiting to be played, and the count of what was played.

Shared by every output device. The producer (the engine) pushes decoded speech; the consumer (a
WAV sink once per step, or a sound card callback) pulls fixed blocks. A flush keeps a 5 ms
fade-out so a barge-in does not click, and the counters tell the engine exactly how much of a
turn the user heard. A pause (the model holds its reply while it hears the user out) silences the
speaker at the next pull, with the same fade, and keeps what is queued for a resume, which fades
back in: a held reply goes quiet as fast as a cut one, and goes on where the user stopped hearing
it. Storage is a preallocated ring, so pulling never allocates.
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
        self._rise = np.linspace(0.0, 1.0, FADE_SAMPLES + 1, dtype=np.float32)[1:]
        self._tail = np.zeros(FADE_SAMPLES, dtype=np.float32)  # flush works here: no allocation under the lock
        self._lock = threading.Lock()  # held for a few microseconds: copies only
        self.played = 0  # model samples handed to the device so far (padding excluded)
        self.dropped = 0  # samples removed by flushes, never played
        self.overflowed = 0  # samples refused because the ring was full
        self.flushes = 0  # flush() calls so far
        self.flushed_at = 0.0  # time.monotonic() of the last flush (for time-to-silence)
        self.timed = False  # a callback device stamps speaker edges with mark()
        self.paused = False  # held: pulls play the fade-out, then silence; the queue is kept
        self.pauses = 0  # pause() calls that paused, so far (a callback device notices a new one)
        self._fade_out_left = 0  # samples of the pause's fade-out still to play
        self._fade_in_left = 0  # samples of the resume's fade-in still to play
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
            if self.paused:
                n = min(n, self._fade_out_left)
            first = min(n, self._ring.size - self._head)
            out[:first] = self._ring[self._head : self._head + first]
            out[first:n] = self._ring[: n - first]
            out[n:] = 0.0
            if self.paused and n:
                done = FADE_SAMPLES - self._fade_out_left
                out[:n] *= self._fade[done : done + n]
                self._fade_out_left -= n
            elif self._fade_in_left and n:
                done, k = FADE_SAMPLES - self._fade_in_left, min(n, self._fade_in_left)
                out[:k] *= self._rise[done : done + k]
                self._fade_in_left -= k
            self._head = (self._head + n) % self._ring.size
            self._size -= n
            self.played += n
            return n

    def pause(self) -> None:
        """Hold the queued audio: silence after a 5 ms fade-out, at the next pull."""
        with self._lock:
            if not self.paused:
                self.paused = True
                self.pauses += 1
                self._fade_out_left, self._fade_in_left = FADE_SAMPLES, 0

    def resume(self) -> None:
        """Play the held audio again, from where the fade-out left it, fading in."""
        with self._lock:
            if self.paused:
                self.paused = False
                self._fade_in_left = FADE_SAMPLES

    def pull(self, n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.float32)
        self.pull_into(out)
        return out

    def flush(self) -> int:
        """Drop everything queued except a short fade-out (none when paused: the speaker is already
        silent); return the number of samples dropped. A paused queue is no longer paused."""
        with self._lock:
            keep = min(self._fade_out_left if self.paused else FADE_SAMPLES, self._size)
            done = FADE_SAMPLES - self._fade_out_left if self.paused else 0
            self.paused, self._fade_out_left, self._fade_in_left = False, 0, 0
            tail = self._tail[:keep]
            first = min(keep, self._ring.size - self._head)  # the queued head, in up to two pieces
            tail[:first] = self._ring[self._head : self._head + first]
            tail[first:] = self._ring[: keep - first]
            tail *= self._fade[done : done + keep]
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
