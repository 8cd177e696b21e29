"""Spoken test clips made with espeak-ng at test time (cached per session), and WAV helpers."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_io.format import SAMPLE_RATE
from audio_io.levels import audible_spans
from audio_io.wav import load_mono16k

ESPEAK = shutil.which("espeak-ng")


def speak(cache: Path, text: str, *, voice: str = "en-us", speed: int = 165, pitch: int = 50,
          gain_db: float = -3.0) -> Path:
    """A 16 kHz mono WAV of `text`, peak-normalised to `gain_db` dBFS."""
    if ESPEAK is None:
        raise RuntimeError("espeak-ng is not installed (the README's test command installs it)")
    key = hashlib.sha1(f"{text}|{voice}|{speed}|{pitch}|{gain_db}".encode()).hexdigest()[:12]
    out = cache / f"speech-{key}.wav"
    if not out.exists():
        raw = cache / f"raw-{key}.wav"
        subprocess.run([ESPEAK, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text],
                       check=True, capture_output=True)
        audio = load_mono16k(raw)
        audio = audio / max(float(np.abs(audio).max()), 1e-6) * 10 ** (gain_db / 20)
        sf.write(out, audio, SAMPLE_RATE, subtype="PCM_16")
        raw.unlink()
    return out


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def write_wav(path: Path, *parts: np.ndarray | Path) -> Path:
    """Concatenate arrays and WAV files (converted to 16 kHz mono) into one WAV."""
    audio = np.concatenate([load_mono16k(p) if isinstance(p, Path) else p for p in parts])
    sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
    return path


__all__ = ["audible_spans", "silence", "speak", "write_wav"]
