"""Turn mode: the released half-duplex Covo-Audio-Chat made duplex by the VAD turn policy.

The floor decisions are the `policy` backbone's, unchanged (when the user's turn ends, when an
overlap is a backchannel and when it is a barge-in, the echo gate); only the responder differs.
Instead of playing audio it already has, this backbone, on SHIFT, encodes the user's utterance
since the previous turn, prefills it in Covo's dialog format and streams the reply: speech units
to the vocoder, text to the transcript. On BREAK (or any cut the engine reports through `heard`)
generation stops and the context keeps the reply only up to the last unit the user heard.

Slots: a step carries four tokens and each speech unit is 40 ms, so four units per step is real
time. Text tokens therefore never take a speech slot; the reply's text is emitted, as one TEXT
token, in a step that has a free (THINK) slot: at the end of the reply, or while it is paused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from audio_io.vad import Vad
from duplex.backbones.base import TOKENS_PER_STEP
from duplex.backbones.covo.chat import ChatContext
from duplex.backbones.policy import Floor, PolicyBackbone, TurnRecord, Utterance
from duplex.config import PolicyConfig
from duplex.errors import NotSupportedError
from duplex.tokens import SHIFT, Kind, Token, audio


class CovoTurnBackbone(PolicyBackbone):
    """PolicyBackbone's floor logic with Covo as the responder."""

    def __init__(self, cfg: PolicyConfig, *, vad: Vad, chat: ChatContext, level: Callable[[], float]) -> None:
        self.chat = chat
        self.level = level  # RMS of the vocoder's latest output, for the echo gate
        self.last_shift_to_unit_ms: float | None = None
        super().__init__(cfg, vad=vad)  # Covo speaks its own units: no responder, no frame bank

    def reset(self) -> None:
        super().reset()
        self.chat.reset()

    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        tokens = list(super().step(chunk))
        text = self.chat.take_text()
        if text:
            free = [i for i, t in enumerate(tokens) if t.kind is Kind.THINK]
            if free:
                tokens[free[-1]] = Token(Kind.TEXT, text=text)
            else:
                self.chat.transcript_ready.insert(0, text)  # next step with room
        return tokens

    def heard(self, units: int) -> None:
        super().heard(units)
        if self.chat.reply is not None:
            self.chat.cut(units)
        if self.floor is not Floor.LISTEN:  # cut from outside (operator, device): stop replying
            self.floor = Floor.LISTEN
            self._overlap = Utterance()

    def say(self, audio: np.ndarray) -> None:
        """Covo speaks its own speech units: it cannot play given audio (refused, not ignored)."""
        raise NotSupportedError("say(): the covo backbone speaks its own units and cannot play given audio")

    # ---- PolicyBackbone hooks ------------------------------------------------------------------

    def _take_turn(self) -> Sequence[Token]:
        utterance = self.utterance.audio()
        self.utterance = Utterance()
        self._overlap = Utterance()
        self.chat.start_reply(utterance)
        reply = self.chat.reply  # (a reply of under three units is closed again by _next_units)
        self.history.append(TurnRecord(units=0, heard=0))
        self.floor = Floor.REPLY
        tokens = (SHIFT, *self._next_units(TOKENS_PER_STEP - 1))
        if reply is not None and reply.first_unit_s is not None:
            self.last_shift_to_unit_ms = (reply.first_unit_s - reply.started_s) * 1000.0
        return tokens

    def _next_units(self, n: int) -> list[Token]:
        units = self.chat.next_units(n)
        if self.history:
            self.history[-1].units += len(units)
            self.history[-1].heard = self.history[-1].units
        self._recent_output.append(self.level() if units else 0.0)
        return [audio(u) for u in units]
