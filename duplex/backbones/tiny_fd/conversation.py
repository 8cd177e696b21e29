"""One tiny-fd conversation's state and its grammar, apart from where its KV cache lives.

A step has three phases; only the middle one touches the decoder, so the solo backbone (its own
transformers cache) and the batched host (one slot of a shared cache) run the same code around it:

- prepare: the chunk and the echo reference -> encoder input frames (`features`); the positions to
  feed (`inputs`, or `refill_inputs` when the context is full) once the encoder has made the step's
  user embedding;
- forward: the caller's (the logits at the last fed position);
- decide: the grammar's choice (`decide`: mask, thresholds, the barge-in rules of barge_in.py), the reply to start
  after a SHIFT (`reply_start`, read from the second pass's logits), and the step's four tokens
  (`complete`), which become the next step's pending input.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from audio_io.format import STEP_SAMPLES, rms
from duplex.backbones.framebank import FrameBank, FrameBankVocoder
from duplex.backbones.tiny_fd import vocab as V
from duplex.backbones.tiny_fd.barge_in import NO_CUES, BargeInRules, RuleSettings
from duplex.backbones.tiny_fd.features import LogMel, MelStream
from duplex.backbones.tiny_fd.model import TinyFd
from duplex.backbones.tiny_fd.user_voice import REARM_LEVEL

__all__ = ["REARM_LEVEL", "Conversation", "ConversationHooks"]


class Conversation:
    """Everything one conversation carries from step to step, but the KV cache itself.

    `length` counts the positions its cache holds (0: empty, the next step refills it); the owner of
    the cache keeps the two in step through `fed`.
    """

    def __init__(self, mel: LogMel, replies: list[tuple[int, int]], bank: FrameBank, *, budget: int, window: int,
                 thresholds: dict[int, float], rules: RuleSettings = NO_CUES) -> None:
        self.replies = replies
        self.voice = FrameBankVocoder(bank)  # what the model's own units sound like: the default echo reference
        self.budget = budget
        self.thresholds = thresholds
        self.mic_mel = MelStream(mel)
        self.ref_mel = MelStream(mel)
        self.history: deque[tuple[torch.Tensor, list[int]]] = deque(maxlen=window)
        self.refills = 0
        self.rules = BargeInRules(rules)
        self.reset()

    def reset(self) -> None:
        self.floor = V.Floor(self.replies)
        self.mic_mel.reset()
        self.ref_mel.reset()
        self.enc_states: list[torch.Tensor] | None = None
        self.length = 0  # positions in the cache
        self.pending: list[int] = []  # forced tokens not yet fed
        self.history.clear()
        self.last_units: list[int] = []
        self.rearm = False  # after a cut from outside: no SHIFT until the user makes a sound
        self.played = 0.0  # RMS of what the speaker plays during this step's chunk
        self.rules.reset()

    def heard(self, units: int) -> None:
        """A turn was cut. After the model's own BREAK there is nothing to undo: units are played as
        they are emitted. A cut from outside (an operator's stop, a device error) leaves the model
        mid-reply: stop the reply here, so it listens (and may take the turn) from the next step."""
        if self.floor.speaking:
            self.floor.speaking = False
            self.last_units = []  # nothing of the reply is playing: no echo reference
            self.rearm = True  # and no new turn until the user has spoken again

    # ---- the reply, for a responder that speaks in the model's place (duplex.backbones.floor) --

    def units_left(self) -> int:
        """Units of the current reply not yet emitted (0 while listening)."""
        return self.floor.end - self.floor.cursor if self.floor.speaking else 0

    def rewind_reply(self, unit: int) -> None:
        """Go on with the current reply from `unit` again (its context sees the same units twice)."""
        if self.floor.speaking:
            self.floor.cursor = unit

    def end_reply(self) -> None:
        """The reply ends here: the grammar closes it (EOT) at the next step."""
        if self.floor.speaking:
            self.floor.end = self.floor.cursor

    # ---- prepare --------------------------------------------------------------------------

    def features(self, chunk: np.ndarray, reference: np.ndarray | None = None) -> torch.Tensor:
        """(1, 2 * mels, 16) encoder input: the chunk's mel frames beside the reference's."""
        mic, ref = self.signals(chunk, reference)
        return torch.cat([self.mic_mel(mic), self.ref_mel(ref)], dim=1)

    def signals(self, chunk: np.ndarray, reference: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, STEP_SAMPLES) microphone and echo reference of this step, for `mic_mel` and `ref_mel`.

        `reference` is the audio the speaker played during this chunk; None means the model's own
        units of the last step (what it plays when it speaks for itself)."""
        mic = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).reshape(1, STEP_SAMPLES)
        ref = np.zeros(STEP_SAMPLES, dtype=np.float32)
        played = self.voice.decode(self.last_units[:4]) if reference is None else reference
        ref[: played.size] = played
        self.played = rms(ref)
        return mic, torch.from_numpy(ref)[None]

    def needs_refill(self) -> bool:
        """The cache is empty, or this step (and a SHIFT's second pass) would overrun the budget."""
        return self.length == 0 or self.length + len(self.pending) + 2 > self.budget

    def inputs(self, net: TinyFd, user: torch.Tensor) -> torch.Tensor:
        """(1, T, H): last step's unfed tokens, then this step's (1, 1, H) user embedding."""
        if not self.pending:
            return user
        return torch.cat([net.embed_tokens(torch.tensor([self.pending])), user], dim=1)

    def refill_inputs(self, net: TinyFd, user: torch.Tensor) -> torch.Tensor:
        """(1, T, H) for a fresh cache: the fixed prefix, the recent window, this step's user embedding.
        The cache is counted empty from here; the caller feeds these at position 0."""
        parts = [net.embed_tokens(torch.tensor([[V.BOS]]))]
        for emb, tokens in self.history:
            parts += [emb[None, None], net.embed_tokens(torch.tensor([tokens]))]
        parts.append(user)
        self.length = 0
        self.pending = []
        self.refills += 1
        return torch.cat(parts, dim=1)

    def fed(self, positions: int) -> None:
        self.length += positions

    # ---- decide ---------------------------------------------------------------------------

    def prepare(self, chunk: np.ndarray) -> None:
        """Before the step, on the conversation's own thread: the rules' verdicts that need no
        model worked out (BargeInRules.prepare)."""
        self.rules.prepare(chunk, self.floor.decision() == V.SPEAK_DECISION)

    def decide(self, logits: torch.Tensor, chunk: np.ndarray) -> int:
        """The step's first token from the logits at the user embedding, under the barge-in rules. A
        rule that takes the turn for the network (a clear question, a turn it never claims) does not
        take it where the grammar forbids one: after a cut from outside, until the user speaks."""
        allowed = self.allowed(chunk)
        token = self.rules.filter(self.choose(logits, allowed), self.floor.decision(), chunk, self.played)
        return V.THINK if token == V.SHIFT and V.SHIFT not in allowed else token

    def reply_start(self, logits: torch.Tensor) -> int:
        """After SHIFT: the first unit of the reply to start, from the logits at the SHIFT."""
        starts = self.floor.starts()
        return starts[int(torch.argmax(logits[starts]))]

    def complete(self, user: torch.Tensor, first: int, start: int | None) -> list[int]:
        """The step's four tokens; those the decoder has not seen become the next step's input."""
        tokens = self.floor.complete(first, start)
        self.pending = tokens[1 if first == V.SHIFT else 0:]  # a SHIFT was fed by the second pass
        self.history.append((user.reshape(-1), tokens))
        self.last_units = [t - V.UNIT0 for t in tokens if t >= V.UNIT0]
        return tokens

    def allowed(self, chunk: np.ndarray) -> list[int]:
        """The grammar's choices, less SHIFT after a cut from outside until the user makes a sound:
        an operator's stop must not be followed by a new reply into the silence."""
        allowed = self.floor.allowed_first()
        if self.rearm and rms(chunk) > REARM_LEVEL:
            self.rearm = False
        if self.rearm:
            return [t for t in allowed if t != V.SHIFT]
        return allowed

    def choose(self, logits: torch.Tensor, allowed: list[int]) -> int:
        """Argmax over the legal tokens, except that SHIFT and BREAK need their own probability."""
        probs = torch.softmax(logits[allowed], dim=0)
        order = torch.argsort(probs, descending=True).tolist()
        for i in order:
            token = allowed[i]
            if token not in self.thresholds or float(probs[i]) >= self.thresholds[token]:
                return token
        return allowed[order[0]]


class ConversationHooks:
    """What a tiny-fd backbone that carries one `Conversation` offers around it, solo or on a lane:
    the reply hooks a responder uses when it speaks in the model's place (`duplex.backbones.floor`),
    and the figures tests and benchmarks read."""

    conversation: Conversation

    @property
    def speaking(self) -> bool:
        """The grammar is in a reply (possibly held, or about to close it with EOT)."""
        return self.conversation.floor.speaking

    def units_left(self) -> int:
        return self.conversation.units_left()

    def rewind_reply(self, unit: int) -> None:
        self.conversation.rewind_reply(unit)

    def end_reply(self) -> None:
        self.conversation.end_reply()

    @property
    def cache_positions(self) -> int:
        return self.conversation.length

    @property
    def refills(self) -> int:
        return self.conversation.refills
