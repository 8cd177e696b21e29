"""Does the user's last fragment end on a falling pitch? One prosodic cue for the end of a turn.

A speaker who pauses mid-turn usually holds or raises the pitch at the pause ("I was thinking, ..."),
while a finished statement falls to the speaker's low range. The VAD floor waits longer after a
fragment that does not fall, which trades a little latency (on rising questions) for far fewer
false starts in mid-turn pauses. Plain normalised autocorrelation over 40 ms frames: cheap, run
once per pause, no model.
"""

from __future__ import annotations

import numpy as np

from audio_io.format import SAMPLE_RATE

FRAME = 640  # 40 ms
HOP = 160  # 10 ms
F0_MIN, F0_MAX = 60.0, 400.0
VOICED = 0.5  # normalised autocorrelation peak of a voiced frame
TAIL_S = 1.2  # how much of the fragment's end the contour is read from
END_FRAMES = 8  # the last 80 ms of voicing: where the pitch landed


def contour(audio: np.ndarray) -> np.ndarray:
    """F0 in semitones (re 100 Hz) of the voiced 10 ms frames of `audio`, in order."""
    x = np.asarray(audio, dtype=np.float64)
    if x.size < FRAME:
        return np.zeros(0)
    n = 1 + (x.size - FRAME) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP][:n]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = np.einsum("ij,ij->i", frames, frames)
    loud = energy > 0.05 * energy.max() if energy.max() > 0 else np.zeros(n, bool)
    spec = np.fft.rfft(frames * np.hanning(FRAME), n=2 * FRAME, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :FRAME]
    lo, hi = int(SAMPLE_RATE / F0_MAX), int(SAMPLE_RATE / F0_MIN)
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    lags = lo + np.argmax(ac[:, lo:hi], axis=1)
    peak = ac[np.arange(n), lags]
    voiced = loud & (peak > VOICED)
    st = 12.0 * np.log2(SAMPLE_RATE / lags[voiced] / 100.0)
    if st.size:  # fold octave errors (a halved or doubled lag) back towards the median
        st = st - 12.0 * np.round((st - np.median(st)) / 12.0)
    return st


def ending_falls(audio: np.ndarray, *, fall_st: float = 2.0) -> bool | None:
    """True if the fragment's last voicing lies `fall_st` semitones or more below its recent
    median pitch; False if it is level or rising; None when too little of it is voiced to tell."""
    st = contour(np.asarray(audio)[-int(TAIL_S * SAMPLE_RATE):])
    if st.size < 2 * END_FRAMES:
        return None
    end = float(np.median(st[-END_FRAMES:]))
    return end <= float(np.median(st)) - fall_st
