"""Floor policies: who holds the floor, decided once per step, for backbones that cannot time themselves.

A floor policy hears each 160 ms user chunk and answers with a `Move`: keep listening, take the
turn, speak on, hold (a silent beat while the user overlaps), or break off for a barge-in. The
backbone that owns it (`policy`, covo's turn mode) supplies the speech and turns the move into the
step's four tokens with `tokens_for`, so the turn logic is written once and composed, not inherited.

    vad.py      the VAD rules (end of turn after silence, longer after a fragment whose pitch does not
                fall; holds, backchannels and barge-ins by overlap length and pieces)
    tinyfd.py   tiny-fd's learned decisions, its own speech discarded
    pitch.py    the falling-pitch cue the VAD rules use
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from duplex.backbones.base import TOKENS_PER_STEP
from duplex.errors import ConfigError
from duplex.tokens import BREAK, EOT, SHIFT, THINK, Token, audio

if TYPE_CHECKING:
    from duplex.backbones.tiny_fd.config import TinyFdConfig
    from duplex.config import PolicyConfig


class Move(enum.Enum):
    WAIT = "wait"  # listening: the user holds the floor, or nobody does
    TAKE = "take"  # the user's turn is over: answer `turn_audio()`
    OFFER = "offer"  # the floor is free and a say() request was offered: play it
    SPEAK = "speak"  # go on with the reply
    HOLD = "hold"  # the user overlaps the reply: a silent beat, the reply kept for a resume
    BREAK = "break"  # a barge-in: the reply is dropped


class FloorPolicy(Protocol):
    @property
    def speaking(self) -> bool:
        """The model holds the floor (speaking or holding its reply)."""
        ...

    def decide(self, chunk: np.ndarray, *, offer: bool = False) -> Move:
        """This step's move; `offer`: a say() request waits for a free floor."""
        ...

    def turn_audio(self) -> np.ndarray:
        """The user's utterance that the last TAKE answers."""
        ...

    def played(self, level: float, audio: np.ndarray | None = None) -> None:
        """What the model emitted this step: its RMS level and, where known, the audio itself."""
        ...

    def ended(self) -> None:
        """The reply ran out (EOT): the floor is free again."""
        ...

    def cut(self) -> None:
        """The reply was cut from outside (an operator's stop, a device error): stop replying."""
        ...

    def reset(self) -> None: ...


def tokens_for(move: Move, next_units: Callable[[int], Sequence[int]]) -> tuple[list[Token], bool]:
    """The step's four tokens for `move`, units drawn from the reply; True if the reply ended (EOT)."""
    if move in (Move.TAKE, Move.OFFER):
        tokens = [SHIFT, *(audio(u) for u in next_units(TOKENS_PER_STEP - 1))]
    elif move is Move.SPEAK:
        tokens = [audio(u) for u in next_units(TOKENS_PER_STEP)]
    elif move is Move.BREAK:
        return [BREAK] + [THINK] * (TOKENS_PER_STEP - 1), False
    else:
        return [THINK] * TOKENS_PER_STEP, False
    ended = len(tokens) < TOKENS_PER_STEP
    if ended:
        tokens.append(EOT)
        tokens += [THINK] * (TOKENS_PER_STEP - len(tokens))
    return tokens, ended


def floor_kind(cfg: PolicyConfig, auto: str = "vad") -> str:
    """`policy.floor`, with `auto` resolved to the backbone's own choice (`auto`)."""
    return auto if cfg.floor == "auto" else cfg.floor


def make_floor(cfg: PolicyConfig, *, tiny_fd: TinyFdConfig | None = None,
               resolve: Callable[[str], Path] | None = None, threads: int | None = None,
               auto: str = "vad") -> FloorPolicy:
    """The floor `policy.floor` names (tiny-fd imports torch; the VAD rules do not); `auto` is the
    backbone's choice: the VAD rules for the policy backbone, tiny-fd for Covo's turn mode.

    `threads` overrides `tiny_fd.threads` (torch's setting is process-wide: a backbone that sets its
    own, as Covo does, passes 0 so the floor leaves it alone).
    """
    if floor_kind(cfg, auto) == "tiny-fd":
        from duplex.backbones.floor.tinyfd import load_tiny_fd_floor

        return load_tiny_fd_floor(cfg, tiny_fd, resolve, threads)
    from duplex.audio_setup import vad_from_config
    from duplex.backbones.floor.vad import VadFloor

    cues = words = None
    if cfg.cue_words and not cfg.cues:  # the words alone, no torch (pocketsphinx is asked for if missing)
        from duplex.cue.words import OpeningWords

        words = OpeningWords()
    if cfg.cues:
        try:
            from duplex.cue.runtime import load_cue_model
        except ModuleNotFoundError as exc:
            raise ConfigError("policy.cues needs torch (pip install 'duplex[model]'); "
                              "or leave the cue model off: --set policy.cues=false") from exc
        cues = load_cue_model(cfg.cue_checkpoint, cfg.cue_words, resolve or Path, "policy.cue_checkpoint")
    return VadFloor(cfg, vad_from_config(cfg), cues, words)


__all__ = ["FloorPolicy", "Move", "floor_kind", "make_floor", "tokens_for"]
