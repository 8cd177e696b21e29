"""A vocoder whose speech units index 40 ms frames of recorded audio.

The `policy` backbone speaks audio it already has (the user's words, a WAV file): it stores the
audio as frames in a bounded ring and emits their indices as AUDIO units, exactly as a neural
model emits codebook ids. Decoding is a lookup, so the rest of the pipeline (controller, speaker,
truncation by units heard) is exercised with real audio and no model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audio_io.format import SAMPLE_RATE, UNIT_SAMPLES


class FrameBank:
    """A ring of `capacity` 40 ms frames; unit ids wrap around with it."""

    def __init__(self, capacity: int = 8192) -> None:
        self._frames = np.zeros((capacity, UNIT_SAMPLES), dtype=np.float32)
        self._next = 0

    @property
    def capacity(self) -> int:
        return self._frames.shape[0]

    def add(self, audio: np.ndarray) -> list[int]:
        """Store `audio` (zero-padded to whole frames); return the unit ids to play it."""
        count = -(-audio.size // UNIT_SAMPLES)
        if count > self.capacity:
            raise ValueError(f"{audio.size / SAMPLE_RATE:.1f} s of audio exceeds the frame bank")
        units = []
        for i in range(count):
            unit = (self._next + i) % self.capacity
            frame = audio[i * UNIT_SAMPLES : (i + 1) * UNIT_SAMPLES]
            self._frames[unit, : frame.size] = frame
            self._frames[unit, frame.size :] = 0.0
            units.append(unit)
        self._next = (self._next + count) % self.capacity
        return units

    def frame(self, unit: int) -> np.ndarray:
        return self._frames[unit % self.capacity]


class FrameBankVocoder:
    sample_rate = SAMPLE_RATE

    def __init__(self, bank: FrameBank) -> None:
        self.bank = bank

    def decode(self, units: Sequence[int]) -> np.ndarray:
        if not units:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([self.bank.frame(u) for u in units])

    def reset(self) -> None:
        pass
