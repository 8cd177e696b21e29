"""The tiny-fd floor: tiny-fd's learned turn-taking drives a responder that cannot time itself.

Each step tiny-fd hears the user chunk (and, as its echo reference, the audio the responder
actually played last step) and makes its usual decision; only its control tokens are read, its
speech units are discarded and the responder speaks instead:

    listening  SHIFT -> take the turn        THINK -> wait
    speaking   unit  -> speak (or resume)    THINK -> hold    BREAK -> barge-in

tiny-fd's own reply and the responder's differ in length, so the two are kept in step: while the
responder goes on, tiny-fd's reply is rewound before it would run out (it keeps "speaking" the same
units, which only its context sees); when the responder's reply ends, tiny-fd's is ended too (its
grammar then closes it with EOT). A say() offer is taken in a quiet step while tiny-fd listens;
tiny-fd does not hold the floor for it, so such an announcement is not held for a barge-in.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from audio_io.format import rms
from duplex.backbones.floor import Move
from duplex.errors import ConfigError
from duplex.tokens import Kind, Token

if TYPE_CHECKING:
    from duplex.backbones.tiny_fd.config import TinyFdConfig
    from duplex.config import PolicyConfig

MAX_TURN_STEPS = 190  # about 30 s of user audio kept for the responder
REWIND_MARGIN = 8  # units left in tiny-fd's reply when it is rewound (a step uses at most four)


class State(enum.Enum):
    LISTEN = "listen"
    REPLY = "reply"
    HELD = "held"


class TinyFdModel(Protocol):
    """What the floor needs of tiny-fd: a `TinyFdBackbone`, or a lane of `BatchedTinyFd`."""

    @property
    def speaking(self) -> bool: ...

    def step(self, chunk: np.ndarray, reference: np.ndarray | None = None) -> Sequence[Token]: ...

    def heard(self, units: int) -> None: ...

    def reset(self) -> None: ...

    def units_left(self) -> int: ...

    def rewind_reply(self, unit: int) -> None: ...

    def end_reply(self) -> None: ...


class TinyFdFloor:
    """Floor decisions read from a `TinyFdBackbone`'s control tokens."""

    def __init__(self, model: TinyFdModel, *, min_level_db: float = -45.0) -> None:
        self.model = model
        self._played = np.zeros(0, np.float32)  # what the responder played last step: tiny-fd's echo reference
        self._min_level = 10 ** (min_level_db / 20)
        self._chunks: deque[np.ndarray] = deque(maxlen=MAX_TURN_STEPS)
        self.reset()

    @property
    def speaking(self) -> bool:
        return self.state is not State.LISTEN

    def reset(self) -> None:
        self.model.reset()
        self._played = np.zeros(0, np.float32)
        self.state = State.LISTEN
        self._chunks.clear()
        self._turn = np.zeros(0, np.float32)
        self._first: int | None = None  # first unit of tiny-fd's current reply

    def decide(self, chunk: np.ndarray, *, offer: bool = False) -> Move:
        if self.model.speaking and self._first is not None and self.state is not State.LISTEN \
                and self.model.units_left() < REWIND_MARGIN:
            self.model.rewind_reply(self._first)  # the responder goes on: so does tiny-fd's reply
        tokens = self.model.step(chunk, reference=self._played)
        first = tokens[0].kind
        if self.state is State.LISTEN:
            self._chunks.append(np.asarray(chunk, np.float32).copy())
            if first is Kind.SHIFT:
                self._first = tokens[1].unit if len(tokens) > 1 and tokens[1].kind is Kind.AUDIO else None
                self._turn = self._trimmed()
                return self._start(Move.TAKE)
            if offer and rms(chunk) <= self._min_level and not self._trimmed().size:
                self._first = None
                return self._start(Move.OFFER)
            return Move.WAIT
        if first is Kind.BREAK:
            self.state = State.LISTEN
            self._chunks.clear()
            self._chunks.append(np.asarray(chunk, np.float32).copy())  # the barge-in starts the next turn
            return Move.BREAK
        if first is Kind.THINK and self.model.speaking:
            self.state = State.HELD
            return Move.HOLD
        self.state = State.REPLY  # a unit (or tiny-fd is not in a reply: an offer) -> speak
        return Move.SPEAK

    def turn_audio(self) -> np.ndarray:
        return self._turn

    def played(self, level: float, audio: np.ndarray | None = None) -> None:
        self._played = np.zeros(0, np.float32) if audio is None else audio

    def ended(self) -> None:
        self.state = State.LISTEN
        self.model.end_reply()  # tiny-fd closes its reply (EOT) at the next step
        self._first = None

    def cut(self) -> None:
        if self.state is not State.LISTEN:
            self.state = State.LISTEN
            self.model.heard(0)  # tiny-fd stops its reply and waits for the user to make a sound
            self._first = None

    def _start(self, move: Move) -> Move:
        self.state = State.REPLY
        self._chunks.clear()
        return move

    def _trimmed(self) -> np.ndarray:
        """The user's audio since the last turn, without the quiet chunks at either end."""
        loud = [i for i, c in enumerate(self._chunks) if rms(c) > self._min_level]
        if not loud:
            return np.zeros(0, np.float32)
        return np.concatenate(list(self._chunks)[loud[0]: loud[-1] + 1])


def load_tiny_fd_floor(cfg: PolicyConfig, tiny_fd: TinyFdConfig | None, resolve: Callable[[str], Path] | None,
                       threads: int | None = None) -> TinyFdFloor:
    """tiny-fd's checkpoint and settings from the `tiny_fd:` section, as the tiny-fd backbone loads them."""
    from duplex.backbones.tiny_fd.config import TinyFdConfig
    from duplex.backbones.tiny_fd.loader import checkpoint_dir, load_folder, rule_settings

    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as exc:
        raise ConfigError("policy.floor = 'tiny-fd' needs torch (pip install 'duplex[model]'); "
                          "or keep the VAD rules: --set policy.floor=vad") from exc
    t = tiny_fd or TinyFdConfig()
    folder = checkpoint_dir(t, resolve or Path)
    threads = t.threads if threads is None else threads
    model = load_folder(folder, context_steps=t.context_steps, window_steps=t.window_steps, threads=threads,
                        shift_threshold=t.shift_threshold, break_threshold=t.break_threshold,
                        rules=rule_settings(t, resolve or Path))
    return TinyFdFloor(model.backbone, min_level_db=cfg.min_level_db)
