"""The turn-mode conversation as the LLM sees it: system prompt, user turns, the reply in flight.

Context layout, the released chat format with every reply closed by `<|im_end|>`:

    <|im_start|>system\n{system}<|im_end|>\n                       fixed prefix, never dropped
    <|im_start|>user\n<|begofcAUDIO|><|cAUDIO|>*n<|endofcAUDIO|><|im_end|>\n<|im_start|>assistant\n
    {reply: text and speech tokens}<|im_end|>\n                        closed when it ends or is cut
    <|im_start|>user\n...                                               next turn

The reply is decoded in bursts (`burst_tokens` per device call, one host sync each) and buffered
ahead of the speaker. When the user cuts in, the reply is truncated right after the last speech
unit the user heard (text before it is kept) and closed, so the next turn starts from what was
actually said. When the next turn would not fit, the oldest whole turns are dropped and the rest
refilled behind the system prompt.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from duplex.backbones.covo.decoder import DecoderBase
from duplex.backbones.covo.features import UtteranceEncoder
from duplex.backbones.covo.vocab import Vocab, system_turn, user_turn


@dataclass(slots=True)
class Reply:
    start: int  # cache position of the reply's first token
    budget: int  # most tokens it may produce
    prompt_last: int  # the prompt's last token, fed with the first burst
    tokens: list[int] = field(default_factory=list)  # sampled, in order (token i sits at start + i)
    unit_at: list[int] = field(default_factory=list)  # index in `tokens` of each speech unit
    ready: deque[int] = field(default_factory=deque)  # speech units decoded, not yet handed out
    text: list[tuple[int, int]] = field(default_factory=list)  # (index, id) of text not yet in the transcript
    done: bool = False
    started_s: float = 0.0
    first_unit_s: float | None = None


class ChatContext:
    def __init__(self, *, decoder: DecoderBase, encoder: UtteranceEncoder, vocab: Vocab, system: str, eos: str,
                 max_reply_tokens: int, burst: int) -> None:
        self.decoder = decoder
        self.encoder = encoder
        self.vocab = vocab
        self.system_ids = vocab.encode(system_turn(system))
        self.eos = vocab.id(eos, "covo.eos_token")
        self.close_ids = [self.eos, *vocab.encode("\n")]
        self.max_reply = max_reply_tokens
        self.burst = burst
        self.reply: Reply | None = None
        self.turn_starts: list[int] = []  # cache positions where user turns begin
        self.refills = 0
        self.transcript_ready: list[str] = []
        self._pending = torch.zeros(1, dtype=torch.long, device=decoder.device)
        self.reset()

    def reset(self) -> None:
        self.decoder.truncate(0)
        self.decoder.sampler.reset()
        with torch.no_grad():
            self.decoder.prefill(self.decoder.embed(self.system_ids))
        self.prefix = self.decoder.length
        self.turn_starts.clear()
        self.reply = None
        self.transcript_ready.clear()

    # ---- a reply ----------------------------------------------------------------------------

    @torch.no_grad()
    def start_reply(self, utterance: np.ndarray) -> None:
        """Encode the user's utterance, append the user turn, get ready to decode the reply."""
        started = time.perf_counter()
        self.finish()
        frames = self.encoder(utterance)
        ids = self.vocab.encode(user_turn(frames.shape[0]))
        budget = self._make_room(len(ids))
        embeds = self.decoder.embed(ids)
        embeds[torch.tensor(ids, device=embeds.device) == self.vocab.audio_frame] = frames.to(embeds.dtype)
        self.turn_starts.append(self.decoder.length)
        self.decoder.prefill(embeds[:-1])
        self._pending.fill_(ids[-1])
        first = self.decoder.sampler.replies == 0  # the release's first generate call also sees the system prompt
        self.decoder.sampler.begin([*(self.system_ids if first else self.close_ids[1:]), *ids])
        self.reply = Reply(start=self.decoder.length + 1, budget=budget, prompt_last=ids[-1], started_s=started)

    def next_units(self, n: int) -> list[int]:
        """Up to `n` speech units of the reply; fewer once it has ended."""
        reply = self.reply
        if reply is None:
            return []
        while len(reply.ready) < n and not reply.done:
            self._burst(reply)
        units = [reply.ready.popleft() for _ in range(min(n, len(reply.ready)))]
        if len(units) < n:
            self.finish()
        return units

    def units_out(self) -> int:
        """Speech units handed out so far in the current reply."""
        reply = self.reply
        return 0 if reply is None else len(reply.unit_at) - len(reply.ready)

    @torch.no_grad()
    def cut(self, heard: int) -> None:
        """The user heard only `heard` units: keep the reply up to the last of them and close it."""
        reply = self.reply
        if reply is None:
            return
        heard = max(0, min(heard, self.units_out()))
        self._close(reply, reply.unit_at[heard - 1] + 1 if heard else 0)

    @torch.no_grad()
    def finish(self) -> None:
        """Close the reply: all of it if it ended by itself and was handed out, else up to the units handed out."""
        reply = self.reply
        if reply is None:
            return
        if reply.done and not reply.ready:
            keep = len(reply.tokens)
        else:
            out = self.units_out()
            keep = reply.unit_at[out - 1] + 1 if out else 0
        self._close(reply, keep)

    def take_text(self) -> str:
        """Transcript text that is ready (the reply's text, once its speech was played or cut)."""
        text = "".join(self.transcript_ready)
        self.transcript_ready.clear()
        return text

    # ---- internals ------------------------------------------------------------------------------

    def _burst(self, reply: Reply) -> None:
        """Decode `burst` tokens (always the same shape: one captured graph); keep those within budget."""
        if self.decoder.room() < self.burst:
            reply.done = True
            return
        ids = self.decoder.generate(self._pending, None, self.burst)
        self._pending = ids[-1:]
        for tok in ids.tolist():
            if tok == self.eos or len(reply.tokens) >= reply.budget:
                reply.done = True
                break
            index = len(reply.tokens)
            reply.tokens.append(tok)
            if self.vocab.is_speech(tok):
                reply.unit_at.append(index)
                reply.ready.append(tok - self.vocab.text_size)
                if reply.first_unit_s is None:
                    reply.first_unit_s = time.perf_counter()
            else:
                reply.text.append((index, tok))
        if len(reply.tokens) >= reply.budget:
            reply.done = True

    def _close(self, reply: Reply, keep: int) -> None:
        """Context = prompt + the first `keep` reply tokens + `<|im_end|>\\n`; their text to the transcript."""
        sequence = [reply.prompt_last, *reply.tokens[:keep]]  # at positions start - 1 ...
        self.decoder.truncate(reply.start + keep)
        missing = sequence[self.decoder.length - (reply.start - 1):]
        self.decoder.prefill(self.decoder.embed([*missing, *self.close_ids]))
        text = self.vocab.decode([t for i, t in reply.text if i < keep])
        if text:
            self.transcript_ready.append(text)
        self.reply = None

    def _make_room(self, prompt: int) -> int:
        """Refill if the next turn would not fit; return the reply's token budget."""
        need = prompt + self.max_reply + self.burst + len(self.close_ids) + 1
        capacity = self.decoder.capacity
        if self.decoder.length + need > capacity:
            keep_from = next((b for b in self.turn_starts if self.prefix + self.decoder.length - b + need <= capacity),
                             self.decoder.length)
            self.decoder.refill(self.prefix, keep_from)
            shift = keep_from - self.prefix
            self.turn_starts = [b - shift for b in self.turn_starts if b >= keep_from]
            self.refills += 1
        room = capacity - self.decoder.length - prompt - self.burst - len(self.close_ids) - 1
        if room < 1:
            raise RuntimeError(f"covo.context_tokens = {capacity} cannot hold one turn ({prompt} prompt tokens)")
        return min(self.max_reply, room)
