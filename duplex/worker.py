"""The model's own thread: every call into a loaded model runs there, one at a time, in order.

A backbone step or a neural vocoder is compute, and the event loop never waits on compute; a
model's state is also not thread-safe. So a `ModelWorker` owns the model and one thread:
`await step()` and `await decode()` run on it, and every mutation (reset, heard, say, the
vocoder's reset) is posted to it, queued behind the call in flight instead of racing it. A
model has exactly one worker (`ModelWorker.of(model)`), so the kiosk, which reuses one model
for session after session, never has two threads inside it.

`drain()` waits, without blocking the loop, until every call posted so far has finished: a
session cancelled while a step is in flight awaits that step instead of touching the model
under it (or blocking in `executor.shutdown(wait=True)`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from duplex.backbones.base import Model
from duplex.tokens import Token

T = TypeVar("T")

_workers: dict[int, ModelWorker] = {}  # by id(model), dropped when the model is collected


class ModelWorker:
    """One model, one thread. Obtain it with `ModelWorker.of(model)`."""

    def __init__(self, model: Model) -> None:
        self._model = weakref.ref(model)  # the model owns its worker, not the other way round
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"duplex-model-{model.name}")
        self._failure: BaseException | None = None

    @classmethod
    def of(cls, model: Model) -> ModelWorker:
        """The worker of `model` (made on first use; shared by every session that uses the model)."""
        key = id(model)
        worker = _workers.get(key)
        if worker is None or worker._model() is not model:
            worker = _workers[key] = cls(model)
            weakref.finalize(model, _forget, key, worker)
        return worker

    @property
    def model(self) -> Model:
        model = self._model()
        if model is None:
            raise RuntimeError("the model of this worker was garbage-collected")
        return model

    # ---- awaited calls --------------------------------------------------------------------

    async def step(self, chunk: np.ndarray) -> Sequence[Token]:
        return await self._await(self._submit(self.model.backbone.step, chunk))

    async def decode(self, units: Sequence[int]) -> np.ndarray:
        return await self._await(self._submit(self.model.vocoder.decode, units))

    # ---- posted mutations (ordered behind the call in flight, never awaited by the caller) --

    def reset(self) -> None:
        self.post(self.model.backbone.reset)

    def heard(self, units: int) -> None:
        self.post(self.model.backbone.heard, units)

    def reset_vocoder(self) -> None:
        self.post(self.model.vocoder.reset)

    def say(self, audio: np.ndarray) -> None:
        say = getattr(self.model.backbone, "say", None)
        if not self.model.can_say or say is None:
            raise RuntimeError(f"model {self.model.name!r} cannot say (can_say is False)")
        self.post(say, audio)

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the model thread after everything posted before; a failure is raised
        by the next awaited call (or by `drain()`)."""
        self._submit(fn, *args).add_done_callback(self._keep_failure)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the model thread and wait for it: only outside the event loop
        (between sessions, e.g. a cache resetting a reused model)."""
        return self._submit(fn, *args).result()

    async def drain(self) -> None:
        """Wait until every call posted so far has finished, without blocking the loop."""
        marker = self._executor.submit(_nothing)  # one thread, first in first out: all before it are done
        await asyncio.shield(asyncio.wrap_future(marker))
        self._raise_failure()

    # ---- internals ------------------------------------------------------------------------

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._executor.submit(fn, *args)

    async def _await(self, future: Future[T]) -> T:
        self._raise_failure()
        return await asyncio.wrap_future(future)

    def _keep_failure(self, future: Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None and self._failure is None:
            self._failure = future.exception()

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure


def _nothing() -> None:
    pass


def _forget(key: int, worker: ModelWorker) -> None:
    if _workers.get(key) is worker:
        del _workers[key]
    worker._executor.shutdown(wait=False)  # its thread ends once idle
