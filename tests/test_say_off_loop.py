"""say(path) decodes on a worker thread: a long or resample-heavy file never stalls the event loop.

Issue 13 case 8: a file given to say() was decoded and resampled on the event loop (a 148 KB
1 Hz WAV blocked it for 22.5 s). Now only the header is read there; the samples are converted by
`load_clip_async` and submitted when ready, and the model still speaks them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from duplex.config import Config
from duplex.errors import AudioFileError, NotSupportedError
from duplex.events import EventType
from duplex.session import DuplexSession
from tests.fakes import max_loop_stall, scripted_model
from tests.speech import silence, write_wav

STEP_S = 0.16


def tone_file(path: Path, seconds: float, rate: int) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, subtype="PCM_16")
    return path



@pytest.mark.parametrize("seconds, rate", [pytest.param(100.0, 8_000, marks=pytest.mark.slow), (60.0, 384_000)],
                         ids=["100s-8kHz", "60s-384kHz"])
async def test_a_long_file_given_to_say_never_blocks_the_loop_and_is_spoken(
        tmp_path: Path, seconds: float, rate: int) -> None:
    said = tone_file(tmp_path / "long.wav", seconds, rate)
    quiet = write_wav(tmp_path / "quiet.wav", silence(3.0))
    async with DuplexSession(config=Config(backbone="policy"), input=quiet, output=tmp_path / "out.wav",
                             realtime=True) as session:
        subscription = session.events()
        stop = asyncio.Event()
        ticker = asyncio.create_task(max_loop_stall(stop))
        await asyncio.sleep(0.05)
        task = session.say(said)
        if task is not None:
            await task  # decoded on a thread and queued
        stop.set()
        gap = await ticker
        events = [event async for event in subscription]
    assert gap < STEP_S, f"the event loop was held for {gap * 1000:.0f} ms"  # checked first: it is the bug
    assert task is not None  # say(path) returns the decoding task
    said_events = [e.data for e in events if e.type is EventType.COMMAND and e.data.get("command") == "say"]
    assert said_events == [{"command": "say", "seconds": seconds}]
    assert {"token": "SHIFT"} in [e.data for e in events if e.type is EventType.CONTROL]
    played = sf.read(tmp_path / "out.wav", dtype="float32")[0]
    assert np.abs(played).max() > 0.1  # the tone reached the speaker


async def test_a_bad_file_is_still_refused_at_once(tmp_path: Path) -> None:
    quiet = write_wav(tmp_path / "quiet.wav", silence(0.5))
    too_long = tone_file(tmp_path / "long.wav", 130.0, 8_000)
    async with DuplexSession(config=Config(backbone="policy"), input=quiet) as session:
        with pytest.raises(AudioFileError, match=r"say\(\): 130.0 s long"):
            session.say(too_long)
        with pytest.raises(AudioFileError, match="no such file"):
            session.say(tmp_path / "nope.wav")


async def test_say_a_file_on_a_model_that_cannot_is_refused_at_once(tmp_path: Path) -> None:
    clip = tone_file(tmp_path / "c.wav", 0.5, 16_000)
    quiet = write_wav(tmp_path / "quiet.wav", silence(0.5))
    async with DuplexSession(input=quiet, model=scripted_model([])) as session:
        with pytest.raises(NotSupportedError, match="cannot speak on request"):
            session.say(clip)
