"""The `policy` backbone: a VAD turn policy that makes any responder full-duplex.

It emits the same token stream a native full-duplex model would (THINK while the user holds the
floor, SHIFT after the user's turn ends, BREAK when the user cuts in, EOT at the end of a reply),
so everything downstream is shared. Its replies come from a responder (`echo`: the user's last
utterance; `wav`: a fixed file) and are spoken through a frame-bank vocoder.

Overlap handling: user speech over the reply first *pauses* it (the model yields at once); if the
overlap outlasts `backchannel_max_s` it is a barge-in (BREAK), otherwise it was a backchannel and
the reply resumes where it paused. While the model speaks, the microphone must be louder than
the model's own recent output plus `echo_gate_db` to count as the user, so a speaker leaking
into the microphone does not interrupt the model.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio_io.clip import load_clip
from audio_io.format import SAMPLE_RATE, STEP_SECONDS, rms
from audio_io.vad import Vad
from duplex.audio_setup import vad_from_config
from duplex.backbones.base import TOKENS_PER_STEP, Model
from duplex.backbones.framebank import FrameBank, FrameBankVocoder
from duplex.backbones.registry import Resolver
from duplex.config import PolicyConfig
from duplex.errors import ConfigError
from duplex.tokens import BREAK, EOT, SHIFT, THINK, Token, audio


class Floor(enum.Enum):
    LISTEN = "listen"
    REPLY = "reply"
    PAUSED = "paused"  # the user overlaps the reply; not yet known if backchannel or barge-in


@dataclass(slots=True)
class Utterance:
    """The user's current utterance: its audio and how much of it was speech."""

    chunks: list[np.ndarray] = field(default_factory=list)
    speech: int = 0  # steps of speech so far
    silence: int = 0  # steps of silence since the last speech

    def add(self, chunk: np.ndarray, speech: bool) -> None:
        if speech or self.chunks:
            self.chunks.append(chunk.copy())
        if speech:
            self.speech += 1
            self.silence = 0
        elif self.chunks:
            self.silence += 1

    def audio(self) -> np.ndarray:
        """The utterance without its trailing silence."""
        keep = len(self.chunks) - self.silence
        return np.concatenate(self.chunks[: max(keep, 1)]) if self.chunks else np.zeros(0, np.float32)


@dataclass(slots=True)
class TurnRecord:
    """One model turn in the conversation history: units emitted and units heard."""

    units: int
    heard: int


class Responder:
    """Decides what the model says, given the user's utterance."""

    def __init__(self, cfg: PolicyConfig, resolve: Resolver = Path) -> None:
        self.kind = cfg.responder
        self.max_samples = int(cfg.max_reply_s * SAMPLE_RATE)
        self._fixed: np.ndarray | None = None
        if self.kind == "wav":
            if not cfg.reply_wav:
                raise ConfigError("policy.reply_wav must name a WAV file when policy.responder = wav")
            self._fixed = load_clip(resolve(cfg.reply_wav), what="policy.reply_wav")

    def reply(self, utterance: np.ndarray) -> np.ndarray:
        audio_ = self._fixed if self._fixed is not None else utterance
        return audio_[: self.max_samples]


class PolicyBackbone:
    """Turn-taking from VAD; speech from a responder; tokens like a native duplex model."""

    def __init__(self, cfg: PolicyConfig, *, vad: Vad, responder: Responder | None = None,
                 bank: FrameBank | None = None) -> None:
        """Without a responder and a bank, a subclass supplies the speech (`_take_turn`, `_next_units`)."""
        self.cfg = cfg
        self.min_speech = max(1, steps(cfg.min_speech_s))
        self.min_silence = steps(cfg.min_silence_s)
        self.barge_in = steps(cfg.barge_in_s)
        self.backchannel_max = steps(cfg.backchannel_max_s)
        self.resume_after = steps(cfg.resume_after_s)
        self._min_level = 10 ** (cfg.min_level_db / 20)
        self.vad = vad
        self.responder = responder
        self.bank = bank
        self.history: list[TurnRecord] = []
        self._recent_output: deque[float] = deque(maxlen=3)  # model output RMS, last steps
        self._requests: deque[np.ndarray] = deque()  # say() audio waiting for a free floor
        self.reset()

    def reset(self) -> None:
        self.floor = Floor.LISTEN
        self.utterance = Utterance()
        self._reply: list[int] = []
        self._cursor = 0
        self._overlap = Utterance()
        self.vad.reset()
        self.history.clear()
        self._recent_output.clear()

    def heard(self, units: int) -> None:
        if self.history:
            self.history[-1].heard = min(units, self.history[-1].units)

    def say(self, audio: np.ndarray) -> None:
        """Speak `audio` unprompted at the next step where nobody holds the floor (the `Say` command;
        this model is loaded with `can_say`). Runs on the model's thread, between two steps.
        """
        assert self.responder is not None
        self._requests.append(np.asarray(audio, dtype=np.float32)[: self.responder.max_samples])

    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        speech = self._is_user_speech(chunk)
        if self.floor is Floor.LISTEN and self._requests and not speech and not self.utterance.chunks:
            return self._take_turn(self._requests.popleft())
        if self.floor is Floor.LISTEN:
            return self._listen(chunk, speech)
        return self._overlapped(chunk, speech)

    # ---- per floor ------------------------------------------------------------------------

    def _listen(self, chunk: np.ndarray, speech: bool) -> Sequence[Token]:
        self._recent_output.append(0.0)
        self.utterance.add(chunk, speech)
        u = self.utterance
        if u.speech >= self.min_speech and u.silence >= self.min_silence:
            return self._take_turn()
        if u.chunks and u.silence >= self.min_silence:
            self.utterance = Utterance()  # a blip too short to answer
        return (THINK,) * TOKENS_PER_STEP

    def _overlapped(self, chunk: np.ndarray, speech: bool) -> Sequence[Token]:
        """REPLY or PAUSED: watch for the user while speaking."""
        self._overlap.add(chunk, speech)
        o = self._overlap
        if not o.chunks:
            return self._speak()
        if o.silence >= self.resume_after or (o.speech < self.barge_in and not speech):
            self._overlap = Utterance()  # a backchannel (or a blip): carry on
            self.floor = Floor.REPLY
            return self._speak()
        if o.speech < self.barge_in:
            return self._speak()
        if o.speech > self.backchannel_max:
            return self._barge_in()
        self.floor = Floor.PAUSED
        self._recent_output.append(0.0)
        return (THINK,) * TOKENS_PER_STEP

    def _take_turn(self, reply: np.ndarray | None = None) -> Sequence[Token]:
        if reply is None:
            assert self.responder is not None
            reply = self.responder.reply(self.utterance.audio())
        self.utterance = Utterance()
        self._overlap = Utterance()
        assert self.bank is not None
        self._reply = self.bank.add(reply) if reply.size else []
        self._cursor = 0
        self.history.append(TurnRecord(units=len(self._reply), heard=len(self._reply)))
        self.floor = Floor.REPLY
        return (SHIFT, *self._next_units(TOKENS_PER_STEP - 1))

    def _barge_in(self) -> Sequence[Token]:
        self.utterance = self._overlap  # what the user said over the model starts their turn
        self._overlap = Utterance()
        self._reply, self._cursor = [], 0
        self.floor = Floor.LISTEN
        self._recent_output.append(0.0)
        return (BREAK,) + (THINK,) * (TOKENS_PER_STEP - 1)

    def _speak(self) -> Sequence[Token]:
        tokens = list(self._next_units(TOKENS_PER_STEP))
        if len(tokens) < TOKENS_PER_STEP:
            tokens.append(EOT)
            self.floor = Floor.LISTEN
            self._reply, self._cursor = [], 0
            tokens += [THINK] * (TOKENS_PER_STEP - len(tokens))
        return tokens

    def _next_units(self, n: int) -> list[Token]:
        units = self._reply[self._cursor : self._cursor + n]
        self._cursor += len(units)
        assert self.bank is not None
        level = max((rms(self.bank.frame(u)) for u in units), default=0.0)
        self._recent_output.append(level)
        return [audio(u) for u in units]

    def _is_user_speech(self, chunk: np.ndarray) -> bool:
        level = rms(chunk)
        speech = level > self._min_level and self.vad.speech_prob(chunk) >= self.cfg.speech_threshold
        if speech and self.floor is not Floor.LISTEN:
            reference = max(self._recent_output, default=0.0)
            speech = level > reference * 10 ** (self.cfg.echo_gate_db / 20)
        return speech


def steps(seconds: float) -> int:
    """Whole 160 ms steps needed to cover `seconds` (thresholds are checked once a step)."""
    return math.ceil(seconds / STEP_SECONDS - 1e-6)


def load_policy(cfg: PolicyConfig, *, resolve: Resolver = Path) -> Model:
    """The VAD policy backbone from the `policy:` section (`reply_wav` resolved against the config file)."""
    bank = FrameBank()
    backbone = PolicyBackbone(cfg, vad=vad_from_config(cfg),
                              responder=Responder(cfg, resolve), bank=bank)
    return Model(backbone=backbone, vocoder=FrameBankVocoder(bank), name=f"policy/{cfg.responder}/{cfg.vad}",
                 can_say=True)

