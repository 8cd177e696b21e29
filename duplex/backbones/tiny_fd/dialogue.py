"""Synthetic two-party dialogues with per-step targets, generated on the fly for training.

The script is simulated step by step, the way the engine will run it: the user's clips are placed
on the timeline (turns of comma-ended fragments with 0.3-1.0 s pauses and a final sentence,
barge-ins of 1 s or more, backchannels under 0.6 s), and an oracle that sees the ground truth
decides each step's first token exactly as tiny-fd should: THINK while the user holds the floor,
SHIFT once the user's final sentence has ended `shift_lag` ago, the next unit while speaking,
THINK (hold, a silent beat) as soon as user speech overlaps the reply, BREAK once an overlapping
barge-in has lasted `break_lag`, resume after a backchannel. The oracle's units are played into
the reference track from the next step on (as the engine plays them), and leak into the
microphone as echo (-10..-30 dB, 20-150 ms); background noise is added last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio_io.scripted import noise_signal
from duplex.backbones.tiny_fd import vocab as V
from duplex.backbones.tiny_fd.speech import Pool

SR = 16_000
STEP = 2_560
UNIT = 640


@dataclass(slots=True)
class Clip:
    start: int
    audio: np.ndarray
    role: str  # fragment | final | barge | backchannel
    answered: bool = False

    @property
    def end(self) -> int:
        return self.start + self.audio.size


@dataclass(slots=True)
class Dialogue:
    mic: np.ndarray  # (steps * STEP,)
    ref: np.ndarray  # what the model was playing, same timeline
    tokens: np.ndarray  # (steps, 4) int64
    decision: np.ndarray  # (steps,) vocab.LISTEN_DECISION | SPEAK_DECISION | FORCED
    weight: np.ndarray  # (steps,) loss weight of the first token
    cont: np.ndarray  # (steps,) id of the unit that would continue the reply (SPEAK decisions), else 0


@dataclass(frozen=True, slots=True)
class Timing:
    shift_lag: float = 0.32  # silence after a final sentence before SHIFT
    hold_lag: float = 0.06  # user speech over the reply before holding
    break_lag: float = 0.64  # overlapping barge-in speech before BREAK
    resume_lag: float = 0.24  # silence after an overlap before the reply resumes
    trail_lag: float = 1.2  # a turn that trails off on a comma: silence before SHIFT (past any mid-turn pause)
    trail_p: float = 0.15  # share of turns that trail off so


class Synth:
    def __init__(self, pool: Pool, frames: np.ndarray, replies: list[tuple[int, int]], timing: Timing = Timing()):
        self.pool = pool
        self.frames = frames  # (n_units, UNIT) float32
        self.replies = replies
        self.t = timing

    def dialogue(self, steps: int, rng: np.random.Generator, *, crop: int | None = None) -> Dialogue:
        total = steps + (int(rng.integers(0, 48)) if crop else 0)
        n = total * STEP
        voice = self.pool.voices[int(rng.integers(len(self.pool.voices)))]
        level = 10 ** (rng.uniform(-16, 0) / 20)
        clips: list[Clip] = []

        def place(start: int, audio: np.ndarray, role: str) -> int:
            gain = level * 10 ** (rng.uniform(-2, 2) / 20)
            clips.append(Clip(start, (audio * gain).astype(np.float32), role))
            return start + audio.size

        def turn(start: int) -> None:
            t = start
            for _ in range(int(rng.choice([0, 0, 1, 1, 2]))):
                t = place(t, _pick(rng, voice["fragment"]), "fragment") + int(rng.uniform(0.3, 1.0) * SR)
            if rng.random() < self.t.trail_p:  # trails off: no final sentence, the silence decides
                place(t, _pick(rng, voice["fragment"]), "trail")
            else:
                place(t, _pick(rng, voice["final"]), "final")

        first = rng.uniform(3.0, 9.0) if rng.random() < 0.1 else rng.uniform(0.1, 1.5)
        turn(int(first * SR))
        floor = V.Floor(self.replies)
        ref = np.zeros(n + STEP, dtype=np.float32)
        tokens = np.zeros((total, 4), dtype=np.int64)
        decision = np.zeros(total, dtype=np.int64)
        cont = np.zeros(total, dtype=np.int64)
        sr = SR
        for k in range(total):
            d = (k + 1) * STEP
            decision[k] = kind = floor.decision()
            reply_start = None
            if kind == V.LISTEN_DECISION:
                started = [c for c in clips if c.start < d]
                last = max(started, key=lambda c: c.start) if started else None
                lag = self.t.trail_lag if last is not None and last.role == "trail" else self.t.shift_lag
                if (last is not None and last.role in ("final", "barge", "trail") and not last.answered
                        and d - last.end >= lag * sr):
                    last.answered = True
                    first_tok = V.SHIFT
                    reply = self.replies[int(rng.integers(len(self.replies)))]
                    reply_start = V.unit_id(reply[0])
                    self._plan_overlaps(rng, voice, place, d, reply[1] * UNIT)
                else:
                    first_tok = V.THINK
            elif kind == V.SPEAK_DECISION:
                cont[k] = V.unit_id(floor.cursor)
                active = [c for c in clips if c.start <= d - self.t.hold_lag * sr
                          and d < c.end + self.t.resume_lag * sr]
                if any(c.role == "barge" and d - c.start >= self.t.break_lag * sr for c in active):
                    first_tok = V.BREAK
                elif active:
                    first_tok = V.THINK
                else:
                    first_tok = V.unit_id(floor.cursor)
            else:
                first_tok = V.EOT
            was_speaking = floor.speaking
            step_tokens = floor.complete(first_tok, reply_start)
            tokens[k] = step_tokens
            units = [t - V.UNIT0 for t in step_tokens if t >= V.UNIT0]
            for j, u in enumerate(units):
                ref[d + j * UNIT: d + (j + 1) * UNIT] = self.frames[u]
            if was_speaking and not floor.speaking and first_tok != V.BREAK and not any(c.start >= d for c in clips):
                turn(d + int(rng.uniform(0.2, 2.0) * sr))
        mic = np.zeros(n + STEP, dtype=np.float32)
        for c in clips:
            if c.start < n:
                seg = c.audio[: n + STEP - c.start]
                mic[c.start: c.start + seg.size] += seg
        if rng.random() < 0.85:
            delay = int(rng.uniform(0.02, 0.15) * sr)
            mic[delay:] += 10 ** (rng.uniform(-30, -10) / 20) * ref[: ref.size - delay]
        if rng.random() < 0.6:
            kind_ = "pink" if rng.random() < 0.5 else "white"
            mic += noise_signal(kind_, rng.uniform(-62, -38), mic.size, int(rng.integers(1 << 30)))
        mic = np.clip(mic, -1.0, 1.0)
        weight = np.ones(total, dtype=np.float32)
        category = [_category(decision[k], tokens[k, 0]) for k in range(total)]
        for k in range(1, total):
            if category[k] != category[k - 1]:
                weight[k] = 3.0
        weight[decision == V.FORCED] = 0.0
        a = int(rng.integers(0, total - steps + 1)) if crop else 0
        s = slice(a * STEP, (a + steps) * STEP)
        return Dialogue(mic[s].copy(), ref[s].copy(), tokens[a: a + steps], decision[a: a + steps],
                        weight[a: a + steps], cont[a: a + steps])

    def _plan_overlaps(self, rng: np.random.Generator, voice: dict, place, start: int, length: int) -> None:
        r = rng.random()
        if r < 0.4:
            clip = _pick(rng, voice["barge"] if rng.random() < 0.6 else voice["final"])
            place(start + int(rng.uniform(0.15, 0.9) * length), clip, "barge")
        elif r < 0.75:
            at = start + int(rng.uniform(0.2, 0.5) * length)
            for _ in range(int(rng.integers(1, 3))):
                clip = _pick(rng, voice["backchannel"])
                place(at, clip, "backchannel")
                at += clip.size + int(rng.uniform(0.9, 1.6) * SR)


def _pick(rng: np.random.Generator, items: list[np.ndarray]) -> np.ndarray:
    return items[int(rng.integers(len(items)))]


def _category(decision: int, first: int) -> int:
    if first >= V.UNIT0:
        return 10
    return first + 20 * decision
