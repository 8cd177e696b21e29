"""The model thread of a batched host: lanes queue their steps, one thread serves them in batches.

Model-agnostic: a batched host (`tiny_fd.batched.BatchedTinyFd`, `covo.batched.BatchedCovo`) owns
a `StepQueue` and gives it the function that runs one batched step over (slot, chunk, reference)
rows. The queue hands out slots, blocks each lane's thread in `submit` until its step is served,
and keeps the figures of `usage()`.

Continuous batching: the thread takes every request pending, runs one batch over them, resolves
them, and repeats. A lane that has not sent its chunk is not in the batch; nobody waits for it.
`run` may answer rows before the batch ends (its `served` callback), e.g. rows in steady state
before rows that rebuild their context.

Lateness. A lane's step is *late* when its request arrives more than one step period (`step_s`,
160 ms) after the lane's previous request was served: the client did not keep up (a stalled
input, a dead peer). It is still served at once; `skipped` adds the whole step periods that went
by without a request from the lane (floor(gap / step_s)). A lane's first step is never late.
"""

from __future__ import annotations

import functools
import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from duplex.errors import DuplexError
from duplex.serve.host import HostFull

STEP_S = 0.160
LATENCIES_KEPT = 10_000  # recent step latencies behind the percentiles

P = TypeVar("P")  # what a lane sends (a chunk and its reference; a decoder call)
R = TypeVar("R")  # what it gets back (a step's tokens; sampled ids)
Served = Callable[[list[int], list[Any]], None]  # row indices of a batch, their results


class LaneClosed(DuplexError):
    """A step on a lane that was closed, or on a host that was shut down."""


@dataclass
class LaneCounters:
    """One lane's figures (see the module doc for late and skipped)."""

    served: int = 0
    late: int = 0
    skipped: int = 0
    last_served: float | None = None  # the queue's clock
    open: bool = True


@dataclass(eq=False)
class _Request(Generic[P, R]):
    slot: int
    counters: LaneCounters
    payload: P
    sent: float
    done: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None


class StepQueue(Generic[P, R]):
    """`capacity` slots, one model thread running `run` over the pending requests: `run(rows, served)`
    gets (slot, payload) rows and calls `served(row indices, results)` as rows are done.

    `count_late`: each request is one 160 ms step of its lane (lateness is counted); False for a
    queue of calls that come any number of times per step (a decoder's)."""

    def __init__(self, run: Callable[[Sequence[tuple[int, P]], Served], None], *, name: str, capacity: int,
                 step_s: float = STEP_S, clock: Callable[[], float] = time.monotonic, count_late: bool = True) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.step_s = step_s
        self._run = run
        self._clock = clock
        self._count_late = count_late
        self._cond = threading.Condition()
        self._queue: list[_Request[P, R]] = []
        self._free = list(range(capacity))  # a heap: the lowest free slot first, so busy slots stay together
        self._used = 0
        self._stopping = False
        self.batches = 0
        self.rows = 0  # steps served, over all batches
        self.late = 0
        self.skipped = 0
        self._latencies: deque[float] = deque(maxlen=LATENCIES_KEPT)
        self._thread = threading.Thread(target=self._loop, name=f"duplex-batched-{name}", daemon=True)
        self._thread.start()

    # ---- slots ----------------------------------------------------------------------------

    def take(self) -> tuple[int, LaneCounters]:
        """A free slot and fresh counters for a new lane; HostFull when all are taken."""
        with self._cond:
            if self._stopping:
                raise LaneClosed("the host was shut down")
            if not self._free:
                raise HostFull(f"all {self.capacity} conversations of this server are taken")
            self._used += 1
            return heapq.heappop(self._free), LaneCounters()

    def give_back(self, slot: int, counters: LaneCounters) -> None:
        """The lane on `slot` is closed: a step it still has queued fails, the slot is free."""
        with self._cond:
            if not counters.open:
                return
            counters.open = False
            for request in [r for r in self._queue if r.counters is counters]:
                self._queue.remove(request)
                _resolve(request, error=LaneClosed("the lane was closed with a step pending"))
            self._used -= 1
            heapq.heappush(self._free, slot)

    # ---- lanes' threads -------------------------------------------------------------------

    def submit(self, slot: int, counters: LaneCounters, payload: P) -> R:
        """Queue this request for the next batch and wait for its result (on the lane's thread)."""
        with self._cond:
            if not counters.open or self._stopping:
                raise LaneClosed("step on a closed lane" if not counters.open else "the host was shut down")
            request: _Request[P, R] = _Request(slot, counters, payload, sent=self._clock())
            if self._count_late:
                self._count_lateness(counters, request.sent)
            self._queue.append(request)
            self._cond.notify_all()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result  # type: ignore[return-value]

    @property
    def free(self) -> int:
        with self._cond:
            return len(self._free)

    def usage(self) -> dict[str, int | float]:
        return usage_of([self])

    def _figures(self) -> tuple[list[int], list[float]]:
        with self._cond:
            counts = [self.capacity, self._used, self.batches, self.rows, self.late, self.skipped]
            return counts, list(self._latencies)

    def shutdown(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def _count_lateness(self, counters: LaneCounters, sent: float) -> None:
        if counters.last_served is None:
            return
        gap = sent - counters.last_served
        if gap > self.step_s:
            missed = int(gap // self.step_s)
            counters.late += 1
            counters.skipped += missed
            self.late += 1
            self.skipped += missed

    # ---- the model thread -----------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    for request in self._queue:
                        _resolve(request, error=LaneClosed("the host was shut down"))
                    self._queue.clear()
                    return
                batch, self._queue = self._queue, []
                self.batches += 1
            batch.sort(key=lambda r: r.slot)  # busy slots in order: a slotted cache reads a view, not a gather
            try:
                self._run([(r.slot, r.payload) for r in batch], functools.partial(self._served, batch))
            except Exception as exc:  # every request not yet served gets the failure; the thread goes on
                with self._cond:
                    for request in batch:
                        if not request.done.is_set():
                            _resolve(request, error=exc)

    def _served(self, batch: list[_Request[P, R]], rows: list[int], results: list[R]) -> None:
        with self._cond:
            now = self._clock()
            self.rows += len(rows)
            for request, result in zip([batch[i] for i in rows], results, strict=True):
                request.counters.served += 1
                request.counters.last_served = now
                self._latencies.append(now - request.sent)
                _resolve(request, result=result)


def usage_of(queues: Sequence[StepQueue[Any, Any]]) -> dict[str, int | float]:
    """`usage()` over one host's queues: capacity, used, batches, steps, mean_batch, step latency
    p50/p99 (queue wait + compute, over the recent steps), late, skipped."""
    totals = [0] * 6
    latencies: list[float] = []
    for queue in queues:
        counts, recent = queue._figures()
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        latencies += recent
    capacity, used, batches, rows, late, skipped = totals
    latencies.sort()
    return {"capacity": capacity, "used": used, "batches": batches, "steps": rows,
            "mean_batch": rows / batches if batches else 0.0,
            "p50_ms": _percentile(latencies, 0.50) * 1e3, "p99_ms": _percentile(latencies, 0.99) * 1e3,
            "late": late, "skipped": skipped}


def _resolve(request: _Request[Any, Any], *, result: Any = None, error: BaseException | None = None) -> None:
    request.result, request.error = result, error
    request.done.set()


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
