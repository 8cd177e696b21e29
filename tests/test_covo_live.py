"""Both covo modes run live (`duplex-chat` on a private PulseAudio loopback), tiny checkpoint on CPU (slow: ~70 s)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.covo_fixtures import tiny_checkpoint, token2wav_standin  # noqa: E402
from tests.live_harness import start_runtime  # noqa: E402
from tests.pulse_fixtures import Pulse, pulse  # noqa: E402, F401  (fixture)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


def covo_sets(tiny: Path, mode: str, *extra: str) -> list[str]:
    return ["backbone=covo", f"covo.checkpoint={tiny}", f"covo.mode={mode}", "covo.device=cpu", "covo.cpu_threads=1",
            "covo.system_prompt=You are Covo.", "covo.context_tokens=512", "covo.encoder_window_steps=8", *extra]


@pytest.mark.slow  # about 35 s: a PulseAudio daemon, a child process importing torch
def test_turn_mode_answers_a_question_live(pulse: Pulse, speech, tiny: Path, tmp_path: Path) -> None:  # noqa: F811
    keys = token2wav_standin(tmp_path / "Covo-Audio")
    sets = covo_sets(tiny, "turn", "covo.interleave=0,1", "covo.max_reply_tokens=50",
                     *(f"covo.{key}={value}" for key, value in keys.items()))
    runtime = start_runtime(pulse, tmp_path, duration=9.0, sets=sets)
    runtime.wait_started(timeout=60.0)  # importing torch and loading the model come first
    time.sleep(0.4)
    pulse.play(speech("What is the weather like today?")).wait(timeout=10)
    assert runtime.wait_event(lambda e: e.get("type") == "control" and e.get("token") == "SHIFT", 4.0)
    assert runtime.wait_event(lambda e: e.get("type") == "speaker" and e.get("what") == "started", 4.0)
    runtime.finish(timeout=30.0)


@pytest.mark.slow
def test_native_mode_runs_live_without_overruns(pulse: Pulse, speech, tiny: Path, tmp_path: Path) -> None:  # noqa: F811
    runtime = start_runtime(pulse, tmp_path, duration=5.0, sets=covo_sets(tiny, "native"))
    runtime.wait_started(timeout=60.0)
    pulse.play(speech("Hello, can you hear me?")).wait(timeout=10)
    runtime.finish(timeout=30.0)
    events = runtime.read_events()
    steps = [e for e in events if e.get("type") == "session" and e.get("what") == "stopped"]
    assert steps and steps[0]["steps"] >= 20
    assert not [e for e in events if e.get("type") == "overrun"]
