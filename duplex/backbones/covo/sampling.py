"""Choosing the next token on the device, with no host sync: the release's logits pipeline.

Per token, in the order transformers' `generate` applies them in the reference example:
repetition penalty over every id of the turn (prompt and reply so far), the windowed penalty over
the last `window` of those ids, temperature, top-k, top-p, then a sample (Gumbel-max: argmax of
logits plus Gumbel noise is a draw from their softmax, and needs no sync). Greedy is the same
with the noise multiplied by zero, so "first reply greedy, later ones sampled" switches with a
device scalar and one captured graph serves both.

The sampler's state (the ids seen this turn, the last few ids, the position in a forced
text/speech pattern, greedy or not) lives in small device tensors updated in place, so a whole
multi-token decode can be captured as one CUDA graph. `snapshot`/`restore` let graph warm-up runs
leave the state as they found it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from duplex.backbones.covo.presets import Sampling

GREEDY = Sampling(temperature=0.0, top_k=0, top_p=1.0, sequence_penalty=1.0, window_penalty=1.0, window=1,
                  first_turn_greedy=False)


class Sampler:
    def __init__(self, *, vocab_size: int, text_size: int, always: Sequence[int], settings: Sampling,
                 interleave: tuple[int, int] | None, device: torch.device) -> None:
        self.vocab_size = vocab_size
        self.settings = settings
        self.interleave = interleave
        self.recent = torch.full((settings.window,), -1, dtype=torch.long, device=device)
        self.seen = torch.zeros(vocab_size + 1, dtype=torch.bool, device=device)  # + a pad column for -1
        self.count = torch.zeros((), dtype=torch.long, device=device)
        self.noise = torch.ones((), device=device)  # 0 = this reply is greedy
        ids = torch.arange(vocab_size, device=device)
        self.is_speech = ids >= text_size
        self.always = torch.zeros(vocab_size, dtype=torch.bool, device=device)
        self.always[list(always)] = True  # e.g. the end-of-reply token, allowed in either phase
        self.pad = torch.zeros(1, 1, device=device)
        self.replies = 0
        self.reset()

    @property
    def sampled(self) -> bool:
        return self.settings.temperature > 0.0

    def reset(self) -> None:
        """A new conversation: the next reply is the first."""
        self.replies = 0
        self.begin(())

    def begin(self, prompt: Sequence[int]) -> None:
        """A new reply after `prompt` (the ids this turn's generate call would get as input_ids)."""
        s = self.settings
        tail = list(prompt)[-s.window:] if s.window else []
        self.recent.fill_(-1)
        if tail:
            self.recent[-len(tail):] = torch.tensor(tail, device=self.recent.device)
        self.seen.zero_()
        if prompt:
            self.seen[torch.tensor(list(prompt), device=self.seen.device)] = True
        self.count.zero_()
        greedy = not self.sampled or (s.first_turn_greedy and self.replies == 0)
        self.noise.fill_(0.0 if greedy else 1.0)
        self.replies += 1 if prompt else 0

    def snapshot(self) -> tuple[torch.Tensor, ...]:
        return self.recent.clone(), self.count.clone(), self.seen.clone()

    def restore(self, state: tuple[torch.Tensor, ...]) -> None:
        self.recent.copy_(state[0])
        self.count.copy_(state[1])
        self.seen.copy_(state[2])

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """(1, vocab) float32 logits -> (1,) token id."""
        s = self.settings
        if s.sequence_penalty != 1.0:
            logits = torch.where(self.seen[None, : self.vocab_size], _penalised(logits, s.sequence_penalty), logits)
        if s.window_penalty != 1.0:
            logits = self._window_penalty(logits, s.window_penalty)
        if self.interleave is not None:
            text, speech = self.interleave
            want_speech = torch.remainder(self.count, text + speech) >= text
            allowed = (self.is_speech == want_speech) | self.always
            logits = logits.masked_fill(~allowed, float("-inf"))
            self.count.add_(1)
        if self.sampled:
            logits = _top_k_top_p(logits / s.temperature, s.top_k, s.top_p)
            u = torch.rand_like(logits).clamp_(1e-10, 1.0)
            logits = logits - torch.log(-torch.log(u)) * self.noise  # Gumbel-max: a sample, no sync
        tok = logits.argmax(-1)
        if s.window_penalty != 1.0:
            self.recent.copy_(torch.cat([self.recent[1:], tok]))
        if s.sequence_penalty != 1.0:
            self.seen.index_fill_(0, tok, True)
        return tok

    def _window_penalty(self, logits: torch.Tensor, penalty: float) -> torch.Tensor:
        """Each distinct id among the recent ones penalised once; empty slots (-1) hit a pad column."""
        idx = torch.where(self.recent >= 0, self.recent, self.vocab_size)[None]
        ext = torch.cat([logits, self.pad], dim=1)
        vals = ext.gather(1, idx)
        ext = ext.scatter(1, idx, _penalised(vals, penalty))
        return ext[:, : self.vocab_size]


def _penalised(x: torch.Tensor, penalty: float) -> torch.Tensor:
    """transformers' rule: a positive logit is divided by the penalty, a negative one multiplied."""
    return torch.where(x < 0, x * penalty, x / penalty)


def _top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Keep the top_k logits, then the smallest most-likely set holding top_p (transformers' rules)."""
    vocab = logits.shape[-1]
    k = min(top_k, vocab) if top_k > 0 else vocab
    if k == vocab and top_p >= 1.0:
        return logits
    vals, idx = logits.topk(k, dim=-1)  # descending
    keep = torch.ones_like(vals, dtype=torch.bool)
    if top_p < 1.0:
        probs = vals.softmax(-1)
        before = probs.cumsum(-1) - probs  # mass of the more likely tokens
        keep = before < top_p  # = transformers' "ascending cumulative mass > 1 - top_p"
        keep[..., 0] = True
    out = torch.full_like(logits, float("-inf"))
    return out.scatter(-1, idx, vals.masked_fill(~keep, float("-inf")))
