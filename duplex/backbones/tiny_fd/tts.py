"""Three TTS families for tiny-fd's training and evaluation speech: espeak-ng, flite and festival.

A voice is named `family:voice` (`espeak:en-gb`, `flite:slt`, `festival:kal_diphone`). Each family
has its own way to vary speed and pitch, given here as one `rate` (1.0 = the voice's default
speed, > 1 faster) and one `pitch` (0..1, 0.5 = the voice's default). Three families, not one,
because a model trained on a single engine learns that engine's prosody; one family is left out
of training entirely and used only for evaluation (festival: it has a single English voice, the
right size for a held-out set). Clips are trimmed to their audible span, peak-normalised and
cached as .npy under the cache folder (not committed).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from audio_io.levels import audible_spans
from audio_io.wav import load_mono16k
from duplex.errors import DuplexError

FAMILIES = ("espeak", "flite", "festival")
_BINARY = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}


def family(voice: str) -> str:
    name = voice.partition(":")[0] if ":" in voice else "espeak"
    if name not in FAMILIES:
        raise DuplexError(f"unknown TTS family in voice {voice!r} (one of {', '.join(FAMILIES)})")
    return name


def _command(voice: str, rate: float, pitch: float, text: str, out: Path) -> tuple[list[str], str | None]:
    fam = family(voice)
    name = voice.partition(":")[2] if ":" in voice else voice
    binary = shutil.which(_BINARY[fam])
    if binary is None:
        raise DuplexError(f"{_BINARY[fam]} is not installed: tiny-fd's {fam} voices need it "
                          "(scripts/install-system-deps.sh)")
    if fam == "espeak":
        speed, p = round(165 * rate), round(20 + 60 * pitch)
        return [binary, "-v", name, "-s", str(speed), "-p", str(p), "-w", str(out), text], None
    if fam == "flite":
        f0 = {"slt": 170, "kal16": 110, "kal": 110, "awb": 110, "rms": 105}.get(name, 120)
        return [binary, "-voice", name, "--setf", f"duration_stretch={1 / rate:.3f}",
                "--setf", f"int_f0_target_mean={f0 * (0.8 + 0.4 * pitch):.0f}", "-t", text, "-o", str(out)], None
    f0 = 105 * (0.8 + 0.4 * pitch)
    return [binary, "-eval", f"(voice_{name})", "-eval", f"(Parameter.set 'Duration_Stretch {1 / rate:.3f})",
            "-eval", f"(set! duffint_params '((start {f0 + 15:.0f}) (end {f0 - 15:.0f})))",
            "-o", str(out)], text


def speak(cache: Path, text: str, voice: str, rate: float = 1.0, pitch: float = 0.5,
          peak_db: float = -3.0) -> np.ndarray:
    """A trimmed, peak-normalised 16 kHz clip of `text` in `voice` (cached as .npy)."""
    key = hashlib.sha1(f"{text}|{voice}|{rate:.3f}|{pitch:.3f}|{peak_db}".encode()).hexdigest()[:16]
    path = cache / f"{key}.npy"
    if path.exists():
        return np.load(path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        cmd, stdin = _command(voice, rate, pitch, text, raw)
        subprocess.run(cmd, input=stdin, text=True, check=True, capture_output=True)
        audio = load_mono16k(raw)
    spans = audible_spans(audio) or [(0.0, audio.size / 16_000)]
    audio = audio[int(spans[0][0] * 16_000): int(np.ceil(spans[-1][1] * 16_000))]
    audio = (audio / max(float(np.abs(audio).max()), 1e-6) * 10 ** (peak_db / 20)).astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, audio)
    return audio
