"""Many covo turn-mode conversations on one model: their chat decoders share one slotted cache.

`BatchedCovoTurn` is a `duplex.serve.host.ModelHost` built from a loaded turn-mode covo `Model`.
A lane is an ordinary `CovoTurnBackbone` (its own floor policy, its own `ChatContext`) whose chat
decoder is a `LaneDecoder`: the lane's step runs on its own thread as usual, and every forward of
its decoder (the user turn's prefill, a reply burst, a close, a refill) is served by the host's
`DecoderService`, which batches the calls that conversations make at the same time. The floor
policy (VAD rules, or tiny-fd's timing) and the utterance encoder run on the lane's thread.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from duplex.backbones.base import Model
from duplex.backbones.covo.chat import ChatContext
from duplex.backbones.covo.lane_decoder import DecoderService, LaneDecoder
from duplex.backbones.covo.turn import CovoTurnBackbone
from duplex.backbones.floor import FloorPolicy


class BatchedCovoTurn:
    """A `ModelHost` for covo turn mode: `capacity` conversations, one model thread for their decoders."""

    def __init__(self, prototype: Model, *, capacity: int, new_floor: Callable[[], FloorPolicy]) -> None:
        """`new_floor`: a fresh floor policy per lane, e.g. `lambda: make_floor(config.policy, ...)`
        (a floor holds a VAD or a tiny-fd model of its own: made, not copied)."""
        solo = prototype.backbone
        if not isinstance(solo, CovoTurnBackbone):
            raise TypeError(f"BatchedCovoTurn needs a covo turn-mode model, got {type(solo).__name__}")
        self.prototype = prototype
        self.name = prototype.name
        self.capacity = capacity
        self._solo = solo
        self._new_floor = new_floor
        dec = solo.chat.decoder
        self.service = DecoderService(dec.llm, slots=capacity, positions=dec.capacity, device=dec.device,
                                      dtype=dec.dtype, name=self.name)

    def open(self) -> Model:
        decoder = self.service.lane(copy.deepcopy(self._solo.chat.decoder.sampler))
        chat = _chat_on(self._solo.chat, decoder)
        vocoder = copy.deepcopy(self.prototype.vocoder)
        if hasattr(vocoder, "ahead"):  # the streaming token2wav decodes ahead of the speaker: of this lane's reply
            from duplex.backbones.covo.factory import units_ahead

            vocoder.ahead = lambda: units_ahead(chat)
        backbone = CovoTurnBackbone(self._new_floor(), chat=chat,
                                    level=lambda: float(getattr(vocoder, "level", 0.0)))
        return Model(backbone=backbone, vocoder=vocoder, name=self.name, can_say=False)

    def close(self, lane: Model) -> None:
        backbone = lane.backbone
        if not isinstance(backbone, CovoTurnBackbone) or not isinstance(backbone.chat.decoder, LaneDecoder) \
                or backbone.chat.decoder.service is not self.service:
            raise ValueError("not a lane of this host")
        self.service.release(backbone.chat.decoder)

    def usage(self) -> dict[str, int | float]:
        """The decoder calls' figures (`batches`, `mean_batch`, latency); no lateness: a turn-mode
        lane calls its decoder only when it prefills or speaks."""
        return self.service.calls.usage()

    def shutdown(self) -> None:
        self.service.shutdown()


def _chat_on(prototype: ChatContext, decoder: LaneDecoder) -> ChatContext:
    """A fresh conversation with the prototype's settings (system prompt, end token, budgets) on `decoder`."""
    chat = copy.copy(prototype)  # shares the tokenizer, encoder and settings; per-conversation fields below
    chat.decoder = decoder
    chat.reply = None
    chat.turn_starts = []
    chat.refills = 0
    chat.transcript_ready = []
    chat._pending = torch.zeros(1, dtype=torch.long, device=decoder.device)
    chat.reset()
    return chat
