"""Test seams for the engine: a backbone that replays scripted tokens, a tone vocoder, a list mic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audio_io.format import STEP_SAMPLES, UNIT_SAMPLES
from duplex.backbones.base import Model
from duplex.config import Config
from duplex.events import Event
from duplex.session import DuplexSession, summary_of
from duplex.tokens import THINK, Token


class ScriptedBackbone:
    """Returns `script[k]` at step k (THINK x4 after the script); records what it was told."""

    def __init__(self, script: Sequence[Sequence[Token]], *, delay_s: float = 0.0) -> None:
        self.script = list(script)
        self.delay_s = delay_s
        self.chunks: list[np.ndarray] = []
        self.heard_calls: list[int] = []
        self.resets = 0

    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        if self.delay_s:
            time.sleep(self.delay_s)
        k = len(self.chunks)
        self.chunks.append(chunk.copy())
        return self.script[k] if k < len(self.script) else (THINK,) * 4

    def heard(self, units: int) -> None:
        self.heard_calls.append(units)

    def reset(self) -> None:
        self.resets += 1


class ToneVocoder:
    """Unit k -> a 40 ms constant of value (k + 1) / 100 at `sample_rate`: easy to find in the output."""

    def __init__(self, sample_rate: int = 16_000) -> None:
        self.sample_rate = sample_rate
        self.resets = 0

    def decode(self, units: Sequence[int]) -> np.ndarray:
        n = UNIT_SAMPLES * self.sample_rate // 16_000
        return np.concatenate([np.full(n, (u + 1) / 100, dtype=np.float32) for u in units])

    def reset(self) -> None:
        self.resets += 1


class ListMicrophone:
    def __init__(self, chunks: int, value: float = 0.0) -> None:
        self._left = chunks
        self.value = value

    async def read(self) -> np.ndarray | None:
        if self._left == 0:
            return None
        self._left -= 1
        return np.full(STEP_SAMPLES, self.value, dtype=np.float32)

    def close(self) -> None:
        pass


def scripted_model(script: Sequence[Sequence[Token]], **kw: object) -> Model:
    return Model(backbone=ScriptedBackbone(script, **kw), vocoder=ToneVocoder(), name="scripted")  # type: ignore[arg-type]


@dataclass(slots=True)
class OfflineRun:
    events: list[Event]
    summary: dict[str, Any]


async def play_offline(cfg: Config | None, input: Any, output: Any = None, events_path: Path | None = None, *,
                       model: Model | None = None) -> OfflineRun:
    """One offline session through DuplexSession (what `duplex-chat --input` runs): events and summary."""
    events = await DuplexSession(config=cfg, input=input, output=output, events_path=events_path, model=model).play()
    return OfflineRun(events, summary_of(events))


def run_offline(cfg: Config | None, input: Any, output: Any = None, events_path: Path | None = None, *,
                model: Model | None = None) -> OfflineRun:
    return asyncio.run(play_offline(cfg, input, output, events_path, model=model))


async def max_loop_stall(stop: asyncio.Event) -> float:
    """Wake every 10 ms until `stop`; the longest time between two wake-ups is how long the loop was held."""
    worst, last = 0.0, time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
    return worst
