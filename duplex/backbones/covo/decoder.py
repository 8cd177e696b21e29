"""The LLM side of a step: feed input embeddings, sample tokens, keep a bounded KV cache.

Two implementations behind one interface, so the benchmark can put them side by side:

- `StaticDecoder` (the fast path): Qwen2 attention written out over the LLM's own weights, with a
  KV cache preallocated at `context_tokens` positions and RoPE tables precomputed. A position is
  written before it is read, a mask hides everything after the query, so shapes never change:
  one multi-token decode (feed the pending token and the user frame, sample four tokens) is one
  CUDA graph replay or one compiled function, with no host sync. Grouped-query attention folds the
  query heads that share a KV head into the sequence axis instead of copying K and V.
- `DynamicDecoder` (the baseline): transformers' own Qwen2 forward with its DynamicCache, one call
  per token, as the released inference code runs it.

Both keep every fed input embedding in `hist` (positions -> embeddings), which is what makes the
context refillable: `refill(prefix, keep_from)` keeps the fixed prefix's cache and re-prefills
the recent history right after it, so memory stays flat however long the conversation runs.
The last sampled token is never fed by `generate`; it is the caller's pending input for the next
call (or is dropped when a reply is cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from duplex.backbones.covo.accel import Accelerated
from duplex.backbones.covo.sampling import Sampler
from duplex.backbones.hf_cache import cache_keyword
from duplex.backbones.slotted import rope, rope_tables

PREFILL_CHUNK = 256


class DecoderBase:
    def __init__(self, llm: Any, *, capacity: int, sampler: Sampler, device: torch.device, dtype: torch.dtype) -> None:
        self.llm = llm
        self.capacity = capacity
        self.sampler = sampler
        self.device = device
        self.dtype = dtype
        self.hidden = int(llm.config.hidden_size)
        self.embed_tokens = llm.model.embed_tokens
        self.hist = torch.zeros(capacity, self.hidden, device=device, dtype=dtype)
        self.length = 0
        self.trace: list[torch.Tensor] | None = None  # tests: logits of every sampled position (set before use)

    def embed(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        t = ids if isinstance(ids, torch.Tensor) else torch.tensor(list(ids), dtype=torch.long, device=self.device)
        return self.embed_tokens(t)

    def room(self) -> int:
        return self.capacity - self.length

    def refill(self, prefix: int, keep_from: int) -> None:
        """Keep positions [0, prefix) and [keep_from, length); the second part moves up to `prefix`."""
        if not prefix <= keep_from <= self.length:
            raise ValueError(f"refill({prefix}, {keep_from}) with length {self.length}")
        tail = self.hist[keep_from : self.length].clone()
        self.truncate(prefix)
        self.prefill(tail)

    def prepare(self, with_frame: bool, n: int) -> None:
        """Get the decode for this input shape ready (graph capture, compilation) before the first step."""
        raise NotImplementedError

    def generate(self, pending: torch.Tensor, frame: torch.Tensor | None, n: int) -> torch.Tensor:
        """Feed `pending` (and `frame`), sample `n` tokens, feed all but the last; -> (n,) ids on the device."""
        raise NotImplementedError

    def prefill(self, embeds: torch.Tensor) -> None:
        """Feed (T, hidden) embeddings at the next positions, sampling nothing."""
        if embeds.shape[0] > self.room():
            raise RuntimeError(f"KV cache full: {self.length} + {embeds.shape[0]} > {self.capacity}")
        self._prefill(embeds)

    def _prefill(self, embeds: torch.Tensor) -> None:
        raise NotImplementedError

    def truncate(self, length: int) -> None:
        """Forget every position from `length` on."""
        raise NotImplementedError

    def _record(self, logits: torch.Tensor) -> None:
        if self.trace is not None:
            self.trace.append(logits.detach().float().clone())


class StaticDecoder(DecoderBase):
    def __init__(self, llm: Any, *, capacity: int, sampler: Sampler, device: torch.device, dtype: torch.dtype,
                 optimise: str = "none") -> None:
        super().__init__(llm, capacity=capacity, sampler=sampler, device=device, dtype=dtype)
        cfg = llm.config
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(cfg.num_key_value_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or self.hidden // self.n_heads)
        self.groups = self.n_heads // self.n_kv
        layers = len(llm.model.layers)
        shape = (layers, 1, self.n_kv, capacity, self.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.cos, self.sin = rope_tables(cfg, capacity, self.head_dim, device, dtype)
        self.positions = torch.arange(capacity, device=device)
        self.optimise = optimise
        self._pending = torch.zeros(1, dtype=torch.long, device=device)
        self._frame = torch.zeros(self.hidden, device=device, dtype=dtype)
        self._start = torch.zeros((), dtype=torch.long, device=device)
        self._steps: dict[tuple[bool, int], Accelerated] = {}

    # ---- public ---------------------------------------------------------------------------

    def prepare(self, with_frame: bool, n: int) -> None:
        """Build (capture / compile) the decode for this input shape now, on scratch positions."""
        saved = self.length
        self.length = self.capacity - (n + int(with_frame))
        self._start.fill_(self.length)
        self._step(with_frame, n).prepare()
        self.length = saved

    def generate(self, pending: torch.Tensor, frame: torch.Tensor | None, n: int) -> torch.Tensor:
        fed = 1 + (frame is not None) + n - 1
        if fed > self.room():
            raise RuntimeError(f"KV cache full: {self.length} + {fed} > {self.capacity}")
        self._pending.copy_(pending.reshape(1))
        if frame is not None:
            self._frame.copy_(frame)
        self._start.fill_(self.length)
        ids = self._step(frame is not None, n)().clone()
        self.length += fed
        return ids

    def _prefill(self, embeds: torch.Tensor) -> None:
        for chunk in embeds.split(PREFILL_CHUNK) if embeds.shape[0] else ():
            self._forward(chunk, torch.tensor(self.length, device=self.device), self.length + chunk.shape[0])
            self.length += chunk.shape[0]

    def truncate(self, length: int) -> None:
        self.length = min(self.length, length)  # stale positions are masked until rewritten

    # ---- the step -------------------------------------------------------------------------

    def _step(self, with_frame: bool, n: int) -> Accelerated:
        key = (with_frame, n)
        if key not in self._steps:
            mode = self.optimise if self.trace is None else "none"
            limit = None if mode == "none" else self.capacity  # eager: attend to the filled part only
            step = Accelerated(lambda: self._generate(with_frame, n, limit), mode, name=f"decode{key}",
                               snapshot=self.sampler.snapshot, restore=self.sampler.restore)
            step.prepare()
            self._steps[key] = step
        return self._steps[key]

    def _generate(self, with_frame: bool, n: int, limit: int | None) -> torch.Tensor:
        x = self.embed_tokens(self._pending)
        if with_frame:
            x = torch.cat([x, self._frame[None]])
        fed = x.shape[0]
        upto = limit or self.length + fed + n - 1
        h = self._forward(x, self._start, upto)
        out = []
        for j in range(n):
            logits = self.llm.lm_head(h[-1:]).float()
            self._record(logits)
            tok = self.sampler(logits)
            out.append(tok)
            if j < n - 1:
                h = self._forward(self.embed_tokens(tok), self._start + fed + j, upto)
        return torch.cat(out)

    def _forward(self, x: torch.Tensor, start: torch.Tensor, upto: int) -> torch.Tensor:
        """(T, hidden) embeddings at positions start.. -> (T, hidden) final-normed states.

        Attention reads cache positions [0, upto): the whole capacity in a captured graph (fixed
        shapes), only the filled part when run eagerly.
        """
        t = x.shape[0]
        pos = start + self.positions[:t]
        self.hist.index_copy_(0, pos, x)
        cos, sin = self.cos[pos], self.sin[pos]
        mask = (self.positions[None, :upto] <= pos[:, None]).repeat(self.groups, 1)  # (groups*T, upto)
        h = x[None]
        for i, layer in enumerate(self.llm.model.layers):
            attn = layer.self_attn
            y = layer.input_layernorm(h)
            q = attn.q_proj(y).view(t, self.n_heads, self.head_dim).transpose(0, 1)
            k = attn.k_proj(y).view(t, self.n_kv, self.head_dim).transpose(0, 1)
            v = attn.v_proj(y).view(t, self.n_kv, self.head_dim).transpose(0, 1)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            self.k[i, 0].index_copy_(1, pos, k)
            self.v[i, 0].index_copy_(1, pos, v)
            q = q.reshape(1, self.n_kv, self.groups * t, self.head_dim)  # heads sharing a KV head, stacked
            o = F.scaled_dot_product_attention(q, self.k[i, :, :, :upto], self.v[i, :, :, :upto], attn_mask=mask)
            o = o.view(self.n_heads, t, self.head_dim).transpose(0, 1).reshape(1, t, -1)
            h = h + attn.o_proj(o)
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        return self.llm.model.norm(h)[0]


class DynamicDecoder(DecoderBase):
    """transformers' Qwen2 forward with a DynamicCache, token by token (the eager baseline)."""

    def __init__(self, llm: Any, *, capacity: int, sampler: Sampler, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(llm, capacity=capacity, sampler=sampler, device=device, dtype=dtype)
        self._cache_kw = cache_keyword(llm)
        self._new_cache()

    def prepare(self, with_frame: bool, n: int) -> None:
        pass

    def generate(self, pending: torch.Tensor, frame: torch.Tensor | None, n: int) -> torch.Tensor:
        x = self.embed_tokens(pending.reshape(1))
        if frame is not None:
            x = torch.cat([x, frame[None]])
        fed = x.shape[0] + n - 1
        if fed > self.room():
            raise RuntimeError(f"KV cache full: {self.length} + {fed} > {self.capacity}")
        logits = self._forward(x)
        out = []
        for j in range(n):
            self._record(logits)
            tok = self.sampler(logits)
            out.append(tok)
            if j < n - 1:
                logits = self._forward(self.embed_tokens(tok))
        return torch.cat(out)

    def _prefill(self, embeds: torch.Tensor) -> None:
        for chunk in embeds.split(PREFILL_CHUNK) if embeds.shape[0] else ():
            self._forward(chunk)

    def truncate(self, length: int) -> None:
        if length < self.length:
            if length == 0:
                self._new_cache()
            else:
                self.cache.crop(length - self.length)  # negative: drop that many (transformers 4 and 5)
            self.length = length

    def _new_cache(self) -> None:
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.llm.config)
        self.length = 0

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        self.hist[self.length : self.length + x.shape[0]] = x
        out = self.llm(inputs_embeds=x[None], use_cache=True, logits_to_keep=1, **{self._cache_kw: self.cache})
        self.length += x.shape[0]
        return out.logits[0, -1:].float()
