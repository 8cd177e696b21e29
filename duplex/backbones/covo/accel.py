"""Run a fixed-shape step function eagerly, as a replayed CUDA graph, or through torch.compile.

The step functions of this backbone read and write only preallocated tensors (static KV cache,
input buffers), which is what makes a CUDA graph possible: one `replay()` launches the whole
step, with no Python or launch overhead and no host sync. Warm-up runs before capture execute the
function for real, so the owner passes `snapshot`/`restore` to undo their side effects on state
that is not idempotent (the sampler's recent tokens); writes to the KV cache beyond the current
length are harmless, as every position is written before it is attended to.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)

MODES = ("none", "graphs", "compile")


class Accelerated:
    """`fn()` -> tensor, accelerated per `mode`; call `prepare()` once before the first use."""

    def __init__(self, fn: Callable[[], torch.Tensor], mode: str, *, name: str,
                 snapshot: Callable[[], Any] = lambda: None, restore: Callable[[Any], None] = lambda _: None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown optimisation {mode!r}")
        self.fn = fn
        self.mode = mode
        self.name = name
        self._snapshot = snapshot
        self._restore = restore
        self._graph: Any = None
        self._out: torch.Tensor | None = None
        self._run: Callable[[], torch.Tensor] = fn

    def prepare(self) -> None:
        if self.mode == "none" or self._out is not None:
            return
        state = self._snapshot()
        if self.mode == "compile":
            with warnings.catch_warnings():  # torch's notes to itself while it compiles, not the user's to act on
                warnings.filterwarnings("ignore", message=r".*torch\.jit\.script_method.* is deprecated",
                                        category=DeprecationWarning)
                warnings.filterwarnings("ignore", message="Torchinductor does not support code generation for complex")
                self._run = torch.compile(self.fn, dynamic=False, fullgraph=False)
                self._run()  # compiles now, not in the first conversation step
            self._out = torch.empty(0)
        else:
            self._capture()
        self._restore(state)

    def __call__(self) -> torch.Tensor:
        if self._graph is not None:
            self._graph.replay()
            assert self._out is not None
            return self._out
        return self._run()

    def _capture(self) -> None:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._out = self.fn()
        except RuntimeError as exc:  # an op that cannot be captured: fall back, say so once
            log.warning("covo: %s runs eagerly, CUDA graph capture failed: %s", self.name, exc)
            self._out = torch.empty(0)
            return
        self._graph = graph
