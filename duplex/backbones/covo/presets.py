"""Sampling presets for turn mode: what the released example does, and plain greedy.

The release's `example.py` calls `generate` twice, and the settings differ by turn:

- every turn: HF `repetition_penalty=1.05`, applied to every id of the generate call's
  `input_ids` (the first turn: system prompt + user turn; later turns: the new user turn only,
  the history being in the KV cache) and of the reply so far; plus its own
  `WindowedRepetitionPenaltyLogitsProcessor(penalty=1.05, window_size=8)` over the last 8 of those
  ids; `max_new_tokens=2048`;
- the first turn: no `do_sample`, so greedy (the model is built with `from_config`, whose
  generation config defaults to greedy);
- later turns: `do_sample=True, temperature=0.5, top_p=0.9, top_k=50`.

`release` is that; `greedy` decodes every turn as the release decodes the first (argmax after the
same two penalties); `custom` takes `covo.temperature`, `covo.top_k`, `covo.top_p`,
`covo.repetition_penalty` / `covo.repetition_window` and `covo.sequence_penalty` as set. Torch-free,
so the settings a config stands for can be read without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float  # 0 = greedy
    top_k: int  # 0 = off
    top_p: float  # 1 = off
    sequence_penalty: float  # HF repetition_penalty over the turn's prompt and reply (1 = off)
    window_penalty: float  # the release's windowed penalty (1 = off)
    window: int  # ... over this many most recent ids
    first_turn_greedy: bool  # the first reply after a reset is decoded greedily whatever the temperature


PRESETS: dict[str, Sampling] = {
    "release": Sampling(temperature=0.5, top_k=50, top_p=0.9, sequence_penalty=1.05, window_penalty=1.05, window=8,
                        first_turn_greedy=True),
    "greedy": Sampling(temperature=0.0, top_k=0, top_p=1.0, sequence_penalty=1.05, window_penalty=1.05, window=8,
                       first_turn_greedy=True),
}
RELEASE_MAX_NEW_TOKENS = 2048


def sampling_of(covo: Any) -> Sampling:
    """The settings `covo.sampling` stands for (a CovoConfig; `custom` reads the individual keys)."""
    if covo.sampling in PRESETS:
        return PRESETS[covo.sampling]
    return Sampling(temperature=covo.temperature, top_k=covo.top_k, top_p=covo.top_p,
                    sequence_penalty=covo.sequence_penalty, window_penalty=covo.repetition_penalty,
                    window=covo.repetition_window, first_turn_greedy=False)
