"""Step compute statistics: percentiles over a bounded window, overruns, real-time factor."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(slots=True)
class StepStats:
    window: deque[float] = field(default_factory=lambda: deque(maxlen=20_000))
    steps: int = 0
    overruns: int = 0
    wall_s: float = 0.0
    session_s: float = 0.0

    def add(self, compute_ms: float) -> None:
        self.window.append(compute_ms)
        self.steps += 1

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.fromiter(self.window, float), q)) if self.window else 0.0

    def summary(self) -> dict[str, float | int]:
        return {
            "step_ms_p50": round(self.percentile(50), 3),
            "step_ms_p99": round(self.percentile(99), 3),
            "overruns": self.overruns,
            "realtime_factor": round(self.session_s / self.wall_s, 2) if self.wall_s > 0 else 0.0,
        }
