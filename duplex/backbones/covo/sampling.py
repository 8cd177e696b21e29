"""Choosing the next token on the device, with no host sync: greedy or temperature, plus options.

The sampler's state (the last few tokens for the repetition penalty, the position in a forced
text/speech pattern) lives in small device tensors, updated in place, so a whole multi-token
decode can be captured as one CUDA graph. `snapshot`/`restore` let graph warm-up runs leave the
state as they found it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class Sampler:
    def __init__(self, *, vocab_size: int, text_size: int, always: Sequence[int], temperature: float,
                 penalty: float, window: int, interleave: tuple[int, int] | None, device: torch.device) -> None:
        self.vocab_size = vocab_size
        self.temperature = temperature
        self.penalty = penalty
        self.interleave = interleave
        self.recent = torch.full((window,), -1, dtype=torch.long, device=device)
        self.count = torch.zeros((), dtype=torch.long, device=device)
        ids = torch.arange(vocab_size, device=device)
        self.is_speech = ids >= text_size
        self.always = torch.zeros(vocab_size, dtype=torch.bool, device=device)
        self.always[list(always)] = True  # e.g. the end-of-reply token, allowed in either phase
        self.pad = torch.zeros(1, 1, device=device)

    def reset(self) -> None:
        self.recent.fill_(-1)
        self.count.zero_()

    def snapshot(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.recent.clone(), self.count.clone()

    def restore(self, state: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.recent.copy_(state[0])
        self.count.copy_(state[1])

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """(1, vocab) float32 logits -> (1,) token id."""
        if self.penalty != 1.0:
            logits = self._penalise(logits)
        if self.interleave is not None:
            text, speech = self.interleave
            want_speech = torch.remainder(self.count, text + speech) >= text
            allowed = (self.is_speech == want_speech) | self.always
            logits = logits.masked_fill(~allowed, float("-inf"))
            self.count.add_(1)
        if self.temperature > 0.0:
            u = torch.rand_like(logits).clamp_(1e-10, 1.0)
            logits = logits / self.temperature - torch.log(-torch.log(u))  # Gumbel-max: a sample, no sync
        tok = logits.argmax(-1)
        if self.penalty != 1.0:
            self.recent.copy_(torch.cat([self.recent[1:], tok]))
        return tok

    def _penalise(self, logits: torch.Tensor) -> torch.Tensor:
        """Divide positive (multiply negative) logits of recent tokens; empty slots hit a pad column."""
        idx = torch.where(self.recent >= 0, self.recent, self.vocab_size)[None]
        ext = torch.cat([logits, self.pad], dim=1)
        vals = ext.gather(1, idx)
        ext = ext.scatter(1, idx, torch.where(vals < 0, vals * self.penalty, vals / self.penalty))
        return ext[:, : self.vocab_size]
