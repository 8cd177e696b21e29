"""Many covo native-mode conversations on one model, on the same slotted decoder as tiny-fd.

`BatchedCovo` is a `duplex.serve.host.ModelHost` built from a loaded native-mode covo `Model`
(its `CovoNativeBackbone` gives the weights, prefix, refill settings and sampler settings). Each
lane keeps what `CovoNativeBackbone` keeps per conversation (the streaming encoder's audio
window, the sampler's state, the pending token, the text held back by the vocabulary) and owns a
slot of one `SlottedDecoder` cache; the slot's fed embeddings are kept beside it for refills.
Queue, model thread and lateness: `duplex.backbones.batching.StepQueue`.

One batched step, per group of rows (rows in steady state first, answered as soon as they are
done; then rows that open or refill their context):

- open (a new or reset lane): the native prefix fed at position 0 of its slot;
- refill (fewer than 5 free positions): the most recent `keep` positions fed again right after
  the prefix, whose cache is kept (as `DecoderBase.refill`);
- the step: every row feeds its pending token and this step's audio frame, samples a token;
  then three times feeds the token it sampled and samples the next (one forward per token for
  all rows together). The fourth token is the next step's pending input.

The audio encoder still runs per lane (a rolling window re-encoded each step). Turn mode (the
chat model behind a floor policy) has no batched path yet.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from audio_io.format import STEP_SAMPLES
from duplex.backbones.base import TOKENS_PER_STEP, Model
from duplex.backbones.batching import STEP_S, LaneCounters, Served, StepQueue
from duplex.backbones.covo.features import StreamingEncoder
from duplex.backbones.covo.lane_decoder import generate_rows
from duplex.backbones.covo.native import POSITIONS_PER_STEP, CovoNativeBackbone
from duplex.backbones.covo.sampling import Sampler
from duplex.backbones.covo.vocab import Vocab
from duplex.backbones.slotted import SlottedDecoder
from duplex.tokens import BREAK, Token


@dataclass(eq=False)
class CovoLaneState:
    encoder: StreamingEncoder
    sampler: Sampler
    vocab: Vocab  # a copy: the text it holds back is this conversation's
    pending: int = 0
    length: int = 0  # 0: the prefix is fed at the next step
    saw_break: bool = False
    steps: int = 0
    refills: int = 0


class CovoLane:
    """One conversation's backbone on a `BatchedCovo`."""

    def __init__(self, host: BatchedCovo, slot: int, counters: LaneCounters, state: CovoLaneState) -> None:
        self.host = host
        self.slot = slot
        self.counters = counters
        self.state = state

    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        """Queue this chunk for the host's next batched step and wait for its four tokens (a malformed
        chunk fails here, on this lane's thread, never inside the others' batch)."""
        chunk = np.ascontiguousarray(chunk, dtype=np.float32).reshape(STEP_SAMPLES)
        return self.host.steps.submit(self.slot, self.counters, chunk)

    def heard(self, units: int) -> None:
        """As `CovoNativeBackbone.heard`: an unannounced cut makes BREAK the next input."""
        if not self.state.saw_break:
            self.state.pending = self.host.break_id
            self.state.saw_break = True

    def reset(self) -> None:
        self.state.encoder.reset()
        self.state.sampler.reset()
        self.state.length = 0  # the prefix is fed again at the next step
        self.state.saw_break = False

    @property
    def refills(self) -> int:
        return self.state.refills


class BatchedCovo:
    """A `ModelHost` for covo native mode: `capacity` conversations, one model thread."""

    def __init__(self, prototype: Model, *, capacity: int, step_s: float = STEP_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        solo = prototype.backbone
        if not isinstance(solo, CovoNativeBackbone):
            raise TypeError(f"BatchedCovo needs a covo native-mode model, got {type(solo).__name__}")
        self.prototype = prototype
        self.name = prototype.name
        self.capacity = capacity
        self._solo = solo
        dec = solo.decoder
        self.llm = dec.llm
        self.device, self.dtype = dec.device, dec.dtype
        self.context = dec.capacity
        self.prefix_ids = list(solo.prefix_ids)
        self.prefix_len = len(self.prefix_ids) - 1
        self.keep = solo.keep
        self.break_id = solo.break_id
        self.decoder = SlottedDecoder(self.llm, slots=capacity, positions=self.context + 1, device=self.device,
                                      dtype=self.dtype)
        self.hist = torch.zeros(capacity, self.context + 1, dec.hidden, device=self.device, dtype=self.dtype)
        self._lanes: dict[int, CovoLane] = {}
        self.steps: StepQueue[np.ndarray, list[Token]] = StepQueue(
            self._run_slots, name=self.name, capacity=capacity, step_s=step_s, clock=clock)

    # ---- ModelHost ------------------------------------------------------------------------

    def open(self) -> Model:
        slot, counters = self.steps.take()
        enc = self._solo.encoder
        vocab = copy.copy(self._solo.vocab)
        vocab._pending_text = []  # the one per-conversation field of a Vocab
        state = CovoLaneState(
            encoder=StreamingEncoder(enc.model, enc.audio.device, enc.dtype, enc.window_steps),
            sampler=copy.deepcopy(self._solo.decoder.sampler), vocab=vocab)
        lane = self._lanes[slot] = CovoLane(self, slot, counters, state)
        lane.reset()
        return Model(backbone=lane, vocoder=copy.deepcopy(self.prototype.vocoder), name=self.name, can_say=False)

    def close(self, lane: Model) -> None:
        backbone = lane.backbone
        if not isinstance(backbone, CovoLane) or backbone.host is not self:
            raise ValueError("not a lane of this host")
        self.steps.give_back(backbone.slot, backbone.counters)

    def usage(self) -> dict[str, int | float]:
        return self.steps.usage()

    def shutdown(self) -> None:
        self.steps.shutdown()

    # ---- the batched step -----------------------------------------------------------------

    def _run_slots(self, rows: Sequence[tuple[int, np.ndarray]], served: Served) -> None:
        self.run_batch([(self._lanes[slot], chunk) for slot, chunk in rows], served)

    @torch.no_grad()
    def run_batch(self, batch: Sequence[tuple[CovoLane, np.ndarray]], served: Served | None = None
                  ) -> list[list[Token]]:
        """One batched step over (lane, chunk) rows, one per lane: the tokens of each."""
        frames = []
        for lane, chunk in batch:
            lane.state.encoder.push(chunk)
            frames.append(lane.state.encoder.encode())
        results: list[list[Token]] = [[] for _ in batch]
        rebuild = [i for i, (lane, _) in enumerate(batch)
                   if lane.state.length == 0 or self.context - lane.state.length < POSITIONS_PER_STEP]
        steady = [i for i in range(len(batch)) if i not in set(rebuild)]
        for rows in (steady, rebuild):
            if not rows:
                continue
            lanes = [batch[i][0] for i in rows]
            self._open_or_refill([lane for lane in lanes if lane.state.length == 0], prefix=True)
            self._open_or_refill([lane for lane in lanes if lane.state.length > 0
                                  and self.context - lane.state.length < POSITIONS_PER_STEP], prefix=False)
            ids = self._generate(lanes, [frames[i] for i in rows])
            for i, lane, lane_ids in zip(rows, lanes, ids, strict=True):
                tokens = [lane.state.vocab.token(t) for t in lane_ids]
                lane.state.saw_break = BREAK in tokens
                lane.state.steps += 1
                results[i] = tokens
            if served is not None:
                served(rows, [results[i] for i in rows])
        return results

    def _open_or_refill(self, lanes: list[CovoLane], *, prefix: bool) -> None:
        """Open (the prefix at 0) or refill (the last `keep` positions again after the prefix) these slots."""
        if not lanes:
            return
        if prefix:
            embeds = [self.llm.model.embed_tokens(torch.tensor(self.prefix_ids[:-1], device=self.device))] * len(lanes)
        else:
            embeds = [self.hist[lane.slot, lane.state.length - self.keep: lane.state.length].clone() for lane in lanes]
        start = 0 if prefix else self.prefix_len
        self._feed(lanes, embeds, [start] * len(lanes))
        for lane, e in zip(lanes, embeds, strict=True):
            lane.state.length = start + e.shape[0]
            if prefix:
                lane.state.pending = self.prefix_ids[-1]
                lane.state.saw_break = False
            else:
                lane.state.refills += 1

    def _generate(self, lanes: list[CovoLane], frames: list[torch.Tensor]) -> list[list[int]]:
        """Feed each lane's pending token and frame, sample four tokens (feeding the first three)."""
        out = generate_rows(self.decoder, [lane.slot for lane in lanes],
                            [torch.tensor([lane.state.pending], device=self.device) for lane in lanes], frames,
                            [lane.state.length for lane in lanes], [lane.state.sampler for lane in lanes],
                            [self.hist[lane.slot] for lane in lanes], TOKENS_PER_STEP)
        for lane, ids in zip(lanes, out, strict=True):
            lane.state.length += POSITIONS_PER_STEP
            lane.state.pending = ids[-1]
        return out

    def _feed(self, lanes: list[CovoLane], embeds: list[torch.Tensor], starts: list[int]) -> torch.Tensor:
        """One decoder forward for these lanes; their fed embeddings are kept for refills."""
        for lane, e, start in zip(lanes, embeds, starts, strict=True):
            self.hist[lane.slot, start: start + e.shape[0]] = e
        return self.decoder.forward([lane.slot for lane in lanes], embeds, starts)
