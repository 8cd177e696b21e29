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
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
import torch

from audio_io.format import STEP_SAMPLES, rms
from duplex.backbones.framebank import FrameBank, FrameBankVocoder
from duplex.backbones.hf_cache import cache_keyword, returned_cache
from duplex.backbones.tiny_fd import vocab as V
from duplex.backbones.tiny_fd.features import MelStream
from duplex.backbones.tiny_fd.model import SLOTS, TinyFd
from duplex.tokens import BREAK, EOT, SHIFT, THINK, Token, audio

REARM_LEVEL = 10 ** (-45 / 20)  # RMS of a chunk that counts as the user making a sound (as the policy's floor)
REHOLD_STEPS = 2  # held again this many steps (0.32 s) after resuming (itself 0.72 s after the user stopped): BREAK
_CONTROL = {V.THINK: THINK, V.SHIFT: SHIFT, V.BREAK: BREAK, V.EOT: EOT}


class TinyFdBackbone:
    def __init__(self, net: TinyFd, replies: list[tuple[int, int]], bank: FrameBank, *,
                 context_steps: int = 48, window_steps: int = 16, shift_threshold: float = 0.5,
                 break_threshold: float = 0.5) -> None:
        self.net = net.eval()
        self._cache_kw = cache_keyword(net.llm)  # `cache` (current transformers) or `past_key_values`
        self.replies = [(int(a), int(b)) for a, b in replies]
        self.bank = bank
        self.voice = FrameBankVocoder(bank)  # for the echo reference
        self.budget = 1 + SLOTS * context_steps  # positions
        self.window = max(1, min(window_steps, context_steps - 2))
        self.mic_mel = MelStream(net.mel)
        self.ref_mel = MelStream(net.mel)
        self.history: deque[tuple[torch.Tensor, list[int]]] = deque(maxlen=self.window)
        self.refills = 0
        self.thresholds = {V.SHIFT: shift_threshold, V.BREAK: break_threshold}
        self.reset()

    def reset(self) -> None:
        self.floor = V.Floor(self.replies)
        self.mic_mel.reset()
        self.ref_mel.reset()
        self.enc_states: list[torch.Tensor] | None = None
        self.cache = None
        self.length = 0  # positions in the cache
        self.pending: list[int] = []  # forced tokens not yet fed
        self.history.clear()
        self.last_units: list[int] = []
        self.rearm = False  # after a cut from outside: no SHIFT until the user makes a sound
        self.holding = False  # the reply is held (a silent beat) for user speech
        self.since_resume = REHOLD_STEPS + 1  # steps since the reply resumed from a hold

    def heard(self, units: int) -> None:
        """A turn was cut. After the model's own BREAK there is nothing to undo: units are played as
        they are emitted. A cut from outside (an operator's stop, a device error) leaves the model
        mid-reply: stop the reply here, so it listens (and may take the turn) from the next step."""
        if self.floor.speaking:
            self.floor.speaking = False
            self.last_units = []  # nothing of the reply is playing: no echo reference
            self.rearm = True  # and no new turn until the user has spoken again

    @property
    def cache_positions(self) -> int:
        return self.length

    @torch.inference_mode()
    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        mic = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).reshape(1, STEP_SAMPLES)
        ref = np.zeros(STEP_SAMPLES, dtype=np.float32)  # what the model is playing during this chunk
        played = self.voice.decode(self.last_units[:4])
        ref[: played.size] = played
        feats = torch.cat([self.mic_mel(mic), self.ref_mel(torch.from_numpy(ref)[None])], dim=1)
        user, self.enc_states = self.net.encoder(feats, self.enc_states)  # (1, 1, H)
        if self.cache is None or self.length + len(self.pending) + 2 > self.budget:
            logits = self._refill(user)
        else:
            embeds = user if not self.pending else torch.cat(
                [self.net.embed_tokens(torch.tensor([self.pending])), user], dim=1)
            logits = self._forward(embeds)
        first = self._rehold(self._decide(logits, self._allowed(chunk)))
        fed = 0
        start = None
        if first == V.SHIFT:
            starts = self.floor.starts()
            logits = self._forward(self.net.embed_tokens(torch.tensor([[V.SHIFT]])))
            start = starts[int(torch.argmax(logits[starts]))]
            fed = 1
        tokens = self.floor.complete(first, start)
        self.pending = tokens[fed:]
        self.history.append((user[0, 0], tokens))
        self.last_units = [t - V.UNIT0 for t in tokens if t >= V.UNIT0]
        return [_CONTROL[t] if t < V.UNIT0 else audio(t - V.UNIT0) for t in tokens]

    def _allowed(self, chunk: np.ndarray) -> list[int]:
        """The grammar's choices, less SHIFT after a cut from outside until the user makes a sound:
        an operator's stop must not be followed by a new reply into the silence."""
        allowed = self.floor.allowed_first()
        if self.rearm and rms(chunk) > REARM_LEVEL:
            self.rearm = False
        if self.rearm:
            return [t for t in allowed if t != V.SHIFT]
        return allowed

    def _rehold(self, first: int) -> int:
        """The grammar's barge-in rule: after a hold for user speech, more user speech within about a
        second is a barge-in, never a cue to resume. A reply that resumed and is held again that soon
        is broken off (BREAK) instead of holding and resuming into the user's inner pauses."""
        if self.floor.decision() != V.SPEAK_DECISION:
            self.holding = False
            return first
        self.since_resume += 1
        if first == V.THINK:
            if not self.holding and self.since_resume <= REHOLD_STEPS:
                self.holding = False
                return V.BREAK
            self.holding = True
        elif first == V.CONT:
            if self.holding:
                self.since_resume = 0
            self.holding = False
        else:
            self.holding = False
        return first

    def _decide(self, logits: torch.Tensor, allowed: list[int]) -> int:
        """Argmax over the legal tokens, except that SHIFT and BREAK need their own probability."""
        probs = torch.softmax(logits[allowed], dim=0)
        order = torch.argsort(probs, descending=True).tolist()
        for i in order:
            token = allowed[i]
            if token not in self.thresholds or float(probs[i]) >= self.thresholds[token]:
                return token
        return allowed[order[0]]

    def _forward(self, embeds: torch.Tensor) -> torch.Tensor:
        out = self.net.llm(inputs_embeds=embeds, use_cache=True, logits_to_keep=1, **{self._cache_kw: self.cache})
        self.cache = returned_cache(out)
        self.length += embeds.shape[1]
        return out.logits[0, -1]

    def _refill(self, user: torch.Tensor) -> torch.Tensor:
        """A fresh cache: the fixed prefix, the recent window, then this step's user embedding."""
        parts = [self.net.embed_tokens(torch.tensor([[V.BOS]]))]
        for emb, tokens in self.history:
            parts += [emb[None, None], self.net.embed_tokens(torch.tensor([tokens]))]
        parts.append(user)
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.net.llm.config)
        self.length = 0
        self.pending = []
        self.refills += 1
        return self._forward(torch.cat(parts, dim=1))
