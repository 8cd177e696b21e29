"""LiveLink with fake streams: DEGRADED on a failure, silence while down, backoff, recovery, give-up."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import numpy as np
import pytest

from audio_io.format import STEP_SAMPLES
from audio_io.live_link import SPEAKER_STALL_S, LiveLink
from audio_io.speaker import SpeakerQueue
from duplex.errors import DeviceError


class FakeMic:
    def __init__(self, name: str) -> None:
        self.device = SimpleNamespace(name=name)
        self.fail: str | None = None
        self.closed = False

    async def read(self) -> np.ndarray | None:
        await asyncio.sleep(0.005)
        if self.fail:
            raise DeviceError(self.fail)
        return np.full(STEP_SAMPLES, 0.25, dtype=np.float32)

    def close(self) -> None:
        self.closed = True


class FakeSpeaker:
    def __init__(self, name: str) -> None:
        self.device = SimpleNamespace(name=name)
        self.error: str | None = None
        self.stalled_at: float | None = None  # a live stream calls back every block until it stalls
        self.audible_since: float | None = None
        self.closed = False

    @property
    def last_callback(self) -> float:
        return self.stalled_at if self.stalled_at is not None else time.monotonic()

    def now(self) -> float:
        return 12.0

    def close(self) -> None:
        self.closed = True


class Opener:
    """Opens fake pairs; fails while `down` (like a sound server that is not back yet)."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0
        self.at: list[float] = []
        self.pairs: list[tuple[FakeMic, FakeSpeaker]] = []
        self.queues: list[SpeakerQueue] = []

    async def __call__(self, queue: SpeakerQueue) -> tuple[FakeMic, FakeSpeaker]:
        self.calls += 1
        self.at.append(time.monotonic())
        self.queues.append(queue)
        if self.down:
            raise DeviceError("microphone 'pulse' cannot be opened (Connection refused)")
        pair = (FakeMic("pulse"), FakeSpeaker("pulse"))
        self.pairs.append(pair)
        return pair


async def _session(link: LiveLink, steps: int) -> list[float]:
    levels = []
    for _ in range(steps):
        chunk = await link.mic.read()
        assert chunk is not None
        levels.append(float(chunk.max()))
        await asyncio.sleep(0.01)
    return levels


def test_a_failed_mic_degrades_reads_silence_retries_and_comes_back() -> None:
    async def main() -> None:
        opener = Opener()
        link = LiveLink(opener, retry_s=10.0)
        news: list[tuple[bool, str]] = []
        link.mic.attach_status(lambda ok, msg: news.append((ok, msg)))
        await link.open()
        assert await _session(link, 3) == [0.25] * 3
        link.queue.push(np.ones(16_000, dtype=np.float32))  # a reply still queued when it fails
        link.current_speaker.audible_since = 11.0
        opener.down = True
        link.current_mic.fail = "microphone 'pulse' stopped unexpectedly"
        old_mic, old_speaker = link.current_mic, link.current_speaker
        assert await _session(link, 1) == [0.0]  # silence at once, no waiting on the dead stream
        assert news == [(False, "microphone 'pulse' stopped unexpectedly")]
        assert old_mic.closed and old_speaker.closed and link.queue.queued == 0  # nothing stale left
        assert link.queue.take_marks()[-1] == (12.0, False)  # the speaker went quiet at the failure
        await asyncio.sleep(0.9)  # attempts at 0, 0.25, 0.75 s (backoff doubles)
        assert await _session(link, 2) == [0.0, 0.0]
        tried = opener.calls
        assert 3 <= tried <= 4, opener.at
        gaps = np.diff(opener.at[1:])
        assert all(b >= a * 1.5 for a, b in zip(gaps, gaps[1:], strict=False)), gaps
        opener.down = False
        await asyncio.sleep(2.2)
        levels = await _session(link, 3)
        assert levels[-1] == 0.25 and len(news) == 2 and news[1][0] is True, news
        assert "devices back" in news[1][1]
        assert link.recoveries == 1 and link.failures == 1
        assert all(q is link.queue for q in opener.queues)  # the engine's queue survives every reopen
        assert link.speaker.queue is link.queue and link.speaker.device.name == "pulse"
        link.close()
        assert await link.mic.read() is None

    asyncio.run(main())


def test_a_stalled_speaker_is_a_failure_too() -> None:
    async def main() -> None:
        opener = Opener()
        link = LiveLink(opener, retry_s=5.0)
        news: list[tuple[bool, str]] = []
        link.attach_status(lambda ok, msg: news.append((ok, msg)))
        await link.open()
        link.current_speaker.stalled_at = time.monotonic() - SPEAKER_STALL_S - 0.5  # a suspended sink
        assert await _session(link, 1) == [0.0]
        assert news and news[0][0] is False and "stalled" in news[0][1]
        await asyncio.sleep(0.1)
        assert (await _session(link, 1))[0] == 0.25 and news[-1][0] is True
        link.close()

    asyncio.run(main())


def test_devices_that_never_come_back_end_the_session_after_retry_s() -> None:
    async def main() -> None:
        opener = Opener()
        link = LiveLink(opener, retry_s=0.6)
        await link.open()
        opener.down = True
        link.current_mic.fail = "microphone 'pulse' stopped unexpectedly"
        await _session(link, 1)
        await asyncio.sleep(1.0)
        with pytest.raises(DeviceError, match="not back after 1 s .*Connection refused"):
            await link.mic.read()
        link.close()

    asyncio.run(main())


def test_a_microphone_whose_noise_floor_jumps_is_reported_once_not_as_a_failure() -> None:
    from audio_io.mic_profile import MicProfile

    profile = MicProfile()
    rng = np.random.default_rng(0)
    changes = []
    for k in range(200):  # 32 s: a mic at -60 dBFS noise, talked into now and then; moved at 20 s
        level = -60.0 if k < 125 else -95.0
        chunk = rng.standard_normal(STEP_SAMPLES).astype(np.float32) * 10 ** (level / 20)
        if k % 20 < 8 and k < 125:
            chunk += rng.standard_normal(STEP_SAMPLES).astype(np.float32) * 0.05  # speech-loud bursts
        profile.add(chunk)
        if change := profile.take_change():
            changes.append((k, change))
    assert len(changes) == 1 and 125 < changes[0][0] <= 125 + 12 + 10, changes
    assert "-60 -> -95" in changes[0][1]
