"""Many tiny-fd conversations on one model: every pending step joins one batched forward.

`BatchedTinyFd` is a `duplex.serve.host.ModelHost`. Each conversation gets a *lane*: an ordinary
`Model` whose backbone (`TinyFdLane`) keeps that conversation's state (a `Conversation`: grammar,
streaming features, encoder state, window) and owns one slot of the host's slotted KV cache. A
lane's `step` runs on the lane's own `ModelWorker` thread; it queues its request for its shard's
model thread (one shard by default; two use two cores) and blocks until that thread has served it.
Before it queues, the lane works out on its own thread what the cue rules will ask at this step
(`BargeInRules.prepare`: the cue network's verdict, its recogniser catching up), which on the
model thread would hold every lane's step.

A model thread batches continuously: it takes every request pending, runs one batched step over
them, resolves them, and repeats. A lane that has not sent its chunk is simply not in the batch;
nobody waits for it. One batched step is:

1. ONE log-mel pass over every row's chunk and echo reference (each with its own stream's tail),
   then ONE encoder pass over all rows (the causal convs' states concatenated along the batch);
2. ONE decoder forward for the rows in steady state (each row feeds its pending tokens and user
   embedding at its own position), the grammar per row (the same `Conversation` code as the solo
   backbone), ONE second pass for the rows that chose SHIFT; these rows are answered now;
3. the same for the rows whose context is full, each rebuilt from its window at position 0, in a
   forward of their own: a refill never pads the others' forward nor delays their answer.

`heard` and `reset` of a lane touch only its own `Conversation` (its slot is refilled from
position 0 at its next step); they run on the lane's thread between its steps, when the model
thread does not touch that lane.

The queue, the model thread, joining and leaving, and what counts as a *late* step are
`duplex.backbones.batching.StepQueue`'s (shared with covo's batched host).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from audio_io.format import STEP_SAMPLES
from duplex.backbones.base import Model
from duplex.backbones.batching import STEP_S, LaneClosed, LaneCounters, Served, StepQueue, usage_of
from duplex.backbones.framebank import FrameBankVocoder
from duplex.backbones.slotted import SlottedDecoder
from duplex.backbones.tiny_fd import vocab as V
from duplex.backbones.tiny_fd.conversation import Conversation, ConversationHooks
from duplex.backbones.tiny_fd.features import MelStream
from duplex.backbones.tiny_fd.model import SLOTS
from duplex.backbones.tiny_fd.runtime import TinyFdBackbone, to_tokens
from duplex.tokens import Token

__all__ = ["BatchedTinyFd", "LaneClosed", "TinyFdLane"]

Audio = tuple[np.ndarray, "np.ndarray | None"]  # a chunk and its echo reference (None: the model's own voice)
LaneRow = tuple["TinyFdLane", np.ndarray, "np.ndarray | None"]


class TinyFdLane(ConversationHooks):
    """One conversation's backbone on a `BatchedTinyFd`: its own state, its shard's compute."""

    def __init__(self, shard: _Shard, slot: int, counters: LaneCounters, conversation: Conversation) -> None:
        self.shard = shard
        self.slot = slot  # in its shard's cache
        self.counters = counters  # served, late, skipped
        self.conversation = conversation

    @property
    def host(self) -> BatchedTinyFd:
        return self.shard.host

    def step(self, chunk: np.ndarray, reference: np.ndarray | None = None) -> Sequence[Token]:
        """Queue this chunk for the shard's next batched step and wait for its four tokens.
        A malformed chunk fails here, on this lane's thread, never inside the others' batch; so does
        anything the cue rules need (the cue network, the recogniser's catching up), which would
        otherwise hold every lane's step."""
        chunk = np.ascontiguousarray(chunk, dtype=np.float32).reshape(STEP_SAMPLES)
        if reference is not None and np.asarray(reference).size > STEP_SAMPLES:
            raise ValueError(f"a step's reference has at most {STEP_SAMPLES} samples, got {np.asarray(reference).size}")
        self.conversation.prepare(chunk)  # the cue verdicts, here: never on the shared model thread
        return self.shard.steps.submit(self.slot, self.counters, (chunk, reference))

    def heard(self, units: int) -> None:
        self.conversation.heard(units)

    def reset(self) -> None:
        self.conversation.reset()  # length 0: the slot is refilled from the start at the next step


class _Shard:
    """One model thread's part of a host: its slots, their slotted cache, their lanes."""

    def __init__(self, host: BatchedTinyFd, index: int, slots: int, step_s: float, clock: Callable[[], float]) -> None:
        self.host = host
        self.decoder = SlottedDecoder(host.net.llm, slots=slots, positions=host.positions)
        self.lanes: dict[int, TinyFdLane] = {}  # by slot (a closed lane stays until its slot is taken again)
        self.steps: StepQueue[Audio, list[Token]] = StepQueue(
            self._run, name=f"{host.name}#{index}", capacity=slots, step_s=step_s, clock=clock)

    def _run(self, rows: Sequence[tuple[int, Audio]], served: Served) -> None:
        self.host.run_batch([(self.lanes[slot], chunk, reference) for slot, (chunk, reference) in rows], served)


class BatchedTinyFd:
    """A `ModelHost` for tiny-fd: `capacity` conversations batched on `shards` model threads.

    One shard (the default) is one model thread, one core. With two, the slots are split between
    two threads, each batching its own lanes over its own cache: torch runs both at once (it
    releases the GIL), so a 2-core machine uses both cores. A new lane goes to the shard with the
    most free slots."""

    def __init__(self, prototype: Model, *, capacity: int, shards: int = 1, step_s: float = STEP_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        solo = prototype.backbone
        if not isinstance(solo, TinyFdBackbone):
            raise TypeError(f"BatchedTinyFd needs a tiny-fd model, got {type(solo).__name__}")
        if not 1 <= shards <= capacity:
            raise ValueError(f"shards must be between 1 and the capacity ({capacity}), got {shards}")
        self.prototype = prototype
        self.name = prototype.name
        self.capacity = capacity
        self._solo = solo
        self.net = solo.net
        self.positions = solo.budget + SLOTS
        self._opening = threading.Lock()
        self.shards = [_Shard(self, i, capacity // shards + (i < capacity % shards), step_s, clock)
                       for i in range(shards)]

    # ---- ModelHost ------------------------------------------------------------------------

    def open(self) -> Model:
        with self._opening:
            shard = max(self.shards, key=lambda s: s.steps.free)
            slot, counters = shard.steps.take()
        solo = self._solo
        conversation = Conversation(self.net.mel, solo.replies, solo.bank, budget=solo.budget,
                                    window=solo.window, thresholds=solo.thresholds,
                                    rules=solo.rule_settings)
        lane = shard.lanes[slot] = TinyFdLane(shard, slot, counters, conversation)
        return Model(backbone=lane, vocoder=FrameBankVocoder(solo.bank), name=self.name,
                     can_say=self.prototype.can_say)

    def close(self, lane: Model) -> None:
        backbone = lane.backbone
        if not isinstance(backbone, TinyFdLane) or backbone.host is not self:
            raise ValueError("not a lane of this host")
        backbone.shard.steps.give_back(backbone.slot, backbone.counters)

    def usage(self) -> dict[str, int | float]:
        return usage_of([shard.steps for shard in self.shards])

    def shutdown(self) -> None:
        for shard in self.shards:
            shard.steps.shutdown()

    # ---- the batched step -----------------------------------------------------------------

    @torch.inference_mode()
    def run_batch(self, batch: Sequence[LaneRow],
                  served: Served | None = None) -> list[list[Token]]:
        """One batched step over (lane, chunk, reference) rows, one per lane, all of one shard: the
        tokens of each.

        Rows in steady state are finished first and handed to `served` (row indices, their tokens)
        before the rows that refill run their longer forward: a refill never delays the others.
        A shard's model thread runs this; a benchmark may call it directly on lanes that no thread steps."""
        convs = [lane.conversation for lane, _, _ in batch]
        users = [u[None] for u in self._encode(self._features(batch), convs)]  # (1, 1, H) each
        results: list[list[Token]] = [[] for _ in batch]
        refill = [i for i, c in enumerate(convs) if c.needs_refill()]
        steady = [i for i in range(len(batch)) if i not in set(refill)]
        for rows, refilling in ((steady, False), (refill, True)):
            if not rows:
                continue
            embeds = [(convs[i].refill_inputs if refilling else convs[i].inputs)(self.net, users[i])[0] for i in rows]
            logits = self._feed(batch, rows, embeds)
            firsts = [convs[i].decide(lg, batch[i][1]) for i, lg in zip(rows, logits, strict=True)]
            shifts = [j for j, first in enumerate(firsts) if first == V.SHIFT]
            starts: list[int | None] = [None] * len(rows)
            if shifts:
                shift = self.net.embed_tokens(torch.tensor([V.SHIFT]))
                second = self._feed(batch, [rows[j] for j in shifts], [shift] * len(shifts))
                for j, lg in zip(shifts, second, strict=True):
                    starts[j] = convs[rows[j]].reply_start(lg)
            for i, first, start in zip(rows, firsts, starts, strict=True):
                results[i] = to_tokens(convs[i].complete(users[i], first, start))
            if served is not None:
                served(rows, [results[i] for i in rows])
        return results

    def _features(self, batch: Sequence[LaneRow]) -> torch.Tensor:
        """(B, 2 * mels, 16) encoder input: one log-mel pass over every row's microphone and reference,
        each continuing its own stream (`MelStream`'s tail)."""
        streams: list[MelStream] = []
        signals: list[torch.Tensor] = []
        for lane, chunk, reference in batch:
            mic, ref = lane.conversation.signals(chunk, reference)
            streams += [lane.conversation.mic_mel, lane.conversation.ref_mel]
            signals += [mic, ref]
        audio = torch.cat([torch.cat([s.tail, x], dim=-1) for s, x in zip(streams, signals, strict=True)])
        for i, stream in enumerate(streams):
            stream.tail = audio[i: i + 1, audio.shape[1] - stream.tail.shape[1]:]
        mel = self.net.mel(audio)  # (2 B, mels, 16): mic, ref, mic, ref, ...
        return torch.cat([mel[0::2], mel[1::2]], dim=1)

    def _encode(self, feats: torch.Tensor, convs: list[Conversation]) -> torch.Tensor:
        """(B, 2 * mels, 16) frames -> (B, 1, H) user embeddings, each row with its own conv state."""
        layers = self.net.encoder.layers
        states = [torch.cat([c.enc_states[j] if c.enc_states is not None
                             else feats.new_zeros(1, layer.conv.in_channels, layer.left) for c in convs])
                  for j, layer in enumerate(layers)]
        users, new_states = self.net.encoder(feats, states)
        for i, c in enumerate(convs):
            c.enc_states = [s[i: i + 1] for s in new_states]
        return users

    def _feed(self, batch: Sequence[LaneRow], rows: list[int],
              embeds: list[torch.Tensor]) -> torch.Tensor:
        """One decoder forward for `rows` of the batch, each at its conversation's length: (rows, vocab) logits."""
        lanes = [batch[i][0] for i in rows]
        convs = [lane.conversation for lane in lanes]
        decoder = lanes[0].shard.decoder
        hidden = decoder.forward([lane.slot for lane in lanes], embeds, [c.length for c in convs])
        for c, e in zip(convs, embeds, strict=True):
            c.fed(e.shape[0])
        return decoder.logits(hidden)
