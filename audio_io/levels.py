"""Loudness over time: envelopes and the spans where audio is audible.

One definition of "audible" for the whole project (metrics, expectations, plots, tests):
the RMS over 20 ms windows above `AUDIBLE_RMS` (-50 dBFS).
"""

from __future__ import annotations

import numpy as np

from audio_io.format import AUDIBLE_RMS, SAMPLE_RATE

WINDOW_S = 0.02


def envelope(audio: np.ndarray, window_s: float = WINDOW_S) -> np.ndarray:
    """RMS per window (the last partial window dropped)."""
    win = round(window_s * SAMPLE_RATE)
    n = audio.size // win
    frames = audio[: n * win].reshape(n, win).astype(np.float64)
    return np.sqrt((frames**2).mean(axis=1)) if n else np.zeros(0)


def audible_spans(audio: np.ndarray, *, threshold_db: float | None = None, window_s: float = WINDOW_S,
                  merge_gap_s: float = 0.0) -> list[tuple[float, float]]:
    """(start, end) seconds where the windowed RMS is above the threshold.

    Spans separated by less than `merge_gap_s` are merged (the gaps inside a word or a breath).
    """
    threshold = AUDIBLE_RMS if threshold_db is None else 10 ** (threshold_db / 20)
    loud = envelope(audio, window_s) > threshold
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
    spans: list[tuple[float, float]] = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        s, e = start * window_s, end * window_s
        if spans and s - spans[-1][1] < merge_gap_s:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((s, e))
    return spans
