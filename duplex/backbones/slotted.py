"""A Qwen2 decoder forward written out over a slotted KV cache: many conversations, one pass.

The cache is one pair of tensors shaped (layers, slots, kv_heads, positions, head_dim); a
conversation owns a slot and the caller tracks how many positions of it are filled. `forward`
feeds B rows at once, each into its own slot, each with its own number of new positions starting
at its own position:

- rows are padded on the right to the longest; a padded position is never written to the cache
  (it stands at its row's last real position, so it needs no room past the row's end) and its
  output is dropped;
- RoPE is applied per row (positions start_b .. start_b + T - 1);
- a row's query at position p attends to its slot's positions [0, p] only (the mask), so rows never
  see each other and a slot's stale tail never leaks in.

Nothing here is specific to a model's input side (tiny-fd's user embeddings, covo's audio frames):
callers pass input embeddings and read final-normed hidden states, and apply `lm_head` to the rows
they need. A refill (a slot rebuilt from its window) is just a forward at start 0 with many
positions; callers run refills as their own pass so that ordinary rows are never padded to a
refill's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F


class SlottedDecoder:
    """The layers of a transformers Qwen2 model (`llm.model`), run over a cache of `slots` slots of
    `positions` positions each."""

    def __init__(self, llm: Any, *, slots: int, positions: int, device: torch.device | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        cfg = llm.config
        self.llm = llm
        self.slots = slots
        self.positions = positions
        self.hidden = int(cfg.hidden_size)
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(cfg.num_key_value_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or self.hidden // self.n_heads)
        self.groups = self.n_heads // self.n_kv
        device = device or next(llm.parameters()).device
        shape = (len(llm.model.layers), slots, self.n_kv, positions, self.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.cos, self.sin = rope_tables(cfg, positions, self.head_dim, device, dtype)
        self.arange = torch.arange(positions, device=device)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.llm.lm_head(hidden)

    @torch.inference_mode()
    def forward(self, slots: Sequence[int], embeds: Sequence[torch.Tensor], starts: Sequence[int]) -> torch.Tensor:
        """Feed `embeds[b]` ((T_b, hidden)) into slot `slots[b]` at positions `starts[b]` on;
        -> (B, hidden) final-normed hidden state at each row's last fed position."""
        lengths = [int(e.shape[0]) for e in embeds]
        b, t = len(embeds), max(lengths)
        ends = [s + n for s, n in zip(starts, lengths, strict=True)]
        if min(lengths) < 1 or max(ends) > self.positions:
            raise ValueError(f"rows of {lengths} positions at {list(starts)} do not fit {self.positions} positions")
        x = embeds[0][None] if b == 1 else torch.nn.utils.rnn.pad_sequence(list(embeds), batch_first=True)
        rows = torch.tensor(list(slots), device=x.device)
        start = torch.tensor(list(starts), device=x.device)[:, None]
        pos = start + self.arange[None, :t]  # (B, T)
        ragged = min(lengths) != t
        if ragged:  # a padded position stands at its row's last real one: written nowhere, read by no one
            valid = self.arange[None, :t] < torch.tensor(lengths, device=x.device)[:, None]
            pos = torch.where(valid, pos, start + torch.tensor(lengths, device=x.device)[:, None] - 1)
            at = (rows[:, None].expand(b, t)[valid], pos[valid])
        else:
            at = (rows[:, None], pos)
        upto = max(ends)
        cos, sin = self.cos[pos][:, None], self.sin[pos][:, None]  # (B, 1, T, head_dim)
        mask = (self.arange[None, None, :upto] <= pos[:, :, None])  # (B, T, upto)
        mask = mask[:, None].expand(b, self.groups, t, upto).reshape(b, 1, self.groups * t, upto)
        h = x
        for i, layer in enumerate(self.llm.model.layers):
            attn = layer.self_attn
            y = layer.input_layernorm(h)
            q = attn.q_proj(y).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(y).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
            v = attn.v_proj(y).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            k, v = k.transpose(1, 2), v.transpose(1, 2)  # (B, T, kv, head_dim)
            self.k[i][at[0], :, at[1]] = k[valid] if ragged else k  # into each row's slot
            self.v[i][at[0], :, at[1]] = v[valid] if ragged else v
            keys, values = self._read(i, rows, slots, upto)
            q = q.reshape(b, self.n_kv, self.groups * t, self.head_dim)  # query heads sharing a KV head, stacked
            o = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
            o = o.view(b, self.n_heads, t, self.head_dim).transpose(1, 2).reshape(b, t, -1)
            h = h + attn.o_proj(o)
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        last = torch.tensor([n - 1 for n in lengths], device=x.device)
        return self.llm.model.norm(h[torch.arange(b, device=x.device), last])

    def _read(self, layer: int, rows: torch.Tensor, slots: Sequence[int], upto: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, kv, upto, head_dim) keys and values of the rows' slots: a view when the slots are
        consecutive, else a gather."""
        first, last = slots[0], slots[0] + len(slots)
        if list(slots) == list(range(first, last)):
            return self.k[layer, first:last, :, :upto], self.v[layer, first:last, :, :upto]
        return (self.k[layer, :, :, :upto].index_select(0, rows),  # index_select: a fraction of advanced
                self.v[layer, :, :, :upto].index_select(0, rows))  # indexing's cost on CPU


def rope_tables(cfg: Any, positions: int, head_dim: int, device: torch.device,
                dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin per position, computed in float32 like transformers' default RoPE."""
    params = getattr(cfg, "rope_parameters", None) or {}
    theta = float(params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim)
    freqs = torch.outer(torch.arange(positions, dtype=torch.float32), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(device, dtype), emb.sin().to(device, dtype)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin
