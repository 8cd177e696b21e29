"""Native mode: a full-duplex Covo checkpoint emits THINK / SHIFT / BREAK / EOT itself.

Each 160 ms step: the streaming encoder turns the newest chunk into one frame; the decoder feeds
the previous step's last token and that frame, then samples four tokens (feeding the first
three). That is 5 cache positions and 4 forward passes per step, one device call, one host sync
(the four ids). The context opens with `covo.native_prefix`; when the cache is full it is
refilled with the prefix and the most recent `refill_keep_tokens` positions, cut at a step
boundary, so memory is flat for any session length.

Cuts: the user frames interleave with the model's tokens, so unheard speech cannot be removed
from the context without breaking the timeline. Instead, when the engine reports a cut the model
did not announce itself (an operator's stop), the next pending input becomes BREAK, so the model
learns where it was interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from duplex.backbones.base import TOKENS_PER_STEP
from duplex.backbones.covo.accel import Accelerated
from duplex.backbones.covo.decoder import DecoderBase
from duplex.backbones.covo.features import StreamingEncoder
from duplex.backbones.covo.vocab import Vocab
from duplex.tokens import BREAK, Token

POSITIONS_PER_STEP = 1 + TOKENS_PER_STEP  # the pending token + the frame + three fed samples


class CovoNativeBackbone:
    def __init__(self, *, decoder: DecoderBase, encoder: StreamingEncoder, vocab: Vocab, prefix: str,
                 refill_keep: int, break_id: int, optimise: str) -> None:
        self.decoder = decoder
        self.encoder = encoder
        self.vocab = vocab
        self.prefix_ids = vocab.encode(prefix)
        if len(self.prefix_ids) < 1:
            raise ValueError("covo.native_prefix must not be empty")
        self.break_id = break_id
        self.refills = 0
        self.steps = 0
        room = decoder.capacity - (len(self.prefix_ids) - 1) - POSITIONS_PER_STEP
        if room < 2 * POSITIONS_PER_STEP:
            raise ValueError(f"covo.context_tokens = {decoder.capacity} leaves no room after the native prefix")
        self.keep = min(refill_keep, room - POSITIONS_PER_STEP) // POSITIONS_PER_STEP * POSITIONS_PER_STEP
        self._encode = Accelerated(encoder.encode, optimise, name="encoder window")
        self._saw_break = False
        self.reset()
        with torch.no_grad():
            self._encode.prepare()
            decoder.prepare(True, TOKENS_PER_STEP)

    def reset(self) -> None:
        with torch.no_grad():
            self.decoder.truncate(0)
            self.decoder.sampler.reset()
            self.encoder.reset()
            self.decoder.prefill(self.decoder.embed(self.prefix_ids[:-1]))
        self.prefix_len = self.decoder.length
        self.pending = torch.tensor([self.prefix_ids[-1]], device=self.decoder.device)
        self._saw_break = False

    @torch.no_grad()
    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        self.encoder.push(chunk)
        frame = self._encode()
        if self.decoder.room() < POSITIONS_PER_STEP:
            self.refill()
        ids = self.decoder.generate(self.pending, frame, TOKENS_PER_STEP)
        self.pending = ids[-1:]
        tokens = [self.vocab.token(i) for i in ids.tolist()]
        self._saw_break = BREAK in tokens
        self.steps += 1
        return tokens

    def heard(self, units: int) -> None:
        if not self._saw_break:
            self.pending = torch.tensor([self.break_id], device=self.decoder.device)
            self._saw_break = True

    @torch.no_grad()
    def refill(self) -> None:
        """Prefix + the most recent `keep` positions (a whole number of steps)."""
        self.decoder.refill(self.prefix_len, self.decoder.length - self.keep)
        self.refills += 1
