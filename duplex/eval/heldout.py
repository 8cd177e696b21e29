"""The held-out conversations: Full-Duplex-Bench's four task shapes plus the hard cases.

Shapes (docs/metrics.md): `pause_handling` (one mid-sentence pause, 0.5-1.0 s, after a
comma-ended fragment), `smooth_turn_taking` (a plain question), `user_interruption` (a question,
then a barge-in 0.5-1.5 s into the reply), `backchannel` (two backchannels and a cough over the
reply, one after another with 0.4-1.2 s between them, with the speaker's own echo at -20 dB),
`hesitant_barge_in` ("wait" / "no" / "stop" / "hold on" pieces 0.2-0.6 s apart before the main
utterance), `long_pause` (two 0.3-1.5 s pauses after fragments that end like a sentence) and
`monologue` (three statements with 0.45 s gaps, the benchmark's backchannel task). The sentences
are in banks (banks.py), used nowhere else in the project; bank `b` is the default. Every draw
comes from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_io.format import SAMPLE_RATE
from duplex.eval.banks import BANKS, Sentences
from duplex.eval.tts import Speaker, Tts, cough, silence
from duplex.paths import written_whole
from duplex.scenario.spec import After, Check, ClipSpec, EchoSpec, Expectation, NoiseSpec, Role, Scenario, Trigger

SHAPES = ("pause_handling", "smooth_turn_taking", "user_interruption", "backchannel",
          "hesitant_barge_in", "long_pause", "monologue")

HESITATIONS = ("wait", "no", "stop", "hold on")
BACKCHANNELS = ("mm-hmm", "yeah", "right", "okay", "uh-huh", "I see")


# the question each shape's turn asks: the draw's k-th question, offset by shape so that one draw's
# shapes ask different questions
QUESTION_OFFSETS = {"smooth_turn_taking": 0, "backchannel": 1, "user_interruption": 3, "hesitant_barge_in": 5}


def turn_sentences(text: Sentences, seed: int, shape: str, k: int) -> tuple[str, ...]:
    """The sentences of the user's turn in a draw's k-th conversation of `shape` (from 0), in order.

    Why apart from the builder: the sentence, not the conversation, is what a false start hangs on
    (one question of bank d's eight had 7 of its 20), so a report groups its turns by these, and a
    result file written before it recorded them can still be grouped (compare.py)."""
    if shape in QUESTION_OFFSETS:
        return (text.questions[(seed + k + QUESTION_OFFSETS[shape]) % len(text.questions)],)
    if shape == "pause_handling":
        return text.comma_fragments[(seed + k) % len(text.comma_fragments)]
    if shape == "long_pause":
        return text.final_fragments[(seed + k) % len(text.final_fragments)]
    if shape == "monologue":
        return text.monologues[(seed + k) % len(text.monologues)]
    raise ValueError(f"unknown shape {shape!r}")


@dataclass(frozen=True, slots=True)
class Conversation:
    shape: str
    scenario: Scenario
    sentences: tuple[str, ...] = ()  # the user's turn (`turn_sentences`)
    speaker: Speaker | None = None  # who says it (and every piece of the user's in it)


class Builder:
    """Conversations for one TTS family and seed, with their clips written under `work`."""

    def __init__(self, family: str, seed: int, work: Path, tts: Tts, bank: str | Sentences = "b",
                 voices: tuple[str, ...] | None = None, noise: NoiseSpec | None = None,
                 hesitations: tuple[str, ...] = HESITATIONS, backchannels: tuple[str, ...] = BACKCHANNELS) -> None:
        self.family, self.seed, self.work, self.tts = family, seed, work, tts
        self.noise = noise  # a steady room noise under every conversation (the runner adds it, seeded)
        self.voices = voices  # None: the family's held-out voices
        # a bank's name, or sentences of one's own (duplex/cue/harvest.py: the cue model's training text)
        self.text = BANKS[bank] if isinstance(bank, str) else bank
        self.hesitations, self.backchannels = list(hesitations), list(backchannels)
        self.rng = np.random.default_rng(seed)

    def build(self, per_shape: int, shapes: tuple[str, ...] = SHAPES) -> list[Conversation]:
        out = []
        for k in range(per_shape):
            for shape in shapes:
                speaker = Speaker.draw(self.family, self.rng, self.voices)
                conversation = getattr(self, shape)(f"{shape}-{k + 1}", k, speaker)
                out.append(replace(conversation, sentences=turn_sentences(self.text, self.seed, shape, k),
                                   speaker=speaker))
        return out

    # --- pieces -------------------------------------------------------------------------------

    def say(self, text: str, speaker: Speaker) -> np.ndarray:
        return self.tts.say(text, speaker)

    def joined(self, parts: list[str], pauses: list[float], speaker: Speaker) -> np.ndarray:
        return self.spaced([self.say(text, speaker) for text in parts], pauses)[0]

    @staticmethod
    def spaced(pieces: list[np.ndarray], pauses: list[float]) -> tuple[np.ndarray, list[int]]:
        """The pieces one after another with the pauses between them, and the sample each starts at."""
        audio, starts, at = [pieces[0]], [0], pieces[0].size
        for piece, pause in zip(pieces[1:], pauses, strict=True):
            gap = silence(pause)
            audio += [gap, piece]
            starts.append(at + gap.size)
            at += gap.size + piece.size
        return np.concatenate(audio), starts

    LEAD_S = 0.05  # the silence `write` puts before (and after) a clip's audio

    def write(self, name: str, i: int, audio: np.ndarray) -> Path:
        path = self.work / name / f"{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        pad = silence(self.LEAD_S)
        with written_whole(path) as partial:
            sf.write(partial, np.concatenate([pad, audio, pad]), SAMPLE_RATE, subtype="FLOAT")
        return path

    def scenario(self, name: str, clips: list[tuple[np.ndarray, float | After, Role]], tail: float,
                 expect: list[Check], echo: EchoSpec | None = None) -> Scenario:
        specs, end = [], 0.0
        for i, (audio, when, role) in enumerate(clips, start=1):
            path = self.write(name, i, audio)
            length = audio.size / SAMPLE_RATE + 0.1
            if isinstance(when, After):
                specs.append(ClipSpec(i, path, after=when, role=role))
                end += when.delay + length + 4.0  # the reply it waits for, then the clip
            else:
                specs.append(ClipSpec(i, path, at=when, role=role))
                end = max(end, when + length)
        exps = tuple(Expectation(c, {"max": 0}, 0) for c in expect)
        return Scenario(name=name, file=self.work / name / "conversation", duration=round(end + tail, 2),
                        user=tuple(specs), expect=exps, echo=echo, seed=self.seed, noise=self.noise)

    def question(self, k: int, speaker: Speaker, shape: str) -> np.ndarray:
        return self.say(turn_sentences(self.text, self.seed, shape, k)[0], speaker)

    # --- shapes -------------------------------------------------------------------------------

    def pause_handling(self, name: str, k: int, speaker: Speaker) -> Conversation:
        a, b = turn_sentences(self.text, self.seed, "pause_handling", k)
        audio = self.joined([a, b], [float(self.rng.uniform(0.5, 1.0))], speaker)
        return Conversation("pause_handling", self.scenario(name, [(audio, 0.5, Role.TURN)], 5.0,
                                                            [Check.FALSE_STARTS]))

    def smooth_turn_taking(self, name: str, k: int, speaker: Speaker) -> Conversation:
        clips = [(self.question(k, speaker, "smooth_turn_taking"), 0.5, Role.TURN)]
        return Conversation("smooth_turn_taking", self.scenario(name, clips, 5.0, [Check.FALSE_STARTS]))

    def user_interruption(self, name: str, k: int, speaker: Speaker) -> Conversation:
        cut = self.say(self.text.barge_ins[(self.seed + k) % len(self.text.barge_ins)], speaker)
        after = After(Trigger.SPEAKING_STARTED, 1, round(float(self.rng.uniform(0.5, 1.5)), 2))
        clips = [(self.question(k, speaker, "user_interruption"), 0.5, Role.TURN), (cut, after, Role.BARGE_IN)]
        return Conversation("user_interruption", self.scenario(name, clips, 5.0, [Check.RESUMES_OVER_BARGE_IN]))

    def hesitant_barge_in(self, name: str, k: int, speaker: Speaker) -> Conversation:
        pieces = list(self.rng.choice(self.hesitations, size=int(self.rng.integers(1, 3)), replace=False))
        main = self.text.barge_ins[(self.seed + k + 1) % len(self.text.barge_ins)]
        gaps = [float(self.rng.uniform(0.2, 0.6)) for _ in pieces]
        audio = self.joined([*map(str, pieces), main], gaps, speaker)
        after = After(Trigger.SPEAKING_STARTED, 1, round(float(self.rng.uniform(0.6, 1.5)), 2))
        clips = [(self.question(k, speaker, "hesitant_barge_in"), 0.5, Role.TURN), (audio, after, Role.BARGE_IN)]
        return Conversation("hesitant_barge_in", self.scenario(name, clips, 5.0, [Check.RESUMES_OVER_BARGE_IN]))

    def backchannel(self, name: str, k: int, speaker: Speaker) -> Conversation:
        picks = self.rng.choice(self.backchannels, size=2, replace=False)
        clips: list[tuple[np.ndarray, float | After, Role]] = [(self.question(k, speaker, "backchannel"), 0.5,
                                                                Role.TURN)]
        pieces = [(self.say(str(picks[0]), speaker), Role.BACKCHANNEL), (self.say(str(picks[1]), speaker),
                  Role.BACKCHANNEL), (cough(self.rng), Role.NOISE)]
        # One after another, as one listener makes them: 0.6-1.5 s into the reply, then 0.4-1.2 s
        # after the previous one ends (drawn independently, two pieces could overlap: no one person
        # says "yeah" over their own "mm-hmm").
        delay = float(self.rng.uniform(0.6, 1.5))
        for j in self.rng.permutation(3):
            audio, role = pieces[j]
            clips.append((audio, After(Trigger.SPEAKING_STARTED, 1, round(delay, 2)), role))
            delay += audio.size / SAMPLE_RATE + float(self.rng.uniform(0.4, 1.2))
        scenario = self.scenario(name, clips, 3.0, [], echo=EchoSpec(gain_db=-20.0, delay_ms=60.0))
        # The three pieces all wait for the same reply: the session needs the reply once, not thrice.
        scenario = _shorten(scenario, clips)
        return Conversation("backchannel", scenario)

    def long_pause(self, name: str, k: int, speaker: Speaker) -> Conversation:
        parts = turn_sentences(self.text, self.seed, "long_pause", k)
        audio = self.joined(list(parts), [float(self.rng.uniform(0.3, 1.5)) for _ in range(2)], speaker)
        return Conversation("long_pause", self.scenario(name, [(audio, 0.5, Role.TURN)], 5.0, [Check.FALSE_STARTS]))

    def monologue(self, name: str, k: int, speaker: Speaker) -> Conversation:
        clips: list[tuple[np.ndarray, float | After, Role]] = []
        at = 0.5
        for text in turn_sentences(self.text, self.seed, "monologue", k):
            audio = self.say(text, speaker)
            clips.append((audio, round(at, 3), Role.MONOLOGUE))
            at += audio.size / SAMPLE_RATE + 0.1 + 0.35  # 0.05 s pads each side: 0.45 s of silence
        return Conversation("monologue", self.scenario(name, clips, 5.0, [Check.FALSE_STARTS]))


def _shorten(scenario: Scenario, clips: list[tuple[np.ndarray, float | After, Role]]) -> Scenario:
    first = clips[0][0].size / SAMPLE_RATE + 0.6
    last = max(c[1].delay + c[0].size / SAMPLE_RATE for c in clips[1:] if isinstance(c[1], After))
    return replace(scenario, duration=round(first + 2.5 + last + 4.0, 2))
