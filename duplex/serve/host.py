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
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from duplex.backbones.base import Model
from duplex.errors import ConfigError, DuplexError

if TYPE_CHECKING:
    from duplex.config import Config


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
    """One model per conversation: a deep copy of one loaded prototype per lane (no reloading).

    A backbone whose state holds native handles (the policy backbone's VAD) cannot be copied; with
    `load` given, such lanes are loaded afresh instead (slower: `open()` may take a while, so the
    server calls it off the event loop)."""

    def __init__(self, prototype: Model, *, capacity: int, load: Callable[[], Model] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.prototype = prototype
        self._load = load
        self.name = prototype.name
        self.capacity = capacity
        self._open: set[int] = set()
        self._lock = threading.Lock()

    def open(self) -> Model:
        with self._lock:
            if len(self._open) >= self.capacity:
                raise HostFull(f"all {self.capacity} conversations of this server are taken")
            lane = self._copy()
            lane.backbone.reset()
            lane.vocoder.reset()
            self._open.add(id(lane))
            return lane

    def _copy(self) -> Model:
        try:
            return copy.deepcopy(self.prototype)
        except (TypeError, copy.Error):  # "cannot pickle 'PyCapsule' object"
            if self._load is None:
                raise
            return self._load()

    def close(self, lane: Model) -> None:
        with self._lock:
            self._open.discard(id(lane))

    def usage(self) -> dict[str, int | float]:
        with self._lock:
            return {"capacity": self.capacity, "used": len(self._open)}

    def shutdown(self) -> None:
        pass


def make_host(prototype: Model, config: Config, *, capacity: int, batched: bool | None = None,
              load: Callable[[], Model] | None = None) -> ModelHost:
    """The host for `duplex-serve --batched/--no-batched`; None (the default) picks the batched host
    when the backbone has one: tiny-fd, covo native mode, covo turn mode.

    Asking for `--batched` where there is none is a ConfigError naming the backbone. `load` makes a
    fresh model (for backbones that cannot be copied)."""
    if batched is False:
        return SeparateModels(prototype, capacity=capacity, load=load)
    if config.backbone == "tiny-fd":
        from duplex.backbones.tiny_fd.batched import BatchedTinyFd

        return BatchedTinyFd(prototype, capacity=capacity)
    if config.backbone == "covo" and config.covo.mode == "native":
        from duplex.backbones.covo.batched import BatchedCovo

        return BatchedCovo(prototype, capacity=capacity)
    if config.backbone == "covo":
        from duplex.backbones.covo.batched_turn import BatchedCovoTurn
        from duplex.backbones.covo.factory import COVO_FLOOR
        from duplex.backbones.floor import make_floor

        return BatchedCovoTurn(prototype, capacity=capacity, new_floor=lambda: make_floor(
            config.policy, tiny_fd=config.tiny_fd, resolve=config.resolve, threads=0, auto=COVO_FLOOR))
    if batched:
        raise ConfigError(f"--batched: backbone {config.backbone!r} has no batched host "
                          "(tiny-fd and covo have one); use --no-batched")
    return SeparateModels(prototype, capacity=capacity, load=load)
