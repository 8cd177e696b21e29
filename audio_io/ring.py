"""A single-producer, single-consumer sample ring between a device callback and the event loop.

The callback side only copies into preallocated storage and bumps a counter (no lock, no
allocation, never waits); the loop side copies out what is new. Positions are absolute sample
counts, so other code can line two streams up by position (the echo canceller pairs microphone
samples with the speaker samples that were playing then). A consumer that falls more than the
capacity behind loses the oldest samples and sees them counted in `lost`.
"""

from __future__ import annotations

import numpy as np


class SampleRing:
    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(capacity, dtype=np.float32)
        self.written = 0  # absolute position after the last sample written (producer only)
        self.read_pos = 0  # absolute position of the next sample to read (consumer only)
        self.lost = 0  # samples overwritten before the consumer read them

    def write(self, samples: np.ndarray) -> None:
        """Producer: append `samples` (overwriting the oldest if the ring is full)."""
        cap = self._buf.size
        n = samples.size
        if n > cap:  # only the newest `cap` fit; positions still count every sample
            self.written += n - cap
            samples, n = samples[n - cap :], cap
        start = self.written % cap
        first = min(n, cap - start)
        self._buf[start : start + first] = samples[:first]
        if n > first:
            self._buf[: n - first] = samples[first:]
        self.written += n  # published last: the consumer never sees a half-written block

    def read_new(self) -> np.ndarray:
        """Consumer: everything written since the last call (a new array)."""
        end = self.written
        if end - self.read_pos > self._buf.size:
            self.lost += end - self.read_pos - self._buf.size
            self.read_pos = end - self._buf.size
        out = self.copy_range(self.read_pos, end)
        self.read_pos = end
        return out

    def copy_range(self, start: int, end: int) -> np.ndarray:
        """Samples at absolute positions [start, end); zeros where never written or overwritten."""
        out = np.zeros(max(0, end - start), dtype=np.float32)
        lo = max(start, self.written - self._buf.size, 0)
        hi = min(end, self.written)
        if hi > lo:  # the ring wraps at most once inside the range: two slice copies
            cap = self._buf.size
            a = lo % cap
            first = min(hi - lo, cap - a)
            out[lo - start : lo - start + first] = self._buf[a : a + first]
            out[lo - start + first : hi - start] = self._buf[: hi - lo - first]
        return out
