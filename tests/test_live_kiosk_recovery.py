"""`duplex-kiosk` rides out device faults (issue 13, item 11): DEGRADED on MQTT, then LISTENING on
new streams, and the same session answers the next question. Faults: a sound server restart, and
the speaker's sink module unloaded mid-reply (PulseAudio moves the stream to another sink)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests import mqtt_fixtures, pulse_fixtures
from tests.mqtt_fixtures import BASE, Broker, Watcher, kiosk_argv, kiosk_env

broker, pulse = mqtt_fixtures.broker, pulse_fixtures.pulse
STATE, EVENT = f"{BASE}/state", f"{BASE}/event"
QUESTION = "What is the weather like today?"


@asynccontextmanager
async def _kiosk(server: pulse_fixtures.Pulse, mqtt: Broker, speech: Callable[..., Path], folder: Path,
                 reply_s: float) -> AsyncIterator[Watcher]:
    """A live kiosk on the loopback whose model answers with `reply_s` of speech; stopped with
    SIGTERM at the end (exit 0), and it must have run one session all along."""
    reply = folder / "reply.wav"
    audio, rate = sf.read(str(speech("Today the weather is sunny with a light breeze from the west.")))
    sf.write(reply, np.resize(audio, int(reply_s * rate)), rate)
    config = folder / "kiosk.yaml"
    config.write_text("live: {tui: false}\n" + mqtt.config_yaml())
    sets = ["live.input_device=pulse", "live.output_device=pulse", f"live.sample_rate={pulse_fixtures.RATE}",
            "live.device_retry_s=30", "backbone=policy", "policy.responder=wav", f"policy.reply_wav={reply}",
            "policy.max_reply_s=12"]
    env = {**server.runtime_env(), "PYTHONPATH": kiosk_env()["PYTHONPATH"]}
    with (folder / "kiosk.jsonl").open("wb") as log:
        kiosk = await asyncio.create_subprocess_exec(
            *kiosk_argv("--config", str(config), *[x for s in sets for x in ("--set", s)]),
            stdout=log, stderr=asyncio.subprocess.STDOUT, env=env, cwd=folder)
    try:
        async with Watcher(mqtt, f"{BASE}/#") as watcher:
            await watcher.wait_for(STATE, lambda s: s["session"] == "running" and s["state"] == "LISTENING")
            yield watcher
            kiosk.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(kiosk.wait(), 30) == 0
    finally:
        if kiosk.returncode is None:
            kiosk.kill()
            await kiosk.wait()
    sessions = [s.json() for s in watcher.on(EVENT) if s.json()["type"] == "session" and s.json()["what"] == "started"]
    assert len(sessions) == 1, "the kiosk restarted its session instead of recovering it"


def _speaking(watcher: Watcher) -> int:
    return sum(s.json()["state"] == "SPEAKING" for s in watcher.on(STATE))


async def _ask(server: pulse_fixtures.Pulse, watcher: Watcher, speech: Callable[..., Path], answers: int) -> None:
    """Ask the question; the model answers (its `answers`-th turn)."""
    await asyncio.to_thread(server.play(speech(QUESTION)).wait, 10)
    await watcher.wait_until(lambda: _speaking(watcher) >= answers, what=f"answer {answers}")


def _listening_after_recovery(watcher: Watcher) -> bool:
    seen = list(watcher.seen)
    back = next((i for i, s in enumerate(seen) if s.topic == EVENT and s.json()["type"] == "device"
                 and s.json()["what"] == "recovered"), None)
    return back is not None and any(s.topic == STATE and s.json()["state"] == "LISTENING"
                                    and s.json()["session"] == "running" for s in seen[back:])


async def _degraded_then_back(watcher: Watcher) -> None:
    await watcher.wait_for(STATE, lambda s: s["state"] == "DEGRADED" and s["session"] == "running")
    await watcher.wait_until(lambda: _listening_after_recovery(watcher), what="LISTENING after the recovery")


@pytest.mark.slow
async def test_a_live_kiosk_goes_degraded_and_comes_back_with_the_sound_server(
        pulse: pulse_fixtures.Pulse, broker: Broker, speech: Callable[..., Path], tmp_path: Path) -> None:  # noqa: F811
    async with _kiosk(pulse, broker, speech, tmp_path, reply_s=4.0) as watcher:
        await asyncio.to_thread(pulse.restart, 2.0)
        await _degraded_then_back(watcher)
        await asyncio.sleep(1.0)
        await _ask(pulse, watcher, speech, answers=1)


@pytest.mark.slow
async def test_a_live_kiosk_whose_speaker_sink_is_unloaded_mid_reply_stops_and_comes_back(
        pulse: pulse_fixtures.Pulse, broker: Broker, speech: Callable[..., Path], tmp_path: Path) -> None:  # noqa: F811
    async with _kiosk(pulse, broker, speech, tmp_path, reply_s=10.0) as watcher:
        await _ask(pulse, watcher, speech, answers=1)
        await asyncio.sleep(2.0)  # the reply plays: no echo on this speaker
        module = await asyncio.to_thread(pulse.unload, "duplex_speaker")
        await _degraded_then_back(watcher)
        lost = next(s.json() for s in watcher.on(EVENT) if s.json()["type"] == "device" and s.json()["what"] == "lost")
        assert "moved" in lost["message"], lost
        await asyncio.to_thread(pulse.reload, module)
        await asyncio.sleep(1.0)
        await _ask(pulse, watcher, speech, answers=2)
