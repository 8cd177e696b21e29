"""NaN/inf input samples: replaced with silence before the model hears them, reported once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from audio_io.wav import load_mono16k
from duplex.backbones import load_model
from duplex.config import Config
from duplex.events import Event, EventType
from duplex.finite import SampleGuard
from duplex.session import DuplexSession

CONVERSATION = Path(__file__).resolve().parents[1] / "examples" / "audio" / "conversation.wav"


class ArrayInput:
    """An InputDevice over samples held in memory (float32: NaN survives, unlike a PCM WAV)."""

    def __init__(self, audio: np.ndarray) -> None:
        self._audio = audio
        self._at = 0

    async def read(self) -> np.ndarray | None:
        if self._at >= self._audio.size:
            return None
        chunk = np.zeros(2560, np.float32)
        part = self._audio[self._at:self._at + 2560]
        chunk[:part.size] = part
        self._at += 2560
        return chunk

    def close(self) -> None:
        pass


def test_the_guard_replaces_and_reports_once() -> None:
    guard, reports = SampleGuard(), []
    clean = np.full(2560, 0.1, np.float32)
    assert guard.clean(clean, 0.0, lambda **d: reports.append(d)) is clean  # no copy when all is well
    bad = clean.copy()
    bad[[96, 100]] = [np.nan, np.inf]
    out = guard.clean(bad, 0.16, lambda **d: reports.append(d))
    assert np.isfinite(out).all() and out[96] == 0 and out[100] == 0 and out[0] == np.float32(0.1)
    out = guard.clean(np.full(2560, -np.inf, np.float32), 0.32, lambda **d: reports.append(d))
    assert not out.any()
    assert reports == [{"samples": 2, "at": 0.166, "replaced_with": "silence"}]
    assert guard.replaced == 2562


async def _events(model: object, audio: np.ndarray) -> list[Event]:
    session = DuplexSession(config=Config(), input=ArrayInput(audio), model=model)  # type: ignore[arg-type]
    events = session.events()
    async with session:
        await session.wait()
    return events.pending()


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_one_nan_sample_does_not_cost_tiny_fd_the_first_turn() -> None:
    audio = load_mono16k(CONVERSATION)[: 16000 * 7]
    model = load_model(Config())
    reference = asyncio.run(_events(model, audio))
    poisoned = audio.copy()
    poisoned[96] = np.nan  # 6 ms in
    events = asyncio.run(_events(model, poisoned))

    def first_shift(history: list[Event]) -> float:
        return next(e.t for e in history if e.type is EventType.CONTROL and e.data["token"] == "SHIFT")

    assert first_shift(events) == first_shift(reference) < 6.0
    bad = [e for e in events if e.type is EventType.BAD_SAMPLES]
    assert len(bad) == 1 and bad[0].data == {"samples": 1, "at": 0.006, "replaced_with": "silence"}
    assert not any(e.type is EventType.BAD_SAMPLES for e in reference)
