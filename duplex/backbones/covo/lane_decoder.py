"""Covo's decoder interface over one slot of a shared slotted cache, its forwards batched.

`LaneDecoder` is a `DecoderBase` (the interface `ChatContext` and `CovoNativeBackbone` drive) for
one conversation: it keeps that conversation's length, fed embeddings (`hist`, for refills) and
sampler, and sends every forward to a `DecoderService`. The service's one model thread takes every
call pending and runs them together: the prefills in one padded forward, the `generate` calls of
the same shape (with or without a frame, same number of tokens) as one batched generation: feed
each row's pending token (and frame), sample, then feed what was sampled and sample again, one
forward for all rows per token. Each row samples with its own sampler.

A lane's calls block its own thread (the lane's `ModelWorker`), exactly as a solo decoder's
compute would; calls from different conversations that are pending at the same time share
forwards. Queue and model thread: `duplex.backbones.batching.StepQueue` (lateness not counted:
a conversation makes any number of calls per step, or none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from duplex.backbones.batching import LaneCounters, Served, StepQueue
from duplex.backbones.covo.decoder import PREFILL_CHUNK, DecoderBase
from duplex.backbones.covo.sampling import Sampler
from duplex.backbones.slotted import SlottedDecoder


@dataclass(frozen=True, eq=False)
class _Prefill:
    embeds: torch.Tensor  # (T, hidden)
    start: int


@dataclass(frozen=True, eq=False)
class _Generate:
    lane: LaneDecoder
    pending: torch.Tensor  # (1,) id
    frame: torch.Tensor | None  # (hidden,)
    n: int
    start: int


class DecoderService:
    """`slots` conversations' decoders on one model thread over one `SlottedDecoder`."""

    def __init__(self, llm: Any, *, slots: int, positions: int, device: torch.device, dtype: torch.dtype,
                 name: str) -> None:
        self.llm = llm
        self.device, self.dtype = device, dtype
        self.positions = positions
        self.decoder = SlottedDecoder(llm, slots=slots, positions=positions + 1, device=device, dtype=dtype)
        self.calls: StepQueue[_Prefill | _Generate, torch.Tensor | None] = StepQueue(
            self._run, name=name, capacity=slots, count_late=False)

    def lane(self, sampler: Sampler) -> LaneDecoder:
        slot, counters = self.calls.take()
        return LaneDecoder(self, slot, counters, sampler=sampler)

    def release(self, lane: LaneDecoder) -> None:
        self.calls.give_back(lane.slot, lane.counters)

    def shutdown(self) -> None:
        self.calls.shutdown()

    # ---- the model thread -----------------------------------------------------------------

    @torch.no_grad()
    def _run(self, rows: Sequence[tuple[int, _Prefill | _Generate]], served: Served) -> None:
        prefills = [i for i, (_, call) in enumerate(rows) if isinstance(call, _Prefill)]
        if prefills:
            calls = [rows[i][1] for i in prefills]
            self.decoder.forward([rows[i][0] for i in prefills], [c.embeds for c in calls],  # type: ignore[union-attr]
                                 [c.start for c in calls])  # type: ignore[union-attr]
            served(prefills, [None] * len(prefills))
        shapes: dict[tuple[bool, int], list[int]] = {}
        for i, (_, call) in enumerate(rows):
            if isinstance(call, _Generate):
                shapes.setdefault((call.frame is not None, call.n), []).append(i)
        for (_, n), group in shapes.items():
            calls = [rows[i][1] for i in group]
            ids = generate_rows(self.decoder, [rows[i][0] for i in group], [c.pending for c in calls],  # type: ignore[union-attr]
                                [c.frame for c in calls], [c.start for c in calls],  # type: ignore[union-attr]
                                [c.lane.sampler for c in calls], [c.lane.hist for c in calls], n)  # type: ignore[union-attr]
            served(group, [torch.tensor(row, device=self.device) for row in ids])


def generate_rows(decoder: SlottedDecoder, slots: list[int], pending: list[torch.Tensor],
                  frames: Sequence[torch.Tensor | None], starts: list[int], samplers: Sequence[Sampler],
                  hists: Sequence[torch.Tensor], n: int) -> list[list[int]]:
    """For each row: feed its pending id (and frame) at `starts[b]`, sample `n` ids with its own
    sampler, feeding all but the last; the fed embeddings are written to `hists[b]`."""
    embed = decoder.llm.model.embed_tokens
    first = embed(torch.cat([p.reshape(1) for p in pending]))
    inputs = [x[None] if f is None else torch.stack([x, f.to(x.dtype)]) for x, f in zip(first, frames, strict=True)]
    positions = list(starts)
    out: list[list[int]] = [[] for _ in slots]
    for j in range(n):
        for hist, x, start in zip(hists, inputs, positions, strict=True):
            hist[start: start + x.shape[0]] = x
        logits = decoder.logits(decoder.forward(slots, inputs, positions)).float()
        positions = [start + x.shape[0] for start, x in zip(positions, inputs, strict=True)]
        toks = [sampler(logits[b: b + 1]) for b, sampler in enumerate(samplers)]
        for ids, tok in zip(out, toks, strict=True):
            ids.append(int(tok))
        if j < n - 1:
            inputs = list(embed(torch.cat(toks))[:, None])
    return out


class LaneDecoder(DecoderBase):
    """One conversation's decoder: its own length, history and sampler; forwards on the service."""

    def __init__(self, service: DecoderService, slot: int, counters: LaneCounters, *, sampler: Sampler) -> None:
        super().__init__(service.llm, capacity=service.positions, sampler=sampler, device=service.device,
                         dtype=service.dtype)
        self.service = service
        self.slot = slot
        self.counters = counters

    def prepare(self, with_frame: bool, n: int) -> None:
        pass  # eager: nothing to capture

    def generate(self, pending: torch.Tensor, frame: torch.Tensor | None, n: int) -> torch.Tensor:
        fed = 1 + (frame is not None) + n - 1
        if fed > self.room():
            raise RuntimeError(f"KV cache full: {self.length} + {fed} > {self.capacity}")
        ids = self.service.calls.submit(self.slot, self.counters, _Generate(self, pending, frame, n, self.length))
        self.length += fed
        assert ids is not None
        return ids

    def _prefill(self, embeds: torch.Tensor) -> None:
        for chunk in embeds.split(PREFILL_CHUNK) if embeds.shape[0] else ():
            self.hist[self.length: self.length + chunk.shape[0]] = chunk
            self.service.calls.submit(self.slot, self.counters, _Prefill(chunk, self.length))
            self.length += chunk.shape[0]

    def truncate(self, length: int) -> None:
        self.length = min(self.length, length)  # stale positions are masked until rewritten
