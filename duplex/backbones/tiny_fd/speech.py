"""Spoken material for training and evaluation, from three TTS families (duplex/tts.py), cached on disk.

User turns (questions and statements; comma-ended fragments that are read with a held pitch, and
the same fragments ended with a full stop, which sound final although the speaker goes on),
monologue sentences, barge-ins, hesitant stop words ("wait", "hold on"), backchannels and coughs;
plus the model's own repertoire of replies, spoken in one fixed espeak-ng voice. Training voices
are espeak-ng and flite; festival is left out of training entirely and is the held-out family
(`--family espeak` gives v1's held-out espeak-ng voices, for the before/after comparison).
Training and held-out material also use disjoint sentences, and evaluation draws its own seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from duplex.tts import speak

REPLY_VOICE = ("espeak:en-us+f2", 150 / 165, 35 / 60)  # rate, pitch: v1's speed 150, pitch 55
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

ESPEAK_TRAIN = ["en-us", "en-gb", "en-gb-x-rp", "en-us+f3", "en-us+m3", "en-029", "en-gb-x-gbcwmd",
                "en-us+f1", "en-us+m1", "en-gb+f4", "en-us+m7", "en-gb+klatt"]
ESPEAK_HELDOUT = ["en-gb-scotland", "en-us-nyc", "en-gb-x-gbclan", "en-us+f5", "en-gb+m5", "en-us+m6"]
FLITE_TRAIN = ["slt", "awb", "rms", "kal16"]
TRAIN_VOICES = [f"espeak:{v}" for v in ESPEAK_TRAIN] + [f"flite:{v}" for v in FLITE_TRAIN]
HELDOUT = {"festival": ["festival:kal_diphone"], "espeak": [f"espeak:{v}" for v in ESPEAK_HELDOUT]}
BACKCHANNELS = ["mm-hmm", "yeah", "right", "okay"]
TRAIN_BACKCHANNELS = [*BACKCHANNELS, "uh-huh", "I see", "sure", "oh"]
# Hesitant barge-in pieces: lexical stops, as short as a backchannel. The eval set uses the first four.
HESITATIONS = ["wait", "no", "stop", "hold on"]
TRAIN_HESITATIONS = [*HESITATIONS, "sorry", "no no", "wait wait", "hang on", "um, stop", "excuse me"]

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

TRAIN_STATEMENTS = [  # monologue sentences: each sounds final, the speaker goes on after ~0.45 s
    "I went to the market this morning.", "The weather was lovely all week.", "My neighbour has a new car.",
    "We stayed at a small hotel by the lake.", "The children played in the garden.",
    "I finished the report yesterday.", "The bus was late again today.", "My sister lives in Berlin now.",
    "We had soup and bread for lunch.", "The meeting took almost two hours.", "I started running last month.",
    "The shop on the corner closed down.", "Our team lost the final.", "The film was longer than I expected.",
    "I forgot my umbrella at the office.", "The train was full of tourists.",
]
HELDOUT_STATEMENTS = [
    "My cousin visited us last weekend.", "The garden needs a lot of water.", "I bought new shoes on Monday.",
    "The road to the village was closed.", "We painted the kitchen yellow.", "The concert started very late.",
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



def repertoire(cache: Path) -> list[np.ndarray]:
    voice, rate, pitch = REPLY_VOICE
    return [speak(cache, text, voice, rate, pitch) for text in REPLIES]


def cough(rng: np.random.Generator) -> np.ndarray:
    """One or two noise bursts with a fast attack and a quick decay: a cough, 0.2-0.5 s."""
    parts = []
    for _ in range(int(rng.integers(1, 3))):
        n = int(rng.uniform(0.12, 0.25) * 16_000)
        burst = np.cumsum(rng.standard_normal(n)).astype(np.float32)
        burst = np.diff(burst, prepend=0.0) * 0.6 + burst * 0.02
        env = np.exp(-np.arange(n) / (n / 4)) * np.minimum(1.0, np.arange(n) / 80)
        parts += [burst * env, np.zeros(int(rng.uniform(0.03, 0.1) * 16_000), np.float32)]
    audio = np.concatenate(parts).astype(np.float32)
    return audio / max(float(np.abs(audio).max()), 1e-6) * 10 ** (-3 / 20)


class Pool:
    """User speech by voice variant: questions, statements, fragments (comma-ended and flat), barge-ins,
    hesitations, backchannels (lists of clips). A variant is a voice at one speed and pitch."""

    def __init__(self, cache: Path, *, heldout: bool = False, family: str = "festival", seed: int = 0,
                 variants: int = 2, max_voices: int | None = None, voices: list[str] | None = None) -> None:
        rng = np.random.default_rng(seed)
        voices = (voices or (HELDOUT[family] if heldout else TRAIN_VOICES))[:max_voices]
        finals = HELDOUT_FINALS if heldout else TRAIN_FINALS
        statements = HELDOUT_STATEMENTS if heldout else TRAIN_STATEMENTS
        fragments = HELDOUT_FRAGMENTS if heldout else TRAIN_FRAGMENTS
        barges = HELDOUT_BARGE_INS if heldout else TRAIN_BARGE_INS
        hesitations = HESITATIONS if heldout else TRAIN_HESITATIONS
        backchannels = BACKCHANNELS if heldout else TRAIN_BACKCHANNELS
        self.voices: list[dict[str, list[np.ndarray]]] = []
        for voice in voices:
            # one family with one voice (festival) gets more variants, so a held-out set is not one voice
            for _ in range(variants * (4 if voice.startswith("festival") else 1)):
                rate, pitch = float(rng.uniform(0.85, 1.2)), float(rng.uniform(0.15, 0.85))
                say = _Sayer(cache, voice, rate, pitch, rng)
                frags = list(rng.permutation(fragments)[:6])
                self.voices.append({
                    "question": say([t for t in finals if t.endswith("?")], 5),
                    "statement": say([t for t in finals if not t.endswith("?")], 4),
                    "sentence": say(statements, 4),
                    "fragment": say(frags, 6),
                    "flat": say([f.rstrip(",") + "." for f in frags[:3]], 3),
                    "barge": say(barges, 4),
                    "hesitation": say(hesitations, 4, fast=True),
                    "backchannel": [c for c in say(backchannels, 4, fast=True) if c.size < 0.6 * 16_000],
                })


class _Sayer:
    """`n` texts drawn from a list, spoken by one voice variant (short words a little faster)."""

    def __init__(self, cache: Path, voice: str, rate: float, pitch: float, rng: np.random.Generator) -> None:
        self.cache, self.voice, self.rate, self.pitch, self.rng = cache, voice, rate, pitch, rng

    def __call__(self, texts: list[str], n: int, fast: bool = False) -> list[np.ndarray]:
        rate = max(self.rate, 1.12) if fast else self.rate
        return [speak(self.cache, str(t), self.voice, rate, self.pitch) for t in self.rng.permutation(texts)[:n]]
