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
_WINDOW = np.hanning(FRAME)
_WINDOW_AC = np.fft.irfft(np.abs(np.fft.rfft(_WINDOW, n=2 * FRAME)) ** 2)[:FRAME] / float(np.sum(_WINDOW ** 2))


def _framed(audio: np.ndarray) -> np.ndarray:
    """(n, FRAME) frames every HOP, each without its mean; none for audio shorter than a frame."""
    x = np.asarray(audio, dtype=np.float64)
    if x.size < FRAME:
        return np.zeros((0, FRAME))
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP][: 1 + (x.size - FRAME) // HOP]
    return frames - frames.mean(axis=1, keepdims=True)


def _frames(audio: np.ndarray, loud_share: float = 0.05,
            window_corrected: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 10 ms hop: loud (energy over `loud_share` of the loudest frame's: 13 dB under it by
    default), voiced (and loud), and the pitch lag. `window_corrected` divides the autocorrelation
    by the window's own, which otherwise pulls a low voice's peak (a long lag) under the bar."""
    frames = _framed(audio)
    n = len(frames)
    if n == 0:
        return np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, int)
    energy = np.einsum("ij,ij->i", frames, frames)
    loud = energy > loud_share * energy.max() if energy.max() > 0 else np.zeros(n, bool)
    spec = np.fft.rfft(frames * _WINDOW, n=2 * FRAME, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :FRAME]
    lo, hi = int(SAMPLE_RATE / F0_MAX), int(SAMPLE_RATE / F0_MIN)
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    if window_corrected:
        ac = ac / np.maximum(_WINDOW_AC, 1e-3)
    lags = lo + np.argmax(ac[:, lo:hi], axis=1)
    peak = ac[np.arange(n), lags]
    return loud, loud & (peak > VOICED), lags


def contour(audio: np.ndarray) -> np.ndarray:
    """F0 in semitones (re 100 Hz) of the voiced 10 ms frames of `audio`, in order."""
    _, voiced, lags = _frames(audio)
    st = 12.0 * np.log2(SAMPLE_RATE / lags[voiced] / 100.0)
    if st.size:  # fold octave errors (a halved or doubled lag) back towards the median
        st = st - 12.0 * np.round((st - np.median(st)) / 12.0)
    return st


def voiced_share(audio: np.ndarray) -> float:
    """The share of the loudest frames of `audio` (within 6 dB of the loudest) that are voiced. A
    word's loudest part is its vowel or its hum (development voices, espeak-ng's lowest pitches
    included: 0.5 and up); a cough, a knock or a clap has none, and an echo under the sound is not
    among those frames."""
    loud, voiced, _ = _frames(audio, loud_share=0.25, window_corrected=True)
    return float(voiced.sum() / loud.sum()) if loud.any() else 0.0


HISS_HZ = 2000.0  # a "shh" or an "sss" puts its noise above this; a cough's burst lies mostly below
HISS_S = 0.3  # ... and holds it, near its loudest, this long (a cough's burst decays within a tenth of that)


def hiss_s(audio: np.ndarray) -> float:
    """Seconds of the loudest frames of `audio` (within 10 dB of the loudest) whose noise lies above
    HISS_HZ: a hushing "shh" holds its hiss for half a second and more, a cough's burst or a
    knock is over in a few tens of milliseconds and lower, and a voice's echo under the sound is
    not among those frames."""
    frames = _framed(audio)
    if len(frames) == 0:
        return 0.0
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2
    energy = power.sum(axis=1)
    if energy.max() <= 0:
        return 0.0
    loud = energy >= 0.1 * energy.max()
    high = power[:, np.fft.rfftfreq(FRAME, 1 / SAMPLE_RATE) >= HISS_HZ].sum(axis=1) >= 0.5 * energy
    return float(np.count_nonzero(loud & high)) * HOP / SAMPLE_RATE


def hushed(audio: np.ndarray, voiced_below: float) -> bool:
    """A "shh" (or an "sss"): no voice (`voiced_share` under `voiced_below`) and at least HISS_S of
    high-pitched hiss. People hush a speaker that way; without it a held "shh" had no voice, was
    taken for a cough and the reply went on over it."""
    return hiss_s(audio) >= HISS_S and voiced_share(audio) < voiced_below


def ending_falls(audio: np.ndarray, *, fall_st: float = 2.0) -> bool | None:
    """True if the fragment's last voicing lies `fall_st` semitones or more below its recent
    median pitch; False if it is level or rising; None when too little of it is voiced to tell."""
    st = contour(np.asarray(audio)[-int(TAIL_S * SAMPLE_RATE):])
    if st.size < 2 * END_FRAMES:
        return None
    end = float(np.median(st[-END_FRAMES:]))
    return end <= float(np.median(st)) - fall_st
