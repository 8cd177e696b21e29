"""Loudness over time: envelopes and the spans where audio is audible.

One definition of "audible" for the whole project (metrics, expectations, plots, tests):
the RMS over 20 ms windows above `AUDIBLE_RMS` (-50 dBFS).
"""

from __future__ import annotations

from collections import deque

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


class NoiseFloor:
    """The room's level, from the last few seconds of 160 ms chunk levels: the quietest of them.

    A chunk within `margin` of it (6 dB) holds nothing but the room. One louder holds a sound,
    whether or not a voice detector calls it speech: the soft onset of a word, a breath, a cough.
    Turn-taking counts only the room as the user's silence, so a word whose first chunks the
    detector misses does not end the user's turn or a held reply's wait. The floor is never taken
    above `cap` (in long speech the quietest chunk is still speech) nor under `least`."""

    def __init__(self, window: int = 32, margin: float = 2.0, cap: float = 10 ** (-40 / 20),
                 least: float = 10 ** (-45 / 20)) -> None:
        self.levels: deque[float] = deque(maxlen=window)
        self.margin, self.cap, self.least = margin, cap, least

    def reset(self) -> None:
        self.levels.clear()

    def observe(self, level: float) -> None:
        self.levels.append(level)

    def quiet(self) -> float:
        """The loudest level that is still only the room."""
        return max(self.least, self.margin * min(min(self.levels, default=0.0), self.cap))

    def sounds(self, level: float, over: float = 4.0, least: float = 10 ** (-60 / 20)) -> bool:
        """A sound of this level is more than the room, however soft (a word's first frames, under
        `quiet()`'s floor): `over` times its quietest recent chunk (12 dB: a few frames of a steady
        noise stray further from its level than a whole chunk does), and over `least` (a room of
        digital silence)."""
        return level > max(least, over * min(self.levels, default=0.0))

    def silent(self, level: float) -> bool:
        """Only the room in a chunk of this level. In a room louder than the loudest floor (the
        quietest recent chunk over `quiet()` at the cap: -34 dBFS) no chunk could be the room, so
        every chunk is taken for it instead: without that the user's silence would never come
        (white noise at -30 dBFS: the policy never took its turn, round 15)."""
        if min(self.levels, default=0.0) > self.margin * self.cap:
            return True
        return level <= self.quiet()
