"""Speaking one sentence in a voice of espeak-ng, flite, festival or SVOX Pico: tiny-fd's training
speech and the evaluation's held-out speech come from this one synthesiser, so both vary voices the
same way.

A voice is named `family:voice` (`espeak:en-gb`, `flite:slt`, `festival:ked_diphone`,
`pico:en-US`). Each family has its own way to vary speed and pitch, given here as one `rate` (1.0 =
the voice's default speed, > 1 faster) and one `pitch` (0..1, 0.5 = the voice's default): espeak-ng
and flite take them as engine parameters, Pico as markup around the text; festival's voices ignore a
pitch target, so its pitch is shifted afterwards with sox (up to +-5 semitones). Several families,
not one, because a model trained on a single engine learns that engine's prosody; festival is left
out of every training entirely and used only for evaluation. Pico (`pico2wave`) is in Debian's
non-free section: only the cue model's training uses it (scripts/install-pico.sh). Clips are
trimmed to their audible span, peak-normalised and cached as .npy under the cache folder (not
committed).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from audio_io.format import SAMPLE_RATE
from audio_io.levels import audible_spans
from audio_io.wav import load_mono16k
from duplex.errors import DuplexError
from duplex.paths import written_whole

FAMILIES = ("espeak", "flite", "festival", "pico")
_BINARIES = {"espeak": ("espeak-ng",), "flite": ("flite",), "festival": ("text2wave", "sox"), "pico": ("pico2wave",)}
_INSTALL = {"pico": "scripts/install-pico.sh"}
PICO_LANGUAGES = ("en-US", "en-GB", "de-DE", "es-ES", "fr-FR", "it-IT")  # pico2wave -l: its only voices
_FLITE_F0 = {"slt": 170, "kal16": 110, "kal": 110, "awb": 110, "rms": 105}
SHIFT_SEMITONES = 5  # festival and pico: pitch 0 / 1 is this far below / above the voice


def family(voice: str) -> str:
    name = voice.partition(":")[0] if ":" in voice else "espeak"
    if name not in FAMILIES:
        raise DuplexError(f"unknown TTS family in voice {voice!r} (one of {', '.join(FAMILIES)})")
    return name


def _installer(fam: str) -> str:
    return _INSTALL.get(fam, "scripts/install-system-deps.sh")


def check_voice(voice: str) -> None:
    """A one-line error naming what to install when `voice` cannot be spoken here."""
    fam = family(voice)
    missing = [b for b in _BINARIES[fam] if shutil.which(b) is None]
    if missing:
        raise DuplexError(f"voice {voice}: {', '.join(missing)} not installed ({_installer(fam)})")
    if fam == "pico" and voice.partition(":")[2] not in PICO_LANGUAGES:
        raise DuplexError(f"voice {voice}: pico has no voice {voice.partition(':')[2]!r} "
                          f"(one of {', '.join(PICO_LANGUAGES)})")
    if fam == "festival":
        name = voice.partition(":")[2]
        done = subprocess.run(["festival", "--batch", f"(voice_{name})"], capture_output=True, text=True)
        if done.returncode != 0 or "unbound variable" in done.stderr + done.stdout:
            raise DuplexError(f"voice {voice}: festival has no voice {name!r} "
                              "(Debian: festvox-kdlpc16k gives ked_diphone, festvox-us-slt-hts cmu_us_slt_arctic_hts)")


def _command(voice: str, rate: float, pitch: float, text: str, out: Path) -> tuple[list[str], str | None]:
    fam = family(voice)
    name = voice.partition(":")[2] if ":" in voice else voice
    binary = shutil.which(_BINARIES[fam][0])
    if binary is None:
        raise DuplexError(f"{_BINARIES[fam][0]} is not installed: {fam} voices need it ({_installer(fam)})")
    if fam == "espeak":
        speed, p = round(165 * rate), round(20 + 60 * pitch)
        return [binary, "-v", name, "-s", str(speed), "-p", str(p), "-w", str(out), text], None
    if fam == "pico":  # speed in percent; pitch in percent of the voice's, +-5 semitones
        level = round(100 * 2 ** ((pitch - 0.5) * 2 * SHIFT_SEMITONES / 12))
        marked = f"<speed level='{round(100 * rate)}'><pitch level='{level}'>{escape(text)}</pitch></speed>"
        return [binary, "-l", name, "-w", str(out), marked], None
    if fam == "flite":
        f0 = _FLITE_F0.get(name, 120)
        return [binary, "-voice", name, "--setf", f"duration_stretch={1 / rate:.3f}",
                "--setf", f"int_f0_target_mean={f0 * (0.8 + 0.4 * pitch):.0f}", "-t", text, "-o", str(out)], None
    return [binary, "-eval", f"(voice_{name})", "-eval", f"(Parameter.set 'Duration_Stretch {1 / rate:.3f})",
            "-o", str(out)], text


def speak(cache: Path, text: str, voice: str, rate: float = 1.0, pitch: float = 0.5,
          peak_db: float = -3.0) -> np.ndarray:
    """A trimmed, peak-normalised 16 kHz clip of `text` in `voice` (cached as .npy)."""
    shifted_by_sox = "|sox" if family(voice) == "festival" else ""  # not an engine pitch, since this module merged
    key = hashlib.sha1(f"{text}|{voice}|{rate:.3f}|{pitch:.3f}|{peak_db}{shifted_by_sox}".encode()).hexdigest()[:16]
    path = cache / f"{key}.npy"
    if path.exists():
        return np.load(path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        cmd, stdin = _command(voice, rate, pitch, text, raw)
        _run(cmd, stdin)
        if family(voice) == "festival" and pitch != 0.5:
            shifted = Path(tmp) / "shifted.wav"
            cents = round((pitch - 0.5) * 2 * SHIFT_SEMITONES * 100)
            _run(["sox", str(raw), "-r", str(SAMPLE_RATE), str(shifted), "pitch", str(cents)])
            raw = shifted
        audio = load_mono16k(raw)
    spans = audible_spans(audio)
    if not spans:
        raise DuplexError(f"voice {voice}: TTS produced silence for {text!r}")
    audio = audio[int(spans[0][0] * SAMPLE_RATE): int(np.ceil(spans[-1][1] * SAMPLE_RATE))]
    audio = (audio / max(float(np.abs(audio).max()), 1e-6) * 10 ** (peak_db / 20)).astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    with written_whole(path) as partial:  # two runs sharing a cache never load a half-written clip
        np.save(partial, audio)
    return audio


def _run(cmd: list[str], stdin: str | None = None) -> None:
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no message"]
        raise DuplexError(f"{Path(cmd[0]).name} failed: {last[0]}")
