"""NaN and infinity in the input: replaced with silence at the door, and reported once.

One NaN sample reaches the model's features, poisons a whole window of them and, in tiny-fd,
made it miss the user's first turn by five seconds without a word. Nothing downstream can use a
non-finite sample, so the engine hands every chunk through `SampleGuard.clean` before the model
hears it: bad samples become 0.0 (silence), and the first chunk that had any is reported as one
`bad_samples` event with how many were replaced in it and the session time of the first one.
Later ones are replaced the same way and counted in `SampleGuard.replaced`, without more events
(a broken microphone must not flood the log).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from audio_io.format import SAMPLE_RATE


class SampleGuard:
    def __init__(self) -> None:
        self.replaced = 0
        self.reported = False

    def clean(self, chunk: np.ndarray, t0: float, report: Callable[..., Any]) -> np.ndarray:
        """`chunk` (starting at session time `t0`) with NaN/inf set to 0; `report(**data)` the first time."""
        if np.isfinite(chunk).all():  # the common case: one pass, no copy
            return chunk
        bad = ~np.isfinite(chunk)
        count = int(bad.sum())
        self.replaced += count
        if not self.reported:
            self.reported = True
            first = int(np.flatnonzero(bad)[0])
            report(samples=count, at=round(t0 + first / SAMPLE_RATE, 4), replaced_with="silence")
        return np.where(bad, np.float32(0.0), chunk).astype(np.float32, copy=False)
