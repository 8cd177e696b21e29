"""The `policy` backbone: a floor policy plus a responder make any reply full-duplex.

It emits the same token stream a native full-duplex model would (THINK while the user holds the
floor, SHIFT after the user's turn ends, BREAK when the user cuts in, EOT at the end of a reply),
so everything downstream is shared. Who holds the floor is the floor policy's call (`policy.floor`:
the VAD rules, or tiny-fd's learned decisions; see `duplex.backbones.floor`); the replies come from
a responder (`echo`: the user's last utterance; `wav`: a fixed file) spoken through a frame-bank
vocoder. It can also speak given audio unprompted (`say`), at the next step with a free floor.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audio_io.clip import load_clip
from audio_io.format import SAMPLE_RATE, rms
from duplex.backbones.base import Model
from duplex.backbones.floor import FloorPolicy, Move, floor_kind, make_floor, tokens_for
from duplex.backbones.framebank import FrameBank, FrameBankVocoder
from duplex.backbones.registry import Resolver
from duplex.config import PolicyConfig
from duplex.errors import ConfigError
from duplex.tokens import Token

if TYPE_CHECKING:
    from duplex.backbones.tiny_fd.config import TinyFdConfig


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
    """A floor policy for the timing; a responder's audio, as frame-bank units, for the speech."""

    def __init__(self, floor: FloorPolicy, responder: Responder, bank: FrameBank) -> None:
        self.floor = floor
        self.responder = responder
        self.bank = bank
        self.history: list[TurnRecord] = []
        self._requests: deque[np.ndarray] = deque()  # say() audio waiting for a free floor
        self.reset()

    def reset(self) -> None:
        self.floor.reset()
        self._reply: list[int] = []
        self._cursor = 0
        self.history.clear()

    def heard(self, units: int) -> None:
        if self.history:
            self.history[-1].heard = min(units, self.history[-1].units)
        self.floor.cut()  # after the floor's own BREAK a no-op; after a cut from outside: stop replying

    def say(self, audio: np.ndarray) -> None:
        """Speak `audio` unprompted at the next step where nobody holds the floor (the `Say` command;
        this model is loaded with `can_say`). Runs on the model's thread, between two steps.
        """
        self._requests.append(np.asarray(audio, dtype=np.float32)[: self.responder.max_samples])

    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        move = self.floor.decide(chunk, offer=bool(self._requests))
        if move is Move.TAKE or move is Move.OFFER:
            reply = self._requests.popleft() if move is Move.OFFER else self.responder.reply(self.floor.turn_audio())
            self._reply = self.bank.add(reply) if reply.size else []
            self._cursor = 0
            self.history.append(TurnRecord(units=len(self._reply), heard=len(self._reply)))
        elif move is Move.BREAK:
            self._reply, self._cursor = [], 0
        self._emitted: list[int] = []
        tokens, ended = tokens_for(move, self._next_units)
        if ended:
            self._reply, self._cursor = [], 0
            self.floor.ended()
        out = np.concatenate([self.bank.frame(u) for u in self._emitted]) if self._emitted else None
        self.floor.played(max((rms(self.bank.frame(u)) for u in self._emitted), default=0.0), out)
        return tokens

    def _next_units(self, n: int) -> list[int]:
        units = self._reply[self._cursor : self._cursor + n]
        self._cursor += len(units)
        self._emitted = units
        return units


def load_policy(cfg: PolicyConfig, tiny_fd: TinyFdConfig | None = None, *, resolve: Resolver = Path) -> Model:
    """The policy backbone: `cfg.floor` times the turns (tiny-fd's settings from `tiny_fd`); paths such
    as `reply_wav` resolved against the config file."""
    responder = Responder(cfg, resolve)  # a bad reply_wav is refused before tiny-fd is loaded
    floor = make_floor(cfg, tiny_fd=tiny_fd, resolve=resolve)
    bank = FrameBank()
    backbone = PolicyBackbone(floor, responder, bank)
    kind = floor_kind(cfg)
    name = f"policy/{cfg.responder}/{cfg.vad if kind == 'vad' else kind}"
    return Model(backbone=backbone, vocoder=FrameBankVocoder(bank), name=name, can_say=True)
