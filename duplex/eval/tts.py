"""Speech for the held-out set from one of three installed TTS families, cached on disk.

Families: `festival` (the kal diphone voice, varied per speaker by a sox pitch shift and tempo:
left out of tiny-fd's training, so it is the default), `flite` (kal, awb, rms, slt) and `espeak`
(espeak-ng variants). A speaker is a seeded draw of voice, pitch, rate and level; the same seed
gives the same audio. Clips are trimmed to their audible span and peak-normalised like the
scenario clips.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio_io.format import SAMPLE_RATE
from audio_io.levels import audible_spans
from audio_io.wav import load_mono16k
from duplex.errors import DuplexError

FAMILIES = ("festival", "flite", "espeak")
FLITE_VOICES = ("kal", "awb", "rms", "slt")
ESPEAK_VOICES = ("en-gb-scotland", "en-us-nyc", "en-gb-x-gbclan", "en-us+f5", "en-gb+m5", "en-us+m6")
NEEDS = {"festival": ("text2wave", "sox"), "flite": ("flite", "sox"), "espeak": ("espeak-ng", "sox")}


@dataclass(frozen=True, slots=True)
class Speaker:
    family: str
    voice: str
    pitch_cents: int  # sox pitch shift (festival, flite) or espeak-ng pitch 0-99
    tempo: float
    gain_db: float

    @classmethod
    def draw(cls, family: str, rng: np.random.Generator) -> Speaker:
        if family == "festival":
            voice, pitch = "kal_diphone", int(rng.choice([-400, -250, -100, 0, 150, 300, 450]))
        elif family == "flite":
            voice, pitch = str(rng.choice(FLITE_VOICES)), int(rng.choice([-200, 0, 200]))
        else:
            voice, pitch = str(rng.choice(ESPEAK_VOICES)), int(rng.integers(35, 70))
        return cls(family, voice, pitch, round(float(rng.uniform(0.9, 1.12)), 2), round(float(rng.uniform(-6, 0)), 1))


def check_family(family: str) -> None:
    """A one-line error when the family's programs are missing."""
    if family not in FAMILIES:
        raise DuplexError(f"--family {family!r}: expected one of {', '.join(FAMILIES)}")
    missing = [p for p in NEEDS[family] if shutil.which(p) is None]
    if missing:
        raise DuplexError(f"--family {family} needs {', '.join(missing)} (scripts/install-system-deps.sh)")


class Tts:
    """Synthesise and cache clips under `cache`."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)

    def say(self, text: str, speaker: Speaker) -> np.ndarray:
        key = hashlib.sha1(f"{speaker}|{text}".encode()).hexdigest()[:16]
        path = self.cache / f"{key}.npy"
        if path.is_file():
            return np.load(path)
        audio = _trim(self._render(text, speaker)) * np.float32(10 ** (speaker.gain_db / 20))
        np.save(path, audio.astype(np.float32))
        return audio.astype(np.float32)

    def _render(self, text: str, s: Speaker) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
            if s.family == "festival":
                txt = Path(tmp) / "text.txt"
                txt.write_text(text + "\n")
                _run(["text2wave", "-eval", f"(voice_{s.voice})", str(txt), "-o", str(raw)])
                _run(["sox", str(raw), "-r", str(SAMPLE_RATE), str(out), "pitch", str(s.pitch_cents),
                      "tempo", "-s", str(s.tempo)])
            elif s.family == "flite":
                _run(["flite", "-voice", s.voice, "-t", text, "-o", str(raw)])
                _run(["sox", str(raw), "-r", str(SAMPLE_RATE), str(out), "pitch", str(s.pitch_cents),
                      "tempo", "-s", str(s.tempo)])
            else:
                _run(["espeak-ng", "-v", s.voice, "-s", str(round(160 * s.tempo)), "-p", str(s.pitch_cents),
                      "-w", str(out), text])
            return load_mono16k(out)


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise DuplexError(f"{cmd[0]} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")


def _trim(audio: np.ndarray) -> np.ndarray:
    spans = audible_spans(audio)
    if not spans:
        raise DuplexError("TTS produced silence")
    audio = audio[round(spans[0][0] * SAMPLE_RATE) : round(spans[-1][1] * SAMPLE_RATE)]
    return audio / np.abs(audio).max() * np.float32(10 ** (-3 / 20))


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
