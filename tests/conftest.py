"""Shared fixtures: spoken clips (espeak-ng) cached for the whole test session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.speech import speak


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """speech("text", voice=..., speed=..., pitch=..., gain_db=...) -> Path to a 16 kHz WAV."""
    cache = tmp_path_factory.mktemp("speech")
    return lambda text, **kw: speak(cache, text, **kw)
