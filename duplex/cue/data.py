"""Training examples for the cue model: the microphone's last seconds, ending just after an utterance.

Each example is what the runtime will hand the model: `WINDOW_S` of microphone audio whose last
utterance (a sentence of one class, duplex/cue/text.py) ended 0.1-0.8 s before the window's end,
after whatever came before it: silence, an earlier sentence of the same speaker (so that only the
last one decides), or the echo of the model's own reply (a backchannel starts over the reply).
Voices are espeak-ng's and flite's (and SVOX Pico's in the examples train.py's `--pico-examples`
asks for; festival is the held-out family, never used here), each at a drawn speed, pitch and
level, over a little noise.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from audio_io.format import SAMPLE_RATE
from audio_io.scripted import noise_signal
from duplex.backbones.tiny_fd.features import LogMel
from duplex.backbones.tiny_fd.speech import cough, repertoire
from duplex.cue.text import ASKS, BACKCHANNEL, CLASSES, FRAGMENT, STATEMENT, STOP, Sentences
from duplex.eval.tts import Speaker, Tts, silence

WINDOW_S = 5.0
ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-x-rp", "en-029", "en-gb-x-gbcwmd", "en-gb-scotland", "en-us-nyc",
                  "en-gb-x-gbclan"]
ESPEAK_VARIANTS = ["", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5",
                   "+klatt", "+klatt2", "+klatt4", "+Andy", "+Annie", "+david", "+linda", "+michel", "+paul",
                   "+steph", "+edward", "+grandma", "+john", "+robert", "+victor", "+belinda", "+aunty"]
FLITE_VOICES = ["flite:slt", "flite:awb", "flite:rms", "flite:kal16", "flite:kal"]
PICO_VOICES = ["pico:en-US", "pico:en-GB"]  # a third engine's prosody (train.py --pico-examples)
WEIGHTS = {ASKS: 0.24, STATEMENT: 0.2, FRAGMENT: 0.2, BACKCHANNEL: 0.18, STOP: 0.18}


def train_voice(rng: np.random.Generator) -> str:
    """Half the examples in flite's five voices, the rest in espeak-ng's accents and variants."""
    if rng.random() < 0.5:
        return FLITE_VOICES[int(rng.integers(len(FLITE_VOICES)))]
    accent = ESPEAK_ACCENTS[int(rng.integers(len(ESPEAK_ACCENTS)))]
    return f"espeak:{accent}{ESPEAK_VARIANTS[int(rng.integers(len(ESPEAK_VARIANTS)))]}"


def draw_speaker(rng: np.random.Generator, name: str) -> Speaker:
    """A voice at a drawn speed, pitch and level (wider than the evaluation's own draws)."""
    rate, pitch = float(rng.uniform(0.85, 1.2)), float(rng.uniform(0.15, 0.85))
    return Speaker(name, pitch=pitch, rate=rate, gain_db=float(rng.uniform(-12, 0)))


class Examples:
    """Seeded examples; `voices` fixes the voice list (evaluation), else training voices are drawn."""

    def __init__(self, cache: Path, seed: int, voices: list[str] | None = None, room_noise: float = 0.0) -> None:
        self.cache, self.voices = cache, voices
        self.room_noise = room_noise  # the share of examples heard in a loud room (train.py --room-noise)
        self.tts = Tts(cache)
        self.rng = np.random.default_rng(seed)
        self.text = Sentences(self.rng)
        self.replies = repertoire(cache)

    def say(self, text: str, voice: Speaker, fast: bool = False) -> np.ndarray:
        return self.tts.say(text, replace(voice, rate=max(voice.rate, 1.05)) if fast else voice)

    def draw_label(self) -> int:
        labels, weights = zip(*WEIGHTS.items(), strict=True)
        return int(self.rng.choice(labels, p=np.asarray(weights) / sum(weights)))

    def one(self, label: int) -> tuple[np.ndarray, str]:
        rng = self.rng
        name = str(rng.choice(self.voices)) if self.voices else train_voice(rng)
        voice = draw_speaker(rng, name)
        short = label in (BACKCHANNEL, STOP)
        text = self.text.of(label)
        main = self.say(text, voice, fast=short)
        if label == BACKCHANNEL and rng.random() < 0.2:  # a cough or a click: the reply goes on over it too
            text, main = "(noise)", noise_burst(rng) * np.float32(10 ** (voice.gain_db / 20))
        if not short and rng.random() < 0.3:  # a sentence read in two breaths: a short pause inside
            lead = self.say(self.text.of(int(rng.choice([STATEMENT, FRAGMENT]))), voice)
            main = np.concatenate([lead, silence(rng.uniform(0.05, 0.3)), main])
        context = rng.random()
        if short and context < 0.6:  # over the reply: its echo, up to where the user started
            echo = self.replies[int(rng.integers(len(self.replies)))]
            n = int(rng.uniform(0.3, 2.0) * SAMPLE_RATE)
            start = int(rng.integers(max(1, echo.size - n)))
            piece = echo[start: start + n] * np.float32(10 ** (rng.uniform(-40, -10) / 20))
            starts = max(0, piece.size - int(rng.uniform(0, 0.2) * SAMPLE_RATE))  # up to 0.2 s over it
            mixed = np.zeros(max(piece.size, starts + main.size), np.float32)
            mixed[: piece.size] += piece
            mixed[starts: starts + main.size] += main
            parts = [mixed, silence(rng.uniform(0.1, 0.8))]
        elif context < 0.7:  # an earlier sentence of the same speaker, a pause before this one
            before = self.say(self.text.of(int(rng.choice([ASKS, STATEMENT, FRAGMENT]))), voice)
            parts = [before, silence(rng.uniform(0.3, 1.5)), main, silence(rng.uniform(0.1, 0.8))]
        else:
            parts = [main, silence(rng.uniform(0.1, 0.8))]
        audio = np.concatenate(parts).astype(np.float32)
        noise = rng.standard_normal(audio.size).astype(np.float32) * np.float32(10 ** (rng.uniform(-75, -50) / 20))
        return audio + noise, text

    def in_room(self, heard: np.ndarray) -> np.ndarray:
        """A window as a loud room hears it, for a `room_noise` share of them: a steady white or pink
        noise at -45 to -28 dBFS under all of it (the runtime's rules meet such rooms: -30 dBFS white
        noise made the cue network hear backchannels as statements). The rest are left as they are,
        and with no share at all no draw is made: the examples of a seed stay what they were."""
        if self.room_noise <= 0 or self.rng.random() >= self.room_noise:
            return heard
        kind = "pink" if self.rng.random() < 0.5 else "white"
        level = float(self.rng.uniform(-45, -28))
        return heard + noise_signal(kind, level, heard.size, int(self.rng.integers(2**31)))


def noise_burst(rng: np.random.Generator) -> np.ndarray:
    """A cough (tiny-fd's), or a band of noise with a fast attack and a decay: a click, a throat."""
    if rng.random() < 0.5:
        return cough(rng)
    n = int(rng.uniform(0.1, 0.5) * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    lo = rng.uniform(100, 1500)
    spectrum[(f < lo) | (f > lo * rng.uniform(2, 8))] = 0
    burst = np.fft.irfft(spectrum, n) * np.exp(-np.linspace(0, rng.uniform(2, 8), n))
    return (burst / max(float(np.abs(burst).max()), 1e-6) * 0.7).astype(np.float32)


def window(audio: np.ndarray) -> np.ndarray:
    """The last WINDOW_S of `audio`, left-padded with silence."""
    n = round(WINDOW_S * SAMPLE_RATE)
    audio = audio[-n:]
    return np.pad(audio, (n - audio.size, 0)).astype(np.float32)


def features(mel: LogMel, windows: np.ndarray) -> torch.Tensor:
    """(B, WINDOW_S samples) -> (B, 40, 100 * WINDOW_S) log-mel frames."""
    with torch.no_grad():
        return mel.full(torch.from_numpy(windows))


def build(cache: Path, seed: int, n: int, voices: list[str] | None = None,
          labels: list[int] | None = None, room_noise: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """`n` examples as (features float16, labels, texts)."""
    examples = Examples(cache, seed, voices, room_noise)
    mel = LogMel()
    feats, ys, texts = [], [], []
    for i in range(n):
        label = labels[i % len(labels)] if labels else examples.draw_label()
        audio, text = examples.one(label)
        feats.append(features(mel, examples.in_room(window(audio))[None])[0].half())
        ys.append(label)
        texts.append(text)
    return torch.stack(feats), torch.tensor(ys), texts


__all__ = ["CLASSES", "WINDOW_S", "Examples", "build", "features", "window"]
