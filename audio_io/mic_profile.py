"""Notice a microphone that the sound server moved to another device under us.

PulseAudio and PipeWire move a stream whose device went away (an unloaded module, an unplugged
headset) to another device, and PortAudio reports nothing: the callbacks go on, now from another
microphone. What changes is the level profile: every microphone has its own noise floor. This
tracks the floor (the quietest 160 ms chunk of the last `WINDOW_S`) against the floor it learnt
over the session (the median of those over `LEARN_S`); a floor that moves by `JUMP_DB` or more
and stays there for `HOLD_S` is reported once, and the profile is learnt afresh.

A floor that drops is unambiguous (no microphone gets quieter than its own noise); one that rises
could be continuous loud sound, hence the long window and hold.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from audio_io.format import STEP_SECONDS

FLOOR_DB = -100.0
WINDOW_S = 2.0
LEARN_S = 10.0
MIN_LEARNT_S = 4.0
JUMP_DB = 20.0
HOLD_S = 1.5


class MicProfile:
    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=round(WINDOW_S / STEP_SECONDS))
        self._floors: deque[float] = deque(maxlen=round(LEARN_S / STEP_SECONDS))
        self._held = 0
        self.changes = 0
        self.change: str | None = None  # the latest change, until taken

    def add(self, chunk: np.ndarray) -> None:
        e = float(np.dot(chunk, chunk)) / max(1, chunk.size)
        db = max(FLOOR_DB, 10.0 * float(np.log10(e))) if e > 0.0 else FLOOR_DB
        self._recent.append(db)
        if len(self._recent) < self._recent.maxlen:  # type: ignore[operator]
            return
        floor = min(self._recent)
        if len(self._floors) * STEP_SECONDS < MIN_LEARNT_S:
            self._floors.append(floor)
            return
        learnt = float(np.median(self._floors))
        if abs(floor - learnt) >= JUMP_DB:
            self._held += 1
            if self._held * STEP_SECONDS >= HOLD_S:
                self.changes += 1
                self.change = f"noise floor {learnt:.0f} -> {floor:.0f} dBFS"
                self._floors.clear()
                self._recent.clear()
                self._held = 0
            return
        self._held = 0
        self._floors.append(floor)

    def take_change(self) -> str | None:
        change, self.change = self.change, None
        return change
