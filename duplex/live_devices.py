"""Open the sound card for one live session: speaker, echo canceller, microphone, session clock.

Shared by `duplex-chat` (live) and `duplex-kiosk`, so both pick devices, cancel echo, start the
clock and recover from failing devices the same way. The streams live inside an
`audio_io.live_link.LiveLink`: when one fails, the link reopens both (the same devices, by
name) for `live.device_retry_s`, while the engine's controller waits in DEGRADED. A device that
fails to open at the start closes what was already opened (no retry: a typo should fail fast).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from duplex.clock import WallClock
from duplex.config import LiveConfig

if TYPE_CHECKING:
    from audio_io.devices import DeviceInfo
    from audio_io.live_input import LiveInput
    from audio_io.live_link import LinkedMic, LinkedSpeaker, LiveLink
    from audio_io.live_output import LiveOutput
    from audio_io.speaker import SpeakerQueue

GUARD_WITHOUT_AEC_S = 0.5  # with no echo canceller, ignore the microphone this long after the model starts
START_TIMEOUT_S = 10.0  # the first open: devices can stall for seconds at start
REOPEN_TIMEOUT_S = 2.0  # a reopen attempt: its streams must call back within this


@dataclass(slots=True)
class LiveDevices:
    mic: LinkedMic
    speaker: LinkedSpeaker
    clock: WallClock
    aec: str
    guard_s: float
    link: LiveLink

    def close(self) -> None:
        self.link.close()


async def open_live_devices(live: LiveConfig, *, tap: Any = None) -> LiveDevices:
    """Open and start both streams; the session clock starts at the microphone's first block."""
    from audio_io.live_link import LiveLink
    from duplex.audio_setup import aec_from_config, device_from_config

    names = {"input": device_from_config(live, "input"), "output": device_from_config(live, "output")}
    aec = aec_from_config(live)
    guard = live.guard_s if live.guard_s is not None else (0.0 if aec.name != "none" else GUARD_WITHOUT_AEC_S)
    common: dict[str, Any] = {"rate": live.sample_rate, "block_ms": live.block_ms, "latency": live.latency}
    clock: WallClock | None = None
    first = True

    async def opener(queue: SpeakerQueue) -> tuple[LiveInput, LiveOutput]:
        nonlocal first
        if first:
            mic_info, spk_info = names["input"], names["output"]
        else:  # the device list may have changed (a server restart, a replug): rescan, find by name
            mic_info, spk_info = await asyncio.to_thread(_refind, names["input"], names["output"])
            aec.reset()
        now = clock.now if clock is not None else _zero
        mic, speaker = await _open_pair(live, mic_info, spk_info, queue, common, aec=aec, guard=guard, tap=tap,
                                        now=now, timeout=START_TIMEOUT_S if first else REOPEN_TIMEOUT_S)
        first = False
        return mic, speaker

    link = LiveLink(opener, retry_s=live.device_retry_s)
    await link.open()
    clock = WallClock()
    link.current_speaker.now = link.current_mic.now = clock.now
    return LiveDevices(mic=link.mic, speaker=link.speaker, clock=clock, aec=aec.name, guard_s=guard, link=link)


def _zero() -> float:
    return 0.0


async def _open_pair(live: LiveConfig, mic_info: DeviceInfo, spk_info: DeviceInfo, queue: SpeakerQueue,
                     common: dict[str, Any], *, aec: Any, guard: float, tap: Any, now: Any,
                     timeout: float) -> tuple[LiveInput, LiveOutput]:
    from audio_io.live_input import LiveInput
    from audio_io.live_output import LiveOutput

    opened: list[LiveInput | LiveOutput] = []
    try:
        speaker = LiveOutput(spk_info, jitter_s=live.jitter_ms / 1000, queue=queue, now=now, **common)
        opened.append(speaker)
        mic = LiveInput(mic_info, output=speaker, aec=aec, guard_s=guard, stall_s=live.stall_s, tap=tap, now=now,
                        **common)
        opened.append(mic)
        speaker.start()
        await mic.start(timeout)
        await speaker.started(timeout)
    except BaseException:
        for device in opened:
            device.close()
        raise
    return mic, speaker


def _refind(mic: DeviceInfo, speaker: DeviceInfo) -> tuple[DeviceInfo, DeviceInfo]:
    """The same devices, by name, in a fresh PortAudio device list (no stream of ours is open)."""
    from audio_io.devices import find_device, rescan

    rescan()
    return find_device(mic.name, "input"), find_device(speaker.name, "output")
