"""The one audio format inside the runtime: 16 kHz mono float32, 160 ms steps, 40 ms units.

Devices convert at the edges so the engine, the backbones and the tests never see another rate.
"""

from __future__ import annotations

import math

import numpy as np

SAMPLE_RATE = 16_000
STEP_SECONDS = 0.16
STEP_SAMPLES = 2_560  # one user chunk: 160 ms
UNITS_PER_STEP = 4  # the 1:4 user:model interleave
UNIT_SAMPLES = STEP_SAMPLES // UNITS_PER_STEP  # one speech unit: 40 ms (25 Hz)

# Model output quieter than this RMS (about -50 dBFS) counts as silence when measuring what a
# user would hear; documented in the README's metrics section.
AUDIBLE_RMS = 10 ** (-50 / 20)


def steps_covering(seconds: float) -> int:
    """Whole 160 ms steps needed to cover `seconds` (thresholds are checked once a step)."""
    return math.ceil(seconds / STEP_SECONDS - 1e-6)


def to_mono(frames: np.ndarray) -> np.ndarray:
    """Average channels: (n,) or (n, ch) -> (n,) float32."""
    if frames.ndim == 2:
        frames = frames.mean(axis=1)
    return np.ascontiguousarray(frames, dtype=np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def dbfs(x: np.ndarray) -> float:
    return 20.0 * float(np.log10(max(rms(x), 1e-10)))


def next_chunk(pending: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first 160 ms of `pending` as a whole chunk (zero-padded at the end of the audio), and the rest."""
    chunk = np.zeros(STEP_SAMPLES, dtype=np.float32)
    n = min(STEP_SAMPLES, pending.size)
    chunk[:n] = pending[:n]
    return chunk, pending[n:]
