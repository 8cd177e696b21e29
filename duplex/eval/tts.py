"""The held-out set's speakers: seeded draws of a voice, speed, pitch and level in one TTS family.

Synthesis is `duplex.tts` (the same synthesiser tiny-fd's training speech comes from, so the two
vary voices the same way). Families: `festival` (the default: left out of tiny-fd's training),
`flite` and `espeak`. Festival's `kal_diphone` is not drawn: an earlier round looked at its
failures while choosing a training stage, so it is no longer held out; its `ked_diphone` and
`cmu_us_slt_arctic_hts` voices are (Debian festvox-kdlpc16k and festvox-us-slt-hts).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio_io.format import SAMPLE_RATE
from duplex.errors import DuplexError
from duplex.tts import FAMILIES, check_voice, speak

VOICES = {
    "festival": ("festival:ked_diphone", "festival:cmu_us_slt_arctic_hts"),
    "flite": ("flite:kal", "flite:awb", "flite:rms", "flite:slt"),
    "espeak": ("espeak:en-gb-scotland", "espeak:en-us-nyc", "espeak:en-gb-x-gbclan", "espeak:en-us+f5",
               "espeak:en-gb+m5", "espeak:en-us+m6"),
    "pico": ("pico:en-US", "pico:en-GB"),  # the cue model trains on these: not held out for it
}
__all__ = ["FAMILIES", "Speaker", "Tts", "check_family", "cough", "silence"]


@dataclass(frozen=True, slots=True)
class Speaker:
    voice: str  # family:voice, as duplex.tts names it
    pitch: float  # 0..1, 0.5 = the voice's own
    rate: float
    gain_db: float

    @classmethod
    def draw(cls, family: str, rng: np.random.Generator, voices: tuple[str, ...] | None = None) -> Speaker:
        voices = voices or VOICES[family]
        return cls(str(voices[int(rng.integers(len(voices)))]), round(float(rng.uniform(0.2, 0.8)), 2),
                   round(float(rng.uniform(0.9, 1.12)), 2), round(float(rng.uniform(-6, 0)), 1))


def check_family(family: str) -> None:
    """A one-line error when the family, or one of its voices, cannot be spoken here."""
    if family not in FAMILIES:
        raise DuplexError(f"--family {family!r}: expected one of {', '.join(FAMILIES)}")
    for voice in VOICES[family]:
        check_voice(voice)


class Tts:
    """Clips for speakers, cached under `cache`."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache

    def say(self, text: str, speaker: Speaker) -> np.ndarray:
        audio = speak(self.cache, text, speaker.voice, speaker.rate, speaker.pitch)
        return (audio * np.float32(10 ** (speaker.gain_db / 20))).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def cough(rng: np.random.Generator, seconds: float = 0.3) -> np.ndarray:
    """A cough-like burst: band-limited noise with a fast attack and decay, as a `noise` clip."""
    n = round(seconds * SAMPLE_RATE)
    noise = rng.standard_normal(n)
    spectrum = np.fft.rfft(noise)
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum[(f < 300) | (f > 3000)] = 0
    burst = np.fft.irfft(spectrum, n) * np.exp(-np.linspace(0, 6, n)) * np.minimum(1, np.arange(n) / 160)
    return (burst / np.abs(burst).max() * 0.5).astype(np.float32)
