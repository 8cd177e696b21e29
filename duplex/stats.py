"""Session figures: step compute percentiles and overruns, the session snapshot, device counters.

`realtime_factor` is computed in one place (`realtime_factor()`), for the `session stopped`
event and for `SessionStats` alike.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


def realtime_factor(session_s: float, wall_s: float) -> float:
    """Session seconds per wall second (0 before any wall time passed)."""
    return round(session_s / wall_s, 2) if wall_s > 0 else 0.0


@dataclass(slots=True)
class StepStats:
    window: deque[float] = field(default_factory=lambda: deque(maxlen=20_000))
    steps: int = 0
    overruns: int = 0

    def add(self, compute_ms: float) -> None:
        self.window.append(compute_ms)
        self.steps += 1

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.fromiter(self.window, float), q)) if self.window else 0.0

    def summary(self, session_s: float, wall_s: float) -> dict[str, Any]:
        """The figures of the `session stopped` event, in its order."""
        return {
            "step_ms_p50": round(self.percentile(50), 3),
            "step_ms_p99": round(self.percentile(99), 3),
            "overruns": self.overruns,
            "realtime_factor": realtime_factor(session_s, wall_s),
        }


@dataclass(frozen=True, slots=True)
class SessionStats:
    """A snapshot of one session; `to_dict()` is what the MQTT bridge publishes as metrics."""

    name: str
    running: bool
    state: str  # the controller phase: IDLE, LISTENING, SPEAKING, DRAINING, DEGRADED
    mic_open: bool
    steps: int
    session_s: float
    step_ms_p50: float
    step_ms_p99: float
    overruns: int
    realtime_factor: float  # session seconds per wall second so far
    events: int  # events published so far

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DeviceStats:
    """The sound card's counters for one live session (what the live summary reports about devices)."""

    speaker_underruns: int
    speaker_xruns: int
    mic_overflows: int
    mic_dropped_chunks: int
    device_latency_ms: float
    jitter_ms: int
    aec: str
    guard_s: float

    @classmethod
    def read(cls, mic: Any, speaker: Any, *, aec: str, guard_s: float) -> DeviceStats:
        """Read the counters of a LiveInput and a LiveOutput now."""
        return cls(speaker_underruns=speaker.underruns, speaker_xruns=speaker.xruns, mic_overflows=mic.overflows,
                   mic_dropped_chunks=mic.dropped_chunks + mic.lost,
                   device_latency_ms=round((mic.latency_s + speaker.latency_s) * 1000, 1),
                   jitter_ms=round(speaker.jitter_s * 1000), aec=aec, guard_s=guard_s)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
