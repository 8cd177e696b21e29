"""`duplex-kiosk` rides out a sound server restart (issue 13, item 11): DEGRADED on MQTT, then
LISTENING on new streams, and the same session answers the next question."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests import mqtt_fixtures, pulse_fixtures
from tests.mqtt_fixtures import BASE, Broker, Watcher, kiosk_argv, kiosk_env

broker, pulse = mqtt_fixtures.broker, pulse_fixtures.pulse
STATE, EVENT = f"{BASE}/state", f"{BASE}/event"


@pytest.mark.slow
async def test_a_live_kiosk_goes_degraded_and_comes_back_with_the_sound_server(
        pulse: pulse_fixtures.Pulse, broker: Broker, speech: Callable[..., Path], tmp_path: Path) -> None:  # noqa: F811
    reply = tmp_path / "reply.wav"
    audio, rate = sf.read(str(speech("Today the weather is sunny with a light breeze from the west.")))
    sf.write(reply, np.resize(audio, int(4.0 * rate)), rate)
    config = tmp_path / "kiosk.yaml"
    config.write_text("live: {tui: false}\n" + broker.config_yaml())
    sets = ["live.input_device=pulse", "live.output_device=pulse", f"live.sample_rate={pulse_fixtures.RATE}",
            "live.device_retry_s=30", "backbone=policy", "policy.responder=wav", f"policy.reply_wav={reply}"]
    env = {**pulse.runtime_env(), "PYTHONPATH": kiosk_env()["PYTHONPATH"]}
    with (tmp_path / "kiosk.jsonl").open("wb") as log:
        kiosk = await asyncio.create_subprocess_exec(
            *kiosk_argv("--config", str(config), *[x for s in sets for x in ("--set", s)]),
            stdout=log, stderr=asyncio.subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        async with Watcher(broker, f"{BASE}/#") as watcher:
            await watcher.wait_for(STATE, lambda s: s["session"] == "running" and s["state"] == "LISTENING")
            await asyncio.to_thread(pulse.restart, 2.0)
            await watcher.wait_for(STATE, lambda s: s["state"] == "DEGRADED" and s["session"] == "running")
            await watcher.wait_for(EVENT, lambda e: e["type"] == "device" and e["what"] == "recovered")
            await watcher.wait_for(STATE, lambda s: s["state"] == "LISTENING" and s["session"] == "running")
            await asyncio.sleep(1.0)
            await asyncio.to_thread(pulse.play(speech("What is the weather like today?")).wait, 10)
            await watcher.wait_for(STATE, lambda s: s["state"] == "SPEAKING")
            kiosk.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(kiosk.wait(), 30) == 0
    finally:
        if kiosk.returncode is None:
            kiosk.kill()
            await kiosk.wait()
    sessions = [s.json() for s in watcher.on(EVENT) if s.json()["type"] == "session" and s.json()["what"] == "started"]
    assert len(sessions) == 1, "the kiosk restarted its session instead of recovering it"
