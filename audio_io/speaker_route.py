"""Notice a speaker stream that the sound server moved to another device under us.

When a sink goes away (its module unloaded, a USB headset unplugged) PulseAudio and PipeWire move
its streams to another sink, and PortAudio reports nothing: the stream keeps its device name
(`pulse`, `default`), keeps calling back at the same pace, and reports no underflow (measured on
PulseAudio 16 null sinks: callbacks stay 20 ms apart, the latency estimate wanders by 20 ms as it
does anyway). The reply simply comes out of another device.

What does change is how the microphone hears the speaker: headset -> laptop speakers makes an echo
appear where there was none, speakers -> headset makes it vanish, another set of speakers changes
its level. `audio_io.echo_path.EchoPath` already measures that path from the signals (the echo
canceller's gate uses it); this watches its verdicts. The first verdict of a stream is its
baseline; a later verdict that flips (absent <-> present), or a present echo whose coupling moves
by `JUMP_DB` or more, held for `HOLD_VERDICTS` verdicts in a row, is a route change, reported
once (the link treats it as a lost speaker: the reply stops, and the streams are reopened).

It needs the speaker to play: a move while the model is silent shows at its next reply.
"""

from __future__ import annotations

import numpy as np

from audio_io.echo_path import EchoPath

JUMP_DB = 20.0  # a present echo's coupling moving this much is another device (volume steps are smaller)
HOLD_VERDICTS = 3  # successive verdicts that must agree on the new route (~0.5 s): one odd one is no move


class SpeakerRoute:
    """Route changes of one speaker stream, read off an echo path measurement."""

    def __init__(self, path: EchoPath | None = None) -> None:
        self.owned = path is None  # no gated canceller to share: this one is fed by `add`
        self.path = path if path is not None else EchoPath()
        self._baseline: tuple[bool, float | None] | None = None
        self._seen = self.path.verdicts
        self._held = 0  # successive verdicts that differ from the baseline
        self.change: str | None = None  # the latest change, until taken
        self.changes = 0

    def add(self, near: np.ndarray, far: np.ndarray) -> None:
        """One 10 ms frame (microphone before cancelling, what the speaker played), when owned."""
        if self.owned:
            self.path.add(near, far)

    def check(self) -> None:
        """Compare a new verdict with the baseline (call after frames were added)."""
        path = self.path
        if path.verdicts == self._seen or path.present is None:
            return
        self._seen = path.verdicts
        now = (path.present, path.coupling_db)
        if self._baseline is None:
            self._baseline = now
            return
        change = _describe(self._baseline, now)
        self._held = self._held + 1 if change else 0
        if change and self._held >= HOLD_VERDICTS:
            self.change = change
            self.changes += 1
            self._baseline = now
            self._held = 0

    def take_change(self) -> str | None:
        change, self.change = self.change, None
        return change


def _describe(before: tuple[bool, float | None], now: tuple[bool, float | None]) -> str | None:
    (was, was_db), (is_, is_db) = before, now
    if was != is_:
        return f"its echo on the microphone went from {_name(was, was_db)} to {_name(is_, is_db)}"
    if is_ and was_db is not None and is_db is not None and abs(is_db - was_db) >= JUMP_DB:
        return f"its echo on the microphone went from {was_db:.0f} dB to {is_db:.0f} dB"
    return None


def _name(present: bool, coupling_db: float | None) -> str:
    if not present:
        return "absent"
    return f"present at {coupling_db:.0f} dB" if coupling_db is not None else "present"
