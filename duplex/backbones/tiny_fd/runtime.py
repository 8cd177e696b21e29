"""tiny-fd at inference: one 160 ms chunk in, four tokens out, KV cache carried across steps.

Per step: the chunk and the reference (the audio of the units this model emitted last step, which
the speaker is playing now) become one user embedding; the tokens of the previous step that the
cache has not seen yet and that embedding are fed in one forward pass, and the step's first token
is read from its logits under the grammar mask. Only a SHIFT needs a second pass (which reply to
start); every other token of the step is forced by the grammar, so it is fed with the next step's
forward instead of costing one of its own (iterative context filling with batched forced tokens).

The context is bounded: when the cache would pass `context_steps`, it is rebuilt from the fixed
prefix (BOS) and the last `window_steps` steps (their user embeddings and tokens are kept), so
memory stays flat however long a session runs.

The conversation's state and grammar live in `conversation.Conversation`, shared with the batched
host (`batched.BatchedTinyFd`); this backbone adds one transformers KV cache and runs the forward.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
import torch

from duplex.backbones.framebank import FrameBank
from duplex.backbones.hf_cache import cache_keyword, returned_cache
from duplex.backbones.tiny_fd import vocab as V
from duplex.backbones.tiny_fd.barge_in import NO_CUES, RuleSettings
from duplex.backbones.tiny_fd.conversation import REARM_LEVEL, Conversation, ConversationHooks
from duplex.backbones.tiny_fd.model import SLOTS, TinyFd
from duplex.tokens import BREAK, EOT, SHIFT, THINK, Token, audio

__all__ = ["REARM_LEVEL", "TinyFdBackbone", "to_tokens"]

_CONTROL = {V.THINK: THINK, V.SHIFT: SHIFT, V.BREAK: BREAK, V.EOT: EOT}


def to_tokens(ids: list[int]) -> list[Token]:
    """tiny-fd ids -> the engine's tokens."""
    return [_CONTROL[t] if t < V.UNIT0 else audio(t - V.UNIT0) for t in ids]


class TinyFdBackbone(ConversationHooks):
    def __init__(self, net: TinyFd, replies: list[tuple[int, int]], bank: FrameBank, *,
                 context_steps: int = 48, window_steps: int = 16, shift_threshold: float = 0.5,
                 break_threshold: float = 0.5, rules: RuleSettings = NO_CUES) -> None:
        self.net = net.eval()
        self._cache_kw = cache_keyword(net.llm)  # `cache` (current transformers) or `past_key_values`
        self.replies = [(int(a), int(b)) for a, b in replies]
        self.bank = bank
        self.context_steps = context_steps
        self.window_steps = window_steps
        self.budget = 1 + SLOTS * context_steps  # positions
        self.window = max(1, min(window_steps, context_steps - 2))
        self.thresholds = {V.SHIFT: shift_threshold, V.BREAK: break_threshold}
        self.rule_settings = rules
        self.conversation = Conversation(net.mel, self.replies, bank, budget=self.budget, window=self.window,
                                         thresholds=self.thresholds, rules=rules)
        self.cache = None

    def reset(self) -> None:
        self.conversation.reset()
        self.cache = None

    def heard(self, units: int) -> None:
        self.conversation.heard(units)

    # ---- state, read by tests and benchmarks ----------------------------------------------

    @property
    def history(self) -> deque[tuple[torch.Tensor, list[int]]]:
        return self.conversation.history

    @property
    def floor(self) -> V.Floor:
        return self.conversation.floor

    def _decide(self, logits: torch.Tensor, allowed: list[int]) -> int:
        return self.conversation.choose(logits, allowed)

    # ---- the step -------------------------------------------------------------------------

    @torch.inference_mode()
    def step(self, chunk: np.ndarray, reference: np.ndarray | None = None) -> Sequence[Token]:
        """One chunk in, four tokens out. `reference`: the audio played during this chunk when
        something else speaks for the model (None: its own units of the last step)."""
        conv = self.conversation
        user, conv.enc_states = self.net.encoder(conv.features(chunk, reference), conv.enc_states)  # (1, 1, H)
        if self.cache is None or conv.needs_refill():
            logits = self._refill(user)
        else:
            logits = self._forward(conv.inputs(self.net, user))
        first = conv.decide(logits, chunk)
        start = None
        if first == V.SHIFT:
            start = conv.reply_start(self._forward(self.net.embed_tokens(torch.tensor([[V.SHIFT]]))))
        return to_tokens(conv.complete(user, first, start))

    def _forward(self, embeds: torch.Tensor) -> torch.Tensor:
        out = self.net.llm(inputs_embeds=embeds, use_cache=True, logits_to_keep=1, **{self._cache_kw: self.cache})
        self.cache = returned_cache(out)
        self.conversation.fed(embeds.shape[1])
        return out.logits[0, -1]

    def _refill(self, user: torch.Tensor) -> torch.Tensor:
        """A fresh cache: the fixed prefix, the recent window, then this step's user embedding."""
        embeds = self.conversation.refill_inputs(self.net, user)
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.net.llm.config)
        return self._forward(embeds)
