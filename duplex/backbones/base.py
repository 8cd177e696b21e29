"""The narrow interface every model implements, native full-duplex or turn-based.

A backbone keeps its own context across steps (iterative context filling): the engine hands it
one 160 ms user chunk per step and takes back exactly four tokens. When the user cuts in, the
engine tells it how many speech units of the current turn were actually heard, so it can drop the
unheard rest from its context. A vocoder turns speech units into 16 kHz (or its own rate) audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from duplex.tokens import Token

TOKENS_PER_STEP = 4


@runtime_checkable
class Backbone(Protocol):
    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        """Take one 160 ms chunk (2560 float32 samples at 16 kHz); return exactly four tokens."""
        ...

    def heard(self, units: int) -> None:
        """Only the first `units` speech units of the current (now interrupted) turn were heard."""
        ...

    def reset(self) -> None:
        """Forget the conversation; keep the fixed prefix (system prompt, voice)."""
        ...


@runtime_checkable
class Vocoder(Protocol):
    sample_rate: int

    def decode(self, units: Sequence[int]) -> np.ndarray:
        """Audio for these units, continuing the current stream (float32 mono)."""
        ...

    def reset(self) -> None:
        """Drop in-flight synthesis state (after a barge-in)."""
        ...


@dataclass(slots=True)
class Model:
    """What `load_model` returns: the pair the engine drives, a name for logs, and what it can do.

    `can_say`: the backbone plays given audio unprompted (`backbone.say(audio)`, at the next step
    with a free floor); a model that speaks only its own units cannot, and the session refuses.
    """

    backbone: Backbone
    vocoder: Vocoder
    name: str
    can_say: bool = False
