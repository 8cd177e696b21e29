"""Whether a microphone chunk holds the user's voice, for tiny-fd's barge-in rules.

Kept apart from the rules because it is the one place that reads levels: WebRTC's detector, the
room's noise floor and the echo of what the speaker played, which the network cannot be trusted to
tell from a voice it never met.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from audio_io.format import SAMPLE_RATE, rms
from audio_io.levels import NoiseFloor
from audio_io.vad import Vad, make_vad

REARM_LEVEL = 10 ** (-45 / 20)  # RMS of a chunk that counts as the user making a sound (as the policy's floor)
# the noise floor (audio_io.levels.NoiseFloor): the quietest chunk of the last 5 s; speech is 6 dB
# above it; never taken above -40 dBFS (in long speech, its quietest chunk) nor under REARM_LEVEL
ECHO_MARGIN = 0.5  # ... and, for the echo's tail, above half of what the speaker played lately
USER_VOICE_AGGRESSIVENESS = 3  # WebRTC's strictest mode (`tiny_fd.vad: webrtc`)
VOICE_TAIL = round(0.04 * SAMPLE_RATE)  # a chunk's last 40 ms: is the voice coming back?


class UserVoice:
    """Whether a chunk holds the user's speech: a voice detector (`tiny_fd.vad`: WebRTC's by default,
    Silero's for loud rooms), above the noise floor and the echo."""

    def __init__(self, vad: str = "webrtc") -> None:
        self.vad: Vad = make_vad(vad, USER_VOICE_AGGRESSIVENESS)
        self.noise = NoiseFloor(least=REARM_LEVEL)
        self.played: deque[float] = deque(maxlen=2)  # speaker level, this chunk and the one before

    def reset(self) -> None:
        self.vad.reset()
        self.noise.reset()
        self.played.clear()

    def observe(self, chunk: np.ndarray, played: float) -> float:
        """Every step: the chunk's level, for the noise floor; `played`: the reference's level."""
        level = rms(chunk)
        self.noise.observe(level)
        self.played.append(played)
        return level

    def speaking(self, chunk: np.ndarray, level: float) -> bool:
        floor = max(self.noise.quiet(), ECHO_MARGIN * max(self.played, default=0.0))
        return level > floor and self.vad.speech_prob(chunk) >= 0.5

    def returning(self, chunk: np.ndarray) -> bool:
        """After `speaking` on this chunk: does it end in the user's voice? A chunk is speech when
        most of its frames are, so a voice coming back after a short gap (a breath inside a
        question) ends a chunk the detector calls silent; its first frames are soft (-54 and -47 dBFS
        on two held-out ones), so they need only be a sound over the room, not over its floor (the
        level is checked at all: the detector's hangover flags frames of digital silence after speech).

        The detector runs only on chunks over the floor (`speaking`), and such a chunk mostly is not:
        then `ends_in_speech` is its verdict on the last chunk it ran on, the end of the speech before
        the gap. That is the rule as measured in rounds 23-24 (a voice that stopped mid-word and comes
        back); one that runs the detector on every chunk's end would be another rule, not measured."""
        return self.vad.ends_in_speech and self.noise.sounds(rms(chunk[-VOICE_TAIL:]))

    def silent(self, level: float) -> bool:
        """Nothing but the room in this chunk: at or under the noise floor (no echo margin)."""
        return self.noise.silent(level)
