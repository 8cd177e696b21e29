"""Measure the speaker-to-microphone echo path, and bypass the canceller when there is none.

A residual echo suppressor (WebRTC AEC3's, speex's) assumes a strong echo until its adaptive
filter has converged; with a headset there is nothing to converge to, so it keeps attenuating
whatever the microphone hears while the speaker plays: the user's barge-in is suppressed with the
echo that is not there. `EchoPath` measures the echo coupling from the signals themselves, and
`GatedCanceller` passes the microphone through untouched while the path is known to be absent.

The measurement works on 10 ms frame energies (dB) over a sliding window (1.5 s), at every delay
up to `MAX_LAG_S` between what the speaker played and what the microphone heard:

- coupling(lag): the median of mic dB - speaker dB over frames where the speaker was active;
- correlation(lag): the Pearson correlation of the two energy envelopes (an echo follows the
  speaker's syllables; the user's voice and room noise do not).

Verdicts, each needing `MIN_ACTIVE_S` of speaker activity in the window:

- no echo: at every lag even the microphone's loudest moments (90th percentile) are `BYPASS_DB`
  or more below the speaker, or it holds a steady noise floor that follows the speaker at no
  lag; every lag must have seen the speaker active, and the speaker must have played
  `ABSENT_ACTIVE_S` in the window, so a verdict comes 0.7-1 s into the first reply (an echo that
  arrives later than that, on a badly overloaded machine, can still be missed);
- echo: the envelopes correlate (>= `ECHO_CORRELATION`) at a lag where the coupling is above
  `BYPASS_DB` and steady (interquartile range <= `ECHO_SPREAD_DB`), in `ECHO_VOTES` updates in a
  row (the user's voice over the speaker can line up with it for a moment, never for long);
- neither, or the speaker was not active at every lag (a reply starting or ending), or the user
  talks over the speaker on a headset; double talk with echo): keep the last
  verdict. Until the first verdict the canceller runs (an unknown path is treated as an echo).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from audio_io.format import SAMPLE_RATE

if TYPE_CHECKING:
    from audio_io.aec import EchoCanceller

FRAME = SAMPLE_RATE // 100
FLOOR_DB = -100.0
ACTIVE_DB = -45.0  # a speaker frame louder than this (RMS dBFS) can leave an echo worth cancelling
BYPASS_DB = -35.0  # echo this far below the speaker needs no cancelling (the model ignores it)
ECHO_CORRELATION = 0.7
ECHO_SPREAD_DB = 6.0  # an echo's level follows the speaker's: mic - speaker dB varies little (IQR)
ECHO_VOTES = 4  # consecutive echo-like updates (0.64 s) before an echo verdict: two voices can
# line up by chance for a moment, an echo lines up for as long as the speaker plays
WINDOW_S = 1.5
MAX_LAG_S = 0.5  # device buffering + room: the echo lags its reference by up to this much
MIN_ACTIVE_S = 0.2
ABSENT_ACTIVE_S = 0.5  # speaker activity (at no delay) in the window before "no echo" can be said
STEADY_DB = 6.0  # a mic whose level spreads less than this hears only its noise floor
UPDATE_FRAMES = 16  # one verdict per 160 ms step


def frame_db(x: np.ndarray) -> float:
    e = float(np.dot(x, x)) / max(1, x.size)
    return max(FLOOR_DB, 10.0 * np.log10(e)) if e > 0.0 else FLOOR_DB


class EchoPath:
    """Running estimate of the echo coupling (dB) and delay; `present` is None until measured."""

    def __init__(self) -> None:
        self.window = round(WINDOW_S * 100)
        self.max_lag = round(MAX_LAG_S * 100)
        size = self.window + self.max_lag
        self._far = np.full(size, FLOOR_DB)
        self._near = np.full(size, FLOOR_DB)
        self._n = 0
        self.present: bool | None = None
        self.coupling_db: float | None = None  # at the echo's lag (or the loudest lag when absent)
        self.delay_s: float | None = None
        self.correlation = 0.0
        self.verdicts = 0
        self._votes = 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def add(self, near: np.ndarray, far: np.ndarray) -> None:
        i = self._n % self._far.size
        self._far[i] = frame_db(far)
        self._near[i] = frame_db(near)
        self._n += 1
        if self._n % UPDATE_FRAMES == 0 and self._n >= self._far.size:
            self._update()

    def _update(self) -> None:
        size = self._far.size
        order = (self._n + np.arange(size)) % size  # oldest first
        far, near = self._far[order], self._near[order][-self.window :]
        rows = sliding_window_view(far, self.window)[::-1]  # rows[lag] lines far up `lag` frames earlier
        active = rows > ACTIVE_DB
        counts = active.sum(axis=1)
        if counts.max() < MIN_ACTIVE_S * 100:
            return
        diff = np.where(active, near[None, :] - rows, np.nan)
        usable = counts >= MIN_ACTIVE_S * 100
        coupling = np.full(rows.shape[0], -np.inf)
        coupling[usable] = np.nanmedian(diff[usable], axis=1)
        corr = _masked_pearson(near, rows, active)
        corr[~usable] = -1.0
        best = int(np.argmax(corr))
        self.correlation = float(corr[best])
        steady = float(np.percentile(near, 90) - np.percentile(near, 10)) < STEADY_DB
        loudest = np.full(rows.shape[0], np.inf)  # the mic's loudest moments against the speaker
        loudest[usable] = np.nanpercentile(diff[usable], 90, axis=1)
        settled = counts[0] >= ABSENT_ACTIVE_S * 100  # long enough for a slow echo to have shown up
        if usable.all() and settled and (loudest.max() < BYPASS_DB or (steady and corr.max() < 0.3)):
            self.present = False
            self.coupling_db = float(loudest.max())
            self.delay_s = None
            self.verdicts += 1
            self._votes = 0
            return
        echo_like = usable.all() and corr[best] >= ECHO_CORRELATION and coupling[best] >= BYPASS_DB
        if echo_like:
            d = diff[best][active[best]]
            echo_like = float(np.percentile(d, 75) - np.percentile(d, 25)) <= ECHO_SPREAD_DB
        self._votes = self._votes + 1 if echo_like else 0
        if self._votes >= ECHO_VOTES:
            self.present = True
            self.coupling_db = float(coupling[best])
            self.delay_s = best / 100
            self.verdicts += 1

    def figures(self) -> dict[str, object]:
        return {"echo_path": {None: "unknown", True: "present", False: "absent"}[self.present],
                "echo_coupling_db": None if self.coupling_db is None else round(self.coupling_db, 1),
                "echo_delay_ms": None if self.delay_s is None else round(self.delay_s * 1000)}


def _masked_pearson(x: np.ndarray, rows: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Correlation of `x` with each row over that row's masked frames (the speaker was active)."""
    w = mask.astype(np.float64)
    n = np.maximum(w.sum(axis=1, keepdims=True), 1.0)
    xs = np.broadcast_to(x, rows.shape)
    xc = (xs - (w * xs).sum(axis=1, keepdims=True) / n) * w
    rc = (rows - (w * rows).sum(axis=1, keepdims=True) / n) * w
    den = np.sqrt(np.einsum("ij,ij->i", xc, xc) * np.einsum("ij,ij->i", rc, rc))
    num = np.einsum("ij,ij->i", xc, rc)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 1e-9)


class GatedCanceller:
    """An echo canceller that passes the microphone through while `EchoPath` finds no echo.

    The inner canceller keeps processing both streams (its filter state stays current), so when
    an echo appears (the user unplugs the headset) the first verdict switches it back in.
    """

    def __init__(self, inner: EchoCanceller) -> None:
        self.inner = inner
        self.name = inner.name
        self.path = EchoPath()
        self.bypassed_frames = 0
        self.frames = 0

    @property
    def bypassed(self) -> bool:
        return self.path.present is False

    def process(self, near: np.ndarray, far: np.ndarray, out: np.ndarray) -> None:
        self.path.add(near, far)
        self.inner.process(near, far, out)
        self.frames += 1
        if self.path.present is False:
            out[:] = near
            self.bypassed_frames += 1

    def reset(self) -> None:
        self.inner.reset()
        self.path.reset()

    def figures(self) -> dict[str, object]:
        share = self.bypassed_frames / self.frames if self.frames else 0.0
        return {**self.path.figures(), "aec_bypassed_share": round(share, 3)}
