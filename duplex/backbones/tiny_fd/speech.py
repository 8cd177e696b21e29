"""Spoken material for training and evaluation, made with espeak-ng and cached on disk.

Three kinds of text: user turns (whole sentences, and comma-ended fragments that espeak-ng reads
with a held pitch, as a speaker who pauses mid-turn), barge-ins and backchannels; plus the
model's own repertoire of replies, spoken in one fixed voice. Training and held-out material use
disjoint sentences and voices. Clips are trimmed to their audible span and peak-normalised.
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

REPLY_VOICE = ("en-us+f2", 150, 55)
REPLIES = [
    "Sure, let me check that for you right now, one moment please.",
    "That sounds like a great plan, I would be happy to help with it.",
    "The next train leaves at ten past nine from platform four.",
    "It will be sunny this afternoon, with a light breeze from the west.",
    "I have booked a table for two at seven o'clock this evening.",
    "Good question, the answer depends on how much time you have.",
    "Thank you for waiting, everything is ready for you now.",
    "I am sorry, I did not quite catch that, could you say it again?",
]

TRAIN_VOICES = ["en-us", "en-gb", "en-gb-x-rp", "en-us+f3", "en-us+m3", "en-029", "en-gb-x-gbcwmd",
                "en-us+f1", "en-us+m1", "en-gb+f4", "en-us+m7", "en-gb+klatt"]
HELDOUT_VOICES = ["en-gb-scotland", "en-us-nyc", "en-gb-x-gbclan", "en-us+f5", "en-gb+m5", "en-us+m6"]
BACKCHANNELS = ["mm-hmm", "yeah", "right", "okay"]

TRAIN_FINALS = [
    "What time does the museum open on Sunday?", "Can you recommend a good book about history?",
    "I need a taxi to the airport tomorrow morning.", "How far is it from here to the station?",
    "Please remind me to call my sister tonight.", "What is the capital of Australia?",
    "Is it going to rain later today?", "I would like to order a large pizza with mushrooms.",
    "Tell me a fun fact about octopuses.", "How do I reset the password on my laptop?",
    "My flight was cancelled and I need a new one.", "Where can I buy fresh bread near here?",
    "Could you play some quiet music for me?", "What should I cook for dinner tonight?",
    "How many days are left until the holidays?", "I lost my keys somewhere in the garden.",
    "Turn off the lights in the kitchen please.", "Why is the sky blue during the day?",
    "Set a timer for twenty minutes.", "Who won the football match last night?",
    "Can I bring my dog on the bus?", "The printer is not working again.",
    "I want to learn how to play the guitar.", "What is the best way to save money?",
    "Book me a room for three nights in Rome.", "How long should I boil an egg?",
    "Is the pharmacy still open at this hour?", "Explain how a rainbow forms.",
    "My phone battery drains very quickly.", "Find me a quiet cafe with good coffee.",
    "We are planning a picnic on Saturday.", "How do you say thank you in Japanese?",
]
TRAIN_FRAGMENTS = [
    "So I was wondering,", "well, the thing is,", "if you have a moment,", "and then after lunch,",
    "I think that maybe,", "you know, the other day,", "because my brother said,", "when we get there,",
    "so basically,", "and also,", "on the other hand,", "before we leave,", "just to be sure,",
    "the problem is that,", "if it is not too late,", "as far as I remember,", "now that I think of it,",
    "and the reason is,", "first of all,", "okay so,", "with the car,", "at the end of the day,",
]
TRAIN_BARGE_INS = [
    "No wait, that is not what I asked for.", "Hold on, I have another question.",
    "Sorry to interrupt, but I need to go now.", "Stop, stop, let me explain again.",
    "Actually, can we talk about something else?", "Excuse me, I think you misunderstood me.",
    "Wait a second, what did you just say?", "No no, I meant the other one.",
    "Hang on, let me check my calendar first.", "Never mind that, tell me about the weather.",
]

HELDOUT_FINALS = [
    "Where is the nearest post office?", "I would like to change my appointment to Friday.",
    "How tall is the highest mountain in Europe?", "Please send a message to my neighbour.",
    "Which platform does the express train use?", "My washing machine keeps making a loud noise.",
    "Can you suggest a present for my father?", "What is a healthy breakfast?",
    "I am looking for a hotel close to the beach.", "How do plants make their food?",
    "Tell me the opening hours of the library.", "The heating in my flat is broken.",
]
HELDOUT_FRAGMENTS = [
    "I was hoping,", "if it is possible,", "during the summer,", "together with my friends,",
    "after the meeting,", "in my opinion,", "for the next trip,", "to tell you the truth,",
]
HELDOUT_BARGE_INS = [
    "Excuse me, that is the wrong address.", "Wait, I changed my mind about that.",
    "Sorry, can you repeat the first part?", "No, please cancel that request.",
]

ESPEAK = shutil.which("espeak-ng")


def speak(cache: Path, text: str, voice: str, speed: int, pitch: int, peak_db: float = -3.0) -> np.ndarray:
    """A trimmed, peak-normalised 16 kHz clip of `text` (cached as .npy)."""
    if ESPEAK is None:
        raise DuplexError("espeak-ng is not installed: tiny-fd training and evaluation need it")
    key = hashlib.sha1(f"{text}|{voice}|{speed}|{pitch}|{peak_db}".encode()).hexdigest()[:16]
    path = cache / f"{key}.npy"
    if path.exists():
        return np.load(path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run([ESPEAK, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text],
                       check=True, capture_output=True)
        audio = load_mono16k(raw)
    spans = audible_spans(audio) or [(0.0, audio.size / 16_000)]
    audio = audio[int(spans[0][0] * 16_000): int(np.ceil(spans[-1][1] * 16_000))]
    audio = (audio / max(float(np.abs(audio).max()), 1e-6) * 10 ** (peak_db / 20)).astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, audio)
    return audio


def repertoire(cache: Path) -> list[np.ndarray]:
    voice, speed, pitch = REPLY_VOICE
    return [speak(cache, text, voice, speed, pitch) for text in REPLIES]


class Pool:
    """User speech by voice: finals, fragments, barge-ins, backchannels (lists of clips)."""

    def __init__(self, cache: Path, *, heldout: bool = False, seed: int = 0, variants: int = 2,
                 max_voices: int | None = None) -> None:
        rng = np.random.default_rng(seed)
        voices = (HELDOUT_VOICES if heldout else TRAIN_VOICES)[:max_voices]
        finals = HELDOUT_FINALS if heldout else TRAIN_FINALS
        fragments = HELDOUT_FRAGMENTS if heldout else TRAIN_FRAGMENTS
        barges = HELDOUT_BARGE_INS if heldout else TRAIN_BARGE_INS
        self.voices: list[dict[str, list[np.ndarray]]] = []
        for voice in voices:
            for _ in range(variants):
                speed, pitch = int(rng.integers(140, 191)), int(rng.integers(30, 71))
                pick = rng.permutation
                self.voices.append({
                    "final": [speak(cache, t, voice, speed, pitch) for t in pick(finals)[:8]],
                    "fragment": [speak(cache, t, voice, speed, pitch) for t in pick(fragments)[:6]],
                    "barge": [speak(cache, t, voice, speed, pitch) for t in pick(barges)[:4]],
                    "backchannel": [clip for t in BACKCHANNELS
                                    if (clip := speak(cache, t, voice, max(speed, 185), pitch)).size < 0.6 * 16_000],
                })
