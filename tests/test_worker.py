"""The model's thread: no two model calls ever overlap, and cancelling a session mid-step neither
races the step in flight nor blocks the event loop (issue 12)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from audio_io.wav import MemoryOutput
from duplex.backbones.base import Model
from duplex.session import DuplexSession
from duplex.tokens import SHIFT, THINK, Token, audio
from duplex.worker import ModelWorker
from tests.fakes import ListMicrophone, max_loop_stall

STEP_S = 0.3  # a slow step: long enough to be cancelled in the middle of one


class Exclusive:
    """Fails the test if two calls into the model are ever inside it at once, or a call runs on the loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[str] = []
        self.overlaps: list[str] = []
        self.on_loop: list[str] = []
        self.loop_thread = threading.get_ident()

    def enter(self, name: str, seconds: float = 0.0) -> None:
        if threading.get_ident() == self.loop_thread:
            self.on_loop.append(name)
        if not self.lock.acquire(blocking=False):
            self.overlaps.append(name)
            return
        try:
            self.calls.append(name)
            time.sleep(seconds)
        finally:
            self.lock.release()


class SlowBackbone:
    """Speaks from step 1 on (so a cancel finds a turn to cut: reset + vocoder reset), each step slow."""

    def __init__(self, guard: Exclusive) -> None:
        self.guard, self.k = guard, 0

    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        self.guard.enter("step", STEP_S)
        self.k += 1
        return (SHIFT, audio(1), audio(2), audio(3)) if self.k == 2 else (audio(4),) * 4 if self.k > 2 else (THINK,) * 4

    def heard(self, units: int) -> None:
        self.guard.enter("heard", 0.05)

    def reset(self) -> None:
        self.guard.enter("reset", 0.05)


class SlowVocoder:
    sample_rate = 16_000

    def __init__(self, guard: Exclusive) -> None:
        self.guard = guard

    def decode(self, units: Sequence[int]) -> np.ndarray:
        self.guard.enter("decode", 0.05)
        return np.full(640 * len(units), 0.1, np.float32)

    def reset(self) -> None:
        self.guard.enter("vocoder.reset", 0.05)



@pytest.mark.parametrize("cancel_after_s", [0.15, 0.75, 1.05])
async def test_cancelling_mid_step_never_overlaps_model_calls_or_blocks_the_loop(cancel_after_s: float) -> None:
    guard = Exclusive()
    model = Model(backbone=SlowBackbone(guard), vocoder=SlowVocoder(guard), name="slow")  # type: ignore[arg-type]
    stop = asyncio.Event()
    ticker = asyncio.create_task(max_loop_stall(stop))

    async def converse() -> None:
        async with DuplexSession(input=ListMicrophone(100), output=MemoryOutput(), model=model) as session:
            await session.wait()

    task = asyncio.create_task(converse())
    await asyncio.sleep(cancel_after_s)
    assert not task.done()
    cancelled_at = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    took = time.perf_counter() - cancelled_at
    stop.set()
    stall = await ticker
    assert guard.overlaps == [] and guard.on_loop == []  # every model call on the worker, one at a time
    assert "reset" in guard.calls  # the session start reset the context, on the worker too
    if cancel_after_s > 0.7:  # the model was speaking: the cut reached the vocoder, after the step
        assert guard.calls[-1] == "vocoder.reset" and guard.calls[-2] in ("step", "decode")
    assert took < STEP_S + 0.3  # the session ends after at most the step in flight (plus its resets)
    assert stall < 0.2  # the loop never waited on the model meanwhile


async def test_one_worker_per_model_shared_by_its_sessions() -> None:
    guard = Exclusive()
    model = Model(backbone=SlowBackbone(guard), vocoder=SlowVocoder(guard), name="shared")  # type: ignore[arg-type]
    assert ModelWorker.of(model) is ModelWorker.of(model)
    other = Model(backbone=SlowBackbone(guard), vocoder=SlowVocoder(guard), name="other")  # type: ignore[arg-type]
    assert ModelWorker.of(other) is not ModelWorker.of(model)


async def test_a_posted_mutation_that_fails_is_raised_by_the_next_awaited_call() -> None:
    guard = Exclusive()
    model = Model(backbone=SlowBackbone(guard), vocoder=SlowVocoder(guard), name="fails")  # type: ignore[arg-type]
    worker = ModelWorker.of(model)

    def broken() -> None:
        raise ValueError("reset failed")

    worker.post(broken)
    with pytest.raises(ValueError, match="reset failed"):
        await worker.drain()
    await worker.drain()  # raised once, then cleared
