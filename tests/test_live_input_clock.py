"""The live microphone: one session clock with the speaker, a tracked reference offset, and a
recorder that gets what the engine took (fake PortAudio; see test_live_devices.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import soundfile as sf
import soxr

import audio_io.live_input as live_input
from audio_io.devices import DeviceInfo
from audio_io.format import SAMPLE_RATE, STEP_SAMPLES
from tests.test_live_devices import fake_sd, play, speaker, status  # noqa: F401  (fixture)

RATE = 48_000


async def _mic(clock: list[float], **kw: object) -> live_input.LiveInput:
    mic = live_input.LiveInput(DeviceInfo(1, "fake mic", "ALSA", 1, 0, RATE), rate=RATE, block_ms=20,
                               now=lambda: clock[0], **kw)  # type: ignore[arg-type]
    start = asyncio.create_task(mic.start(timeout=2))
    await asyncio.sleep(0)
    mic._stream.callback(np.zeros((mic.block, 1), np.float32), mic.block, None, status())
    await start
    return mic


async def test_speech_times_are_read_off_the_session_clock_not_counted_chunks(
        fake_sd: SimpleNamespace, speech) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    clip, _ = sf.read(str(speech("Hello there, how are you today?")), dtype="float32")
    audio = np.concatenate([np.zeros(SAMPLE_RATE), clip, np.zeros(SAMPLE_RATE)]).astype(np.float32)
    audio48 = soxr.resample(audio, SAMPLE_RATE, RATE).astype(np.float32)
    clock = [100.0]  # the session clock, far from 0: chunk counting would say ~1 s
    mic = await _mic(clock)
    drift = 1.01  # this sound card runs 1 % slow against the session clock
    for i in range(0, audio48.size - mic.block, mic.block):
        clock[0] += mic.block / RATE * drift
        mic._stream.callback(audio48[i : i + mic.block, None].copy(), mic.block, None, status())
        await asyncio.sleep(0)
    onset = 100.0 + 1.0 * drift
    assert abs(mic.speech_started - onset) <= 0.2, mic.speech_started
    assert mic.speech_ended > mic.speech_started + (clip.size / SAMPLE_RATE) * 0.6
    mic.close()


async def test_the_reference_offset_is_tracked_not_rederived_per_callback(fake_sd: SimpleNamespace) -> None:  # noqa: F811
    out, spk_clock = speaker(jitter_s=0.0)
    clock = [0.0]
    mic = await _mic(clock, output=out)
    rng = np.random.default_rng(1)
    offsets = set()
    for k in range(300):  # one block each, in an irregular order, as two device threads run
        first = rng.random() < 0.5
        if first:
            play(out, spk_clock, 1)
        clock[0] += 0.02
        mic._stream.callback(np.zeros((mic.block, 1), np.float32), mic.block, None, status())
        if not first:
            play(out, spk_clock, 1)
        await asyncio.sleep(0)
        if k > 40:
            offsets.add(mic._offset)
    raw = {int(v) for v in mic._seen}
    assert len(raw) > 1, "the test should make the per-callback offset jitter"
    assert len(offsets) == 1 and mic.offset_moves == 0, offsets
    out.reference.write(np.zeros(4_800, np.float32))  # a speaker hiccup: 0.3 s more reference at once
    for _ in range(40):
        play(out, spk_clock, 1)
        mic._stream.callback(np.zeros((mic.block, 1), np.float32), mic.block, None, status())
        await asyncio.sleep(0)
    assert mic.offset_moves == 1 and abs(mic._offset - next(iter(offsets)) - 4_800) <= 2 * out.n16
    mic.close()


async def test_the_recorder_gets_what_the_engine_took_not_chunks_dropped_under_backlog(
        fake_sd: SimpleNamespace, tmp_path: Path) -> None:  # noqa: F811
    taken: list[np.ndarray] = []
    tap = SimpleNamespace(chunk=lambda raw, clean, played: taken.append(clean.copy()))
    clock = [0.0]
    mic = await _mic(clock, tap=tap, max_backlog=3)
    ramp = np.arange(RATE * 2, dtype=np.float32) / (RATE * 2) * 0.5  # each chunk differs
    for i in range(0, ramp.size, mic.block):  # 2 s = 12 chunks, the engine reads none (backlog)
        mic._stream.callback(ramp[i : i + mic.block, None].copy(), mic.block, None, status())
        await asyncio.sleep(0)
    assert mic.dropped_chunks >= 6 and not taken
    got = [await mic.read() for _ in range(3)]
    assert len(taken) == 3 and all(np.array_equal(a, b) for a, b in zip(taken, got, strict=True))
    assert all(c is not None and c.size == STEP_SAMPLES for c in got)
    mic.close()
