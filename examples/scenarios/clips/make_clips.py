"""Regenerate the scenario clips with espeak-ng (run from the repository root).

The WAVs are committed so the suite runs without a TTS; this script documents how they were made:
    python examples/scenarios/clips/make_clips.py            # every clip
    python examples/scenarios/clips/make_clips.py hesitant   # only the named ones
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from audio_io.format import SAMPLE_RATE  # noqa: E402
from audio_io.levels import audible_spans  # noqa: E402
from audio_io.wav import load_mono16k  # noqa: E402

HERE = Path(__file__).parent
LEAD_S = 0.05  # silence kept before and after the speech of every clip

CLIPS = {
    "weather": ("What is the weather like in Paris today?", "en-us", 165, 50),
    "train": ("Could you tell me how long the train to Edinburgh takes on a weekday morning?", "en-gb", 160, 45),
    "table": ("I would like to book a table for two people tonight, somewhere quiet.", "en-us+f3", 160, 60),
    "stop": ("No wait, stop, I want to ask something else.", "en-gb-x-rp", 170, 40),
    "actually": ("Actually, hold on, that is not what I meant at all.", "en-us+m3", 165, 55),
    "mmhmm": ("mm-hmm", "en-us", 200, 50),
    "yeah": ("yeah", "en-gb", 190, 45),
    "right": ("right", "en-us+f2", 190, 60),
    # Comma-ended fragments hold the pitch up: the speaker is not done. Joined with pauses below.
    "frag1": ("I was thinking,", "en-us", 160, 50),
    "frag2": ("maybe we could go,", "en-us", 160, 50),
    "frag3": ("to the seaside this weekend.", "en-us", 160, 50),
    # Hesitant barge-in pieces, and fragments that each sound like the end of a turn.
    "h_wait": ("wait", "en-gb", 175, 45),
    "h_no": ("no", "en-gb", 175, 45),
    "h_main": ("hold on, I meant the return ticket, not the single one.", "en-gb", 170, 45),
    "long1": ("I called the bank this morning.", "en-us+m3", 160, 50),
    "long2": ("They said my card is blocked.", "en-us+m3", 160, 50),
    "long3": ("What should I do now?", "en-us+m3", 160, 50),
    # Monologue sentences (separate clips, placed 0.45 s apart by monologue.yaml).
    "mono1": ("We painted the kitchen yellow last weekend.", "en-gb-x-rp", 165, 50),
    "mono2": ("It took much longer than we had planned.", "en-gb-x-rp", 165, 50),
    "mono3": ("Now the whole flat smells of fresh paint.", "en-gb-x-rp", 165, 50),
}
# Clips joined from pieces with silences between them: (name, pieces, pauses in seconds).
JOINED = [
    ("paused", ["frag1", "frag2", "frag3"], [0.45, 0.6]),
    ("hesitant", ["h_wait", "h_no", "h_main"], [0.4, 0.5]),
    ("long_pause", ["long1", "long2", "long3"], [0.9, 1.3]),
]
PIECES = ("frag", "h_", "long")
HUSH_S = 0.55  # "shh": no TTS here says one (espeak-ng and flite voice it: "shuh"), so it is made


def hush(seconds: float = HUSH_S, seed: int = 7) -> np.ndarray:
    """A hushing "shh": noise between 2 and 7 kHz (the fricative's band), 0.1 s in, 0.15 s out."""
    n = round(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum[(f < 2000) | (f > 7000)] = 0
    ramp = np.minimum(1, np.minimum(np.arange(n) / 1600, (n - np.arange(n)) / 2400))
    noise = np.fft.irfft(spectrum, n) * ramp
    return noise / np.abs(noise).max() * 10 ** (-8 / 20)


def speak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text],
                       check=True, capture_output=True)
        audio = load_mono16k(raw)
    spans = audible_spans(audio)
    audio = audio[round(spans[0][0] * SAMPLE_RATE) : round(spans[-1][1] * SAMPLE_RATE)]
    return audio / np.abs(audio).max() * 10 ** (-3 / 20)


def main(names: list[str]) -> None:
    """Write every clip, or only the named ones (so adding a clip leaves the others untouched)."""
    if shutil.which("espeak-ng") is None:
        sys.exit("make_clips.py needs espeak-ng (apt-get install espeak-ng)")
    known = [n for n in CLIPS if not n.startswith(PIECES)] + [j[0] for j in JOINED] + ["hush"]
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"make_clips.py: unknown clip {', '.join(unknown)} (one of {', '.join(known)})")
    wanted = set(names or known)
    pad = np.zeros(round(LEAD_S * SAMPLE_RATE), dtype=np.float32)
    made = {name: speak(*spec) for name, spec in CLIPS.items()}
    made["hush"] = hush()
    for name, audio in made.items():
        if name in wanted:
            sf.write(HERE / f"{name}.wav", np.concatenate([pad, audio, pad]), SAMPLE_RATE, subtype="PCM_16")
    for name, parts, pauses in JOINED:
        if name not in wanted:
            continue
        joined = [pad]
        for i, part in enumerate(parts):
            joined.append(made[part])
            if i < len(pauses):
                joined.append(np.zeros(round(pauses[i] * SAMPLE_RATE), dtype=np.float32))
        joined.append(pad)
        sf.write(HERE / f"{name}.wav", np.concatenate(joined), SAMPLE_RATE, subtype="PCM_16")
    for name in sorted(wanted):
        print(f"{name}.wav: {sf.info(HERE / f'{name}.wav').duration:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
