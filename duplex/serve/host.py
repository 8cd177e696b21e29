"""Where a server's conversations get their model.

A conversation is driven by a `DuplexSession` exactly as on a workstation; what it is given as its
`model=` is a *lane*: a `Model` that is its own (its own context, grammar state and vocoder
stream) but may share weights and compute with other lanes. Two hosts implement this:

- `SeparateModels`: one full model per conversation (the baseline the capacity benchmark
  compares against, and the host for backbones with no batched path);
- a batched host (e.g. tiny-fd's `BatchedTinyFd`): every lane's step joins one batched forward
  pass per tick on one model thread.

Either way the engine sees an ordinary `Model`; its `ModelWorker` is the lane's own thread.
"""

from __future__ import annotations

import copy
import threading
from typing import Protocol, runtime_checkable

from duplex.backbones.base import Model
from duplex.errors import DuplexError


class HostFull(DuplexError):
    """Every lane of the host is taken (the server refuses the conversation with this reason)."""


@runtime_checkable
class ModelHost(Protocol):
    name: str
    capacity: int  # conversations at once

    def open(self) -> Model:
        """A lane for one new conversation (a fresh context); HostFull when all are taken."""
        ...

    def close(self, lane: Model) -> None:
        """The conversation on `lane` ended: its slot is free again."""
        ...

    def usage(self) -> dict[str, int | float]:
        """Figures for `/health`: at least `capacity` and `used`."""
        ...

    def shutdown(self) -> None:
        """Stop any thread of the host (after every lane is closed)."""
        ...


class SeparateModels:
    """One model per conversation: a deep copy of one loaded prototype per lane (no reloading)."""

    def __init__(self, prototype: Model, *, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.prototype = prototype
        self.name = prototype.name
        self.capacity = capacity
        self._open: set[int] = set()
        self._lock = threading.Lock()

    def open(self) -> Model:
        with self._lock:
            if len(self._open) >= self.capacity:
                raise HostFull(f"all {self.capacity} conversations of this server are taken")
            lane = copy.deepcopy(self.prototype)
            lane.backbone.reset()
            lane.vocoder.reset()
            self._open.add(id(lane))
            return lane

    def close(self, lane: Model) -> None:
        with self._lock:
            self._open.discard(id(lane))

    def usage(self) -> dict[str, int | float]:
        with self._lock:
            return {"capacity": self.capacity, "used": len(self._open)}

    def shutdown(self) -> None:
        pass
