"""A fixed-block polyphase resampler for the speaker callback: no allocation, 1 ms of delay.

The microphone path converts with soxr streaming on the event loop. The speaker path cannot:
soxr's streaming mode hands out its output in bursts (at 16 -> 48 kHz it returns nothing, then
1468 samples, then nothing), so it would hold back up to two callback blocks of audio that a
barge-in could no longer silence, and it allocates a new array on every call. Here the callback
block is a whole number of the rate ratio's periods, so the same input positions map to the same
output positions in every block: one precomputed (taps x outputs) gather and weight table, applied
with `np.take(out=)` and `np.einsum(out=)` into buffers made once. Windowed-sinc taps (Kaiser),
cut off below the lower Nyquist rate, so it is correct in either direction.
"""

from __future__ import annotations

import math

import numpy as np


def block_frames(rate_in: int, rate_out: int, block_ms: float) -> tuple[int, int]:
    """(input, output) frames of the smallest whole-period block at least `block_ms` long."""
    g = math.gcd(rate_in, rate_out)
    q, p = rate_in // g, rate_out // g  # one period: q input frames -> p output frames
    wanted = max(1, round(rate_in * block_ms / 1000))
    periods = max(1, math.ceil(wanted / q - 1e-9))
    return periods * q, periods * p


class BlockResampler:
    """Converts blocks of exactly `n_in` samples to blocks of exactly `n_out` samples, streaming."""

    def __init__(self, rate_in: int, rate_out: int, n_in: int, *, taps: int = 32, beta: float = 8.0) -> None:
        n_out = n_in * rate_out // rate_in
        if n_out * rate_in != n_in * rate_out:
            raise ValueError(f"a block of {n_in} at {rate_in} Hz is not a whole number of samples at {rate_out} Hz")
        self.n_in, self.n_out, self.taps = n_in, n_out, taps
        cutoff = 0.47 * min(1.0, rate_out / rate_in)  # in cycles per input sample
        half = taps // 2
        pos = np.arange(n_out) * (rate_in / rate_out)  # output j sits at input position pos[j]
        base = np.floor(pos).astype(np.int64)
        offsets = np.arange(-half + 1, half + 1)
        index = base[:, None] + offsets[None, :]  # input samples around each output
        dist = pos[:, None] - index
        kaiser = np.i0(beta * np.sqrt(np.clip(1.0 - (dist / (half + 1)) ** 2, 0.0, 1.0))) / np.i0(beta)
        weight = 2 * cutoff * np.sinc(2 * cutoff * dist) * kaiser
        weight /= weight.sum(axis=1, keepdims=True)  # unity gain at DC for every phase
        self.delay_in = half  # samples of input delay the window adds
        # Into the history buffer (`taps` old samples, then the block), shifted back by the delay.
        self._index = index + taps - self.delay_in
        self._weight = weight.astype(np.float32)
        self._history = np.zeros(taps + n_in, dtype=np.float32)
        self._gathered = np.zeros((n_out, taps), dtype=np.float32)

    def process(self, block: np.ndarray, out: np.ndarray) -> None:
        """Resample one block of `n_in` samples into `out` (`n_out` samples); no allocation."""
        h = self._history
        h[: self.taps] = h[self.n_in :]
        h[self.taps :] = block
        np.take(h, self._index, out=self._gathered, mode="clip")
        np.einsum("ij,ij->i", self._gathered, self._weight, out=out)
