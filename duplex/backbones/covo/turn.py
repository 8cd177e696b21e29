"""Turn mode: the released half-duplex Covo-Audio-Chat made duplex by a floor policy.

The floor decisions come from the same floor policy as the `policy` backbone's (`policy.floor`:
the VAD rules or tiny-fd's learned timing, with the same settings; see `duplex.backbones.floor`);
only the speech differs. Instead of playing audio it already has, this backbone, on SHIFT, encodes
the user's utterance since the previous turn, prefills it in Covo's dialog format and streams the
reply: speech units to the vocoder, text to the transcript. On BREAK (or any cut the engine
reports through `heard`) generation stops and the context keeps the reply only up to the last unit
the user heard.

Slots: a step carries four tokens and each speech unit is 40 ms, so four units per step is real
time. Text tokens therefore never take a speech slot; the reply's text is emitted, as one TEXT
token, in a step that has a free (THINK) slot: at the end of the reply, or while it is held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from duplex.backbones.covo.chat import ChatContext
from duplex.backbones.floor import FloorPolicy, Move, tokens_for
from duplex.backbones.policy import TurnRecord
from duplex.tokens import Kind, Token


class CovoTurnBackbone:
    """A floor policy for the timing; Covo's chat model for the speech. It cannot `say` given audio."""

    def __init__(self, floor: FloorPolicy, *, chat: ChatContext, level: Callable[[], float]) -> None:
        self.floor = floor
        self.chat = chat
        self.level = level  # RMS of the vocoder's latest output, for the echo gate
        self.last_shift_to_unit_ms: float | None = None
        self.history: list[TurnRecord] = []
        self.reset()

    def reset(self) -> None:
        self.floor.reset()
        self.history.clear()
        self.chat.reset()

    def heard(self, units: int) -> None:
        if self.history:
            self.history[-1].heard = min(units, self.history[-1].units)
        if self.chat.reply is not None:
            self.chat.cut(units)
        self.floor.cut()  # a cut from outside (operator, device): stop replying

    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        move = self.floor.decide(chunk)
        if move is Move.TAKE:
            self.chat.start_reply(self.floor.turn_audio())
            self.history.append(TurnRecord(units=0, heard=0))
        self._emitted = 0
        tokens, ended = tokens_for(move, self._next_units)
        if move is Move.TAKE:
            reply = self.chat.reply  # (a reply of under three units is closed again at once)
            if reply is not None and reply.first_unit_s is not None:
                self.last_shift_to_unit_ms = (reply.first_unit_s - reply.started_s) * 1000.0
        if ended:
            self.floor.ended()
        self.floor.played(self.level() if self._emitted else 0.0)
        text = self.chat.take_text()
        if text:
            free = [i for i, t in enumerate(tokens) if t.kind is Kind.THINK]
            if free:
                tokens[free[-1]] = Token(Kind.TEXT, text=text)
            else:
                self.chat.transcript_ready.insert(0, text)  # next step with room
        return tokens

    def _next_units(self, n: int) -> list[int]:
        units = self.chat.next_units(n)
        if self.history:
            self.history[-1].units += len(units)
            self.history[-1].heard = self.history[-1].units
        self._emitted = len(units)
        return units
