"""Synthetic two-party dialogues with per-step targets, generated on the fly for training.

The script is simulated step by step, the way the engine will run it. The user's turns are plain
questions or statements, comma-ended fragments or fragments that sound final followed by 0.3-1.5 s
pauses, monologues (final-sounding sentences 0.3-0.55 s apart), or turns that trail off; over the
reply come barge-ins, hesitant barge-ins (short "wait" / "stop" pieces 0.2-0.6 s apart before
the main utterance), backchannels and coughs. An oracle that sees the ground truth labels each
step's first token:

- listening: THINK while the user holds the floor; SHIFT once the turn's last clip has ended its
  lag ago: 0.32 s after a question (its rising end predicts the end of the turn), 0.64 s after a
  statement (past the ~0.45 s gaps of a monologue), 1.7 s after a turn that trails off on a
  comma (past any mid-turn pause); never after a hesitation piece alone;
- speaking: the reply goes on, without even a held beat, over backchannels and coughs; any other
  user speech over it, a stop word ("wait", "no", "stop", "hold on": as short as a backchannel,
  told apart by what is said) included, makes it hold (THINK, a silent beat) at once. It BREAKs
  once a barge-in (or the user's own turn going on) has lasted 0.64 s, or at once when a second
  user piece starts while the model still holds: after a hold, more speech is a barge-in, never
  a cue to resume. A hold resumes only after 0.72 s of silence, longer than the 0.2-0.6 s gaps
  of a hesitant barge-in; a single stop word does not BREAK by itself, so a backchannel heard as
  one costs a pause, not the reply.

The label and the action taken differ on purpose now and then: a SHIFT or BREAK is sometimes
acted on late (the model must still say it a step later, not only at the first moment), and a
few turns are taken too early (the model must learn to yield when the user goes on). The
executed units are played into the reference track from the next step on (as the engine plays
them) and leak into the microphone as echo (-10..-30 dB, 20-150 ms); noise is added last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio_io.scripted import noise_signal
from duplex.backbones.tiny_fd import vocab as V
from duplex.backbones.tiny_fd.speech import Pool, cough

SR = 16_000
STEP = 2_560
UNIT = 640


@dataclass(slots=True)
class Clip:
    start: int
    audio: np.ndarray
    role: str  # fragment | final | trail | barge | hesitation | backchannel
    lag: float = 0.0  # silence after it before SHIFT, for the roles that end a turn
    answered: bool = False

    @property
    def end(self) -> int:
        return self.start + self.audio.size


ANSWERABLE = ("final", "barge", "trail")
BARGE_LAG = 0.56  # silence after a barge-in utterance before SHIFT: its comma pauses are no cue
OWN_TURN = ("fragment", "final", "trail", "barge")  # overlapping speech that BREAKs after break_lag


@dataclass(slots=True)
class Dialogue:
    mic: np.ndarray  # (steps * STEP,)
    ref: np.ndarray  # what the model was playing, same timeline
    tokens: np.ndarray  # (steps, 4) int64: what was executed (the context)
    decision: np.ndarray  # (steps,) vocab.LISTEN_DECISION | SPEAK_DECISION | FORCED
    target: np.ndarray  # (steps,) the oracle's label for the step's first token (CONT for "keep speaking")
    weight: np.ndarray  # (steps,) loss weight of the first token
    cont: np.ndarray  # (steps,) id of the unit that would continue the reply (SPEAK decisions), else 0


@dataclass(frozen=True, slots=True)
class Timing:
    shift_lag: float = 0.32  # silence after a question before SHIFT
    statement_lag: float = 0.64  # silence after a statement before SHIFT (past monologue gaps)
    hold_lag: float = 0.06  # user speech over the reply before holding
    break_lag: float = 0.64  # overlapping barge-in speech before BREAK
    resume_lag: float = 0.72  # silence after an overlap before a held reply resumes (past hesitation gaps)
    trail_lag: float = 1.7  # a turn that trails off on a comma: silence before SHIFT (past any mid-turn pause)
    trail_p: float = 0.08  # share of turns that trail off so
    pause_max: float = 1.5  # longest mid-turn pause
    late_p: float = 0.3  # a labelled SHIFT / BREAK acted on a step late
    early_p: float = 0.03  # per silent mid-turn step: the turn taken too early (to learn yielding)


class Synth:
    def __init__(self, pool: Pool, frames: np.ndarray, replies: list[tuple[int, int]], timing: Timing = Timing()):
        self.pool = pool
        self.frames = frames  # (n_units, UNIT) float32
        self.replies = replies
        self.t = timing

    def _turn(self, rng: np.random.Generator, voice: dict, place, start: int) -> None:  # noqa: ANN001
        t, r = start, rng.random()
        gap = lambda lo, hi: int(rng.uniform(lo, hi) * SR)  # noqa: E731
        if r < 0.2:  # comma-ended fragments and mid-turn pauses
            for _ in range(int(rng.integers(1, 3))):
                t = place(t, _pick(rng, voice["fragment"]), "fragment") + gap(0.3, self.t.pause_max)
        elif r < 0.32:  # a fragment that sounds final, then a pause
            t = place(t, _pick(rng, voice["flat"]), "fragment") + gap(0.3, self.t.pause_max)
        elif r < 0.52:  # a monologue: sentences with short gaps
            for _ in range(int(rng.integers(1, 4))):
                t = place(t, _pick(rng, voice["sentence"]), "fragment") + gap(0.3, 0.55)
        if r >= 0.2 and rng.random() < self.t.trail_p:  # trails off: no final sentence, the silence decides
            place(t, _pick(rng, voice["fragment"]), "trail", self.t.trail_lag)
        elif rng.random() < 0.6:
            place(t, _pick(rng, voice["question"]), "final", self.t.shift_lag)
        else:
            place(t, _pick(rng, voice["statement"]), "final", self.t.statement_lag)

    def dialogue(self, steps: int, rng: np.random.Generator, *, crop: int | None = None) -> Dialogue:
        total = steps + (int(rng.integers(0, 48)) if crop else 0)
        n = total * STEP
        voice = self.pool.voices[int(rng.integers(len(self.pool.voices)))]
        level = 10 ** (rng.uniform(-16, 0) / 20)
        clips: list[Clip] = []

        def place(start: int, audio: np.ndarray, role: str, lag: float = 0.0) -> int:
            gain = level * 10 ** (rng.uniform(-2, 2) / 20)
            clips.append(Clip(start, (audio * gain).astype(np.float32), role, lag))
            return start + audio.size

        first = rng.uniform(3.0, 9.0) if rng.random() < 0.1 else rng.uniform(0.1, 1.5)
        self._turn(rng, voice, place, int(first * SR))
        floor = V.Floor(self.replies)
        ref = np.zeros(n + STEP, dtype=np.float32)
        tokens = np.zeros((total, 4), dtype=np.int64)
        decision = np.zeros(total, dtype=np.int64)
        target = np.zeros(total, dtype=np.int64)
        cont = np.zeros(total, dtype=np.int64)
        t, sr = self.t, SR
        held: set[int] | None = None  # ids of the clips the reply is holding for
        reply_at = 0  # where the current reply began: only speech from then on overlaps it
        for k in range(total):
            d = (k + 1) * STEP
            decision[k] = kind = floor.decision()
            reply_start = None
            if kind == V.LISTEN_DECISION:
                held = None
                started = [c for c in clips if c.start < d]
                last = max(started, key=lambda c: c.start) if started else None
                due = (last is not None and last.role in ANSWERABLE and not last.answered
                       and d - last.end >= last.lag * sr)
                target[k] = V.SHIFT if due else V.THINK
                silent = last is not None and d - last.end >= 0.16 * sr and not last.answered
                act = (due and rng.random() >= t.late_p) or (
                    not due and silent and last.role == "fragment" and rng.random() < t.early_p)
                if act:
                    if last is not None and due:
                        last.answered = True
                    first_tok = V.SHIFT
                    reply_at = d
                    reply = self.replies[int(rng.integers(len(self.replies)))]
                    reply_start = V.unit_id(reply[0])
                    if due:
                        self._plan_overlaps(rng, voice, place, d, reply[1] * UNIT)
                else:
                    first_tok = V.THINK
            elif kind == V.SPEAK_DECISION:
                cont[k] = V.unit_id(floor.cursor)
                active = [c for c in clips if c.role != "backchannel" and c.end > reply_at
                          and c.start <= d - t.hold_lag * sr and d < c.end + t.resume_lag * sr]
                second = held is not None and any(id(c) not in held for c in active)
                stop = any(c.role in OWN_TURN and d - c.start >= t.break_lag * sr for c in active)
                if stop or second:
                    target[k] = V.BREAK
                    first_tok = V.BREAK if rng.random() >= t.late_p else V.THINK
                elif active:
                    target[k] = first_tok = V.THINK
                else:
                    target[k] = V.CONT
                    first_tok = V.unit_id(floor.cursor)
                if first_tok == V.THINK and held is None:
                    held = {id(c) for c in active}
                elif first_tok != V.THINK:
                    held = None
            else:
                target[k] = first_tok = V.EOT
            was_speaking = floor.speaking
            step_tokens = floor.complete(first_tok, reply_start)
            tokens[k] = step_tokens
            units = [u - V.UNIT0 for u in step_tokens if u >= V.UNIT0]
            for j, u in enumerate(units):
                ref[d + j * UNIT: d + (j + 1) * UNIT] = self.frames[u]
            if was_speaking and not floor.speaking and first_tok != V.BREAK and not any(c.start >= d for c in clips):
                self._turn(rng, voice, place, d + int(rng.uniform(0.2, 2.0) * sr))
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
        category = [int(x) + 20 * int(dk) for x, dk in zip(target, decision, strict=True)]
        for k in range(1, total):
            if category[k] != category[k - 1]:
                weight[k] = 3.0
        weight[decision == V.FORCED] = 0.0
        a = int(rng.integers(0, total - steps + 1)) if crop else 0
        s = slice(a * STEP, (a + steps) * STEP)
        w = slice(a, a + steps)
        return Dialogue(mic[s].copy(), ref[s].copy(), tokens[w], decision[w], target[w], weight[w], cont[w])

    def _plan_overlaps(self, rng: np.random.Generator, voice: dict, place, start: int, length: int) -> None:  # noqa: ANN001
        r = rng.random()
        at = start + int(rng.uniform(0.15, 0.8) * length)
        if r < 0.22:  # a plain barge-in
            clip = _pick(rng, voice["barge"] if rng.random() < 0.6 else voice["question"])
            place(at, clip, "barge", BARGE_LAG)
        elif r < 0.45:  # hesitant: stop words 0.2-0.6 s apart, then (mostly) the main utterance
            for _ in range(int(rng.integers(1, 3))):
                at = place(at, _pick(rng, voice["hesitation"]), "hesitation") + int(rng.uniform(0.2, 0.6) * SR)
            if rng.random() < 0.9:
                main = voice["barge"] if rng.random() < 0.6 else voice["question"]
                place(at, _pick(rng, main), "barge", BARGE_LAG)
        elif r < 0.8:  # backchannels and coughs: the reply goes on over them
            for _ in range(int(rng.integers(1, 3))):
                clip = cough(rng) if rng.random() < 0.25 else _pick(rng, voice["backchannel"])
                at = place(at, clip, "backchannel") + int(rng.uniform(1.2, 2.2) * SR)


def _pick(rng: np.random.Generator, items: list[np.ndarray]) -> np.ndarray:
    return items[int(rng.integers(len(items)))]
