"""Open the sound card for one live session: speaker, echo canceller, microphone, session clock.

Shared by `duplex-chat` (live) and `duplex-kiosk`, so both pick devices, cancel echo and start
the clock the same way. A device that fails to open closes what was already opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from duplex.clock import WallClock
from duplex.config import LiveConfig

if TYPE_CHECKING:
    from audio_io.live_input import LiveInput
    from audio_io.live_output import LiveOutput

GUARD_WITHOUT_AEC_S = 0.5  # with no echo canceller, ignore the microphone this long after the model starts


@dataclass(slots=True)
class LiveDevices:
    mic: LiveInput
    speaker: LiveOutput
    clock: WallClock
    aec: str
    guard_s: float

    def close(self) -> None:
        for device in (self.mic, self.speaker):
            device.close()


async def open_live_devices(live: LiveConfig, *, tap: Any = None) -> LiveDevices:
    """Open and start both streams; the session clock starts at the microphone's first block."""
    from audio_io.aec import make_aec
    from audio_io.devices import find_device
    from audio_io.live_input import LiveInput
    from audio_io.live_output import LiveOutput

    mic_info = find_device(live.input_device, "input")
    spk_info = find_device(live.output_device, "output")
    aec = make_aec(live.aec)
    guard = live.guard_s if live.guard_s is not None else (0.0 if aec.name != "none" else GUARD_WITHOUT_AEC_S)
    common: dict[str, Any] = {"rate": live.sample_rate, "block_ms": live.block_ms, "latency": live.latency}
    opened: list[LiveInput | LiveOutput] = []
    try:
        speaker = LiveOutput(spk_info, jitter_s=live.jitter_ms / 1000, **common)
        opened.append(speaker)
        mic = LiveInput(mic_info, output=speaker, aec=aec, guard_s=guard, stall_s=live.stall_s, tap=tap, **common)
        opened.append(mic)
        speaker.start()
        await mic.start()
    except BaseException:
        for device in opened:
            device.close()
        raise
    clock = WallClock()
    speaker.now = clock.now
    return LiveDevices(mic=mic, speaker=speaker, clock=clock, aec=aec.name, guard_s=guard)
