"""The engine's view of the speaker: push audio, flush it, count what was heard, report its edges.

Output devices come in two kinds: a clocked one (a WAV sink, memory) plays one step per step
when told to, and the engine decides from the block it played where speech started or stopped;
a callback one (the sound card) plays on its own thread and stamps the edges itself
(`SpeakerQueue.mark`). `playback_for(device)` wraps either in a `Playback`, so the engine has
one way to hear about speaker edges: whatever `before_step` and `after_step` return.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from audio_io.format import SAMPLE_RATE, STEP_SECONDS, UNIT_SAMPLES
from audio_io.speaker import SpeakerQueue

Edge = tuple[float, bool]  # (session seconds, audible)


class OutputDevice(Protocol):
    """What a speaker device provides (audio_io's WavOutput, MemoryOutput, LiveOutput...)."""

    queue: SpeakerQueue
    clocked: bool  # True: it plays one step per advance(); False: its own callback plays and marks edges

    def advance(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class Playback:
    """The speaker as the engine drives it; subclasses differ only in who plays and who sees edges."""

    def __init__(self, device: OutputDevice) -> None:
        self.device = device
        self.queue = device.queue
        self.audible = False
        self._turn_start = 0  # queue position of the current turn's first sample

    @property
    def pending(self) -> int:
        """Samples queued and not yet played."""
        return self.queue.queued

    def push(self, audio: np.ndarray) -> None:
        self.queue.push(audio)

    def flush(self) -> None:
        self.queue.flush()

    def hold(self, held: bool) -> None:
        """Pause the queued audio (a held reply) or play it again."""
        if held:
            self.queue.pause()
        else:
            self.queue.resume()

    def start_turn(self, lead_in: np.ndarray) -> None:
        """A model turn starts: remember where it starts in the stream (for `units_heard`)."""
        self._turn_start = self.queue.played + self.queue.queued
        self.audible = False

    def units_heard(self) -> int:
        """Speech units of the current turn that reached the speaker (the fade tail included)."""
        return max(0, self.queue.played + self.queue.queued - self._turn_start) // UNIT_SAMPLES

    def before_step(self, k: int) -> list[Edge]:
        """Step k begins (the microphone records chunk k): edges decided now."""
        return []

    def after_step(self, k: int) -> list[Edge]:
        """Step k's audio is queued: edges decided now."""
        return []


class ClockedPlayback(Playback):
    """The engine plays block k as step k begins and finds the edges inside it (events in time order)."""

    def start_turn(self, lead_in: np.ndarray) -> None:
        if lead_in.size and self.queue.queued == 0:
            self.queue.push(lead_in)  # so the units of a SHIFT step play without a gap (live devices buffer)
        super().start_turn(lead_in)

    def before_step(self, k: int) -> list[Edge]:
        before = self.queue.played
        block = self.device.advance()
        assert block is not None, "a clocked output device returns the block it played"
        from_queue = self.queue.played - before  # fewer than a block: the queue ran dry inside it
        t0 = k * STEP_SECONDS
        edges: list[Edge] = []
        if not self.audible and from_queue:
            self.audible = True
            nonzero = np.flatnonzero(block[:from_queue])
            edges.append((t0 + (nonzero[0] if nonzero.size else 0) / SAMPLE_RATE, True))
        if self.audible and from_queue < block.size:
            self.audible = False
            edges.append((t0 + from_queue / SAMPLE_RATE, False))
        return edges


class CallbackPlayback(Playback):
    """A device callback plays and stamps its own edges; the engine collects them after each step."""

    def after_step(self, k: int) -> list[Edge]:
        marks = self.queue.take_marks()
        if marks:
            self.audible = marks[-1][1]
        return marks


def playback_for(device: OutputDevice) -> Playback:
    return ClockedPlayback(device) if device.clocked else CallbackPlayback(device)
