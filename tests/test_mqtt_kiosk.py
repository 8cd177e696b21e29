"""Kiosk mode: the session host's restarts, the example config as documented, a live kiosk on MQTT."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from duplex.commands import CommandError, Mute, Ping, Reset, Start, Stop, StopSpeaking, Unmute
from duplex.config import load_config
from duplex.events import EventType, Mic
from duplex.kiosk import SessionHost
from duplex.session import DuplexSession
from tests import mqtt_fixtures, pulse_fixtures
from tests.mqtt_fixtures import BASE, ROOT, Broker, Watcher, commander, kiosk_argv, kiosk_env

broker, question, pulse = mqtt_fixtures.broker, mqtt_fixtures.question, pulse_fixtures.pulse

STATE, STATUS, EVENT = (f"{BASE}/{t}" for t in ("state", "status", "event"))
EXAMPLE = ROOT / "examples" / "kiosk" / "kiosk.yaml"


async def until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_failed_session_is_restarted_with_a_growing_delay(question: Path, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[float] = []

    def flaky() -> DuplexSession:
        attempts.append(asyncio.get_running_loop().time())
        path = question if len(attempts) > 2 else tmp_path / "unplugged.wav"  # fails twice, then works
        return DuplexSession(input=path)

    host = SessionHost(open_session=flaky, restart_delay_s=0.1)
    events = host.bus.subscribe()
    with caplog.at_level("WARNING", logger="duplex.kiosk"):
        async with host:
            await until(lambda: host.sessions_started == 1 and host.session is None)
    errors = [e.data["message"] for e in events.pending() if e.type is EventType.ERROR]
    assert errors == [f"AudioFileError: {tmp_path / 'unplugged.wav'}: no such file"] * 2
    delays = [float(m.rsplit("restarting in ", 1)[1].split()[0]) for m in caplog.messages if "restarting in" in m]
    assert delays == [0.1, 0.2]  # doubling per consecutive failure
    assert all(gap >= delay for gap, delay in zip(np.diff(attempts), delays, strict=True))
    assert host.failures == 0 and host.last_error.startswith("AudioFileError")  # reset by the clean session


async def test_an_async_factory_may_open_devices_first(question: Path) -> None:
    async def open_later() -> DuplexSession:
        await asyncio.sleep(0.01)  # e.g. starting a sound card
        return DuplexSession(input=question)

    host = SessionHost(open_session=open_later, once=True)
    events = host.bus.subscribe()
    async with host:
        await asyncio.wait_for(host.finished(), 20)
    assert [e.data["what"] for e in events.pending() if e.type is EventType.SESSION] == ["started", "stopped"]


async def test_stop_is_final_and_commands_need_a_session(question: Path) -> None:
    host = SessionHost(open_session=lambda: DuplexSession(input=mqtt_fixtures.EndlessInput(question)),
                       autostart=False)
    async with host:
        host.command(Ping())
        for cmd in (Mute(), Unmute(), StopSpeaking(), Reset(), Stop()):
            with pytest.raises(CommandError, match=f"no session is running \\('{cmd.name}' needs one"):
                host.command(cmd)
        host.command(Start())
        with pytest.raises(CommandError, match="already running"):
            host.command(Start())
        await until(lambda: host.session is not None)
        host.command(Mute())
        host.command(Stop())
        await until(lambda: host.session is None)
        await asyncio.sleep(0.3)
        assert host.sessions_started == 1 and host.session is None  # not restarted


async def test_leaving_the_host_stops_the_session_and_forwards_its_last_events(question: Path) -> None:
    host = SessionHost(open_session=lambda: DuplexSession(input=mqtt_fixtures.EndlessInput(question), realtime=True))
    events = host.bus.subscribe()
    async with host:
        await until(lambda: host.session is not None)
    history = events.pending()
    assert history[-1].type is EventType.SESSION and history[-1].data["what"] == "stopped"
    assert history[-2].data == {"from": "LISTENING", "to": "IDLE"} and host.session is None


def test_the_example_kiosk_config_is_valid_and_says_what_it_promises() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.mqtt.enabled and not cfg.live.tui and cfg.mqtt.autostart and cfg.mqtt.restart_delay_s > 0
    assert cfg.mqtt.password_file and not cfg.mqtt.password  # the secret lives outside the config
    unit = (ROOT / "examples" / "kiosk" / "duplex-kiosk.service").read_text()
    assert "ExecStart=/opt/duplex/venv/bin/duplex-kiosk --config /etc/duplex/kiosk.yaml" in unit


def test_the_example_kiosk_runs_as_documented(broker: Broker, question: Path, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("anything\n")  # an anonymous broker accepts any credentials
    done = subprocess.run(
        kiosk_argv("--config", str(EXAMPLE), "--set", f"mqtt.host={broker.host}", "--set", f"mqtt.port={broker.port}",
                   "--set", f"mqtt.password_file={tmp_path / 'pw'}", "--input", str(question),
                   "--output", str(tmp_path / "out.wav"), "--once"),
        capture_output=True, text=True, timeout=60, env=kiosk_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    lines = [line for line in done.stdout.splitlines() if line]
    assert all(line.startswith("{") and line.endswith("}") for line in lines)  # JSON lines only
    assert '"type":"control","token":"SHIFT"' in done.stdout and "online at 127.0.0.1" in done.stdout
    assert sf.info(str(tmp_path / "out.wav")).duration > 4.0


@pytest.mark.parametrize(("args", "message"), [
    (["--input", "nope.wav"], "nope.wav: no such file"),
    (["--input", "{q}", "--set", "mqtt.device_id=a/b"], "mqtt.device_id = 'a/b': use letters"),
    (["--input", "{q}", "--set", "mqtt.password_file=/nonexistent/pw"], "mqtt.password_file = '/nonexistent/pw'"),
    (["--input", "{q}", "--set", "mqtt.max_commands=5"], "unknown key 'mqtt.max_commands'"),
    (["--input", "{q}", "--output", "/nonexistent/dir/out.wav"], "/nonexistent/dir/out.wav: its folder /nonexistent"),
])
def test_bad_kiosk_inputs_end_with_one_line_and_status_2(question: Path, tmp_path: Path, args: list[str],
                                                         message: str) -> None:
    argv = [a.replace("{q}", str(question)) for a in args]
    done = subprocess.run(kiosk_argv("--set", "mqtt.enabled=true", *argv), capture_output=True, text=True,
                          timeout=60, env=kiosk_env(), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("duplex-kiosk: error: "), done.stderr
    assert message in done.stderr


async def test_a_live_kiosk_answers_on_the_sound_card_and_obeys_mqtt(pulse: pulse_fixtures.Pulse, broker: Broker,
                                                                     speech: Callable[..., Path],
                                                                     tmp_path: Path) -> None:
    reply = tmp_path / "reply.wav"  # a long reply, so there is time to cut it off
    audio, rate = sf.read(str(speech("Today the weather is sunny with a light breeze from the west.")))
    sf.write(reply, np.resize(audio, int(6.0 * rate)), rate)
    config = tmp_path / "kiosk.yaml"
    config.write_text("live: {tui: false}\n" + broker.config_yaml())
    sets = ["live.input_device=pulse", "live.output_device=pulse", f"live.sample_rate={pulse_fixtures.RATE}",
            "live.aec=none", "live.guard_s=0", "policy.responder=wav", f"policy.reply_wav={reply}"]
    env = {**pulse.runtime_env(), "PYTHONPATH": kiosk_env()["PYTHONPATH"]}
    with (tmp_path / "kiosk.jsonl").open("wb") as log:
        kiosk = await asyncio.create_subprocess_exec(
            *kiosk_argv("--config", str(config), *[x for s in sets for x in ("--set", s)]),
            stdout=log, stderr=asyncio.subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        async with Watcher(broker, f"{BASE}/#") as watcher, commander(broker, BASE) as send:
            await watcher.wait_for(STATE, lambda s: s["session"] == "running" and s["state"] == "LISTENING")
            await asyncio.sleep(0.4)  # the sound server's streams settle (as in the live loopback tests)
            await asyncio.to_thread(pulse.play(speech("What is the weather like today?")).wait, 10)
            await watcher.wait_for(STATE, lambda s: s["state"] == "SPEAKING")
            assert (await send({"cmd": "stop_speaking", "id": 1}))["ok"]
            await watcher.wait_for(EVENT, lambda e: e.get("from") == "SPEAKING" and e.get("to") == "LISTENING")
            assert (await send({"cmd": "mute", "id": 2}))["ok"]
            await watcher.wait_for(EVENT, lambda e: e["type"] == "mic" and e["what"] == "muted")
            assert (await send({"cmd": "stop", "id": 3}))["ok"]
            await watcher.wait_for(STATE, lambda s: s["session"] == "ended")
            kiosk.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(kiosk.wait(), 30) == 0
            await watcher.wait_for(STATUS, lambda v: v == "offline")
    finally:
        if kiosk.returncode is None:
            kiosk.kill()
            await kiosk.wait()
    commands = [s.json() for s in watcher.on(EVENT) if s.json()["type"] == "command"]
    assert [c["command"] for c in commands] == ["stop_speaking", "mute", "stop"]


def test_without_aiomqtt_the_kiosk_says_what_to_install(question: Path) -> None:
    probe = ("import sys; sys.modules['aiomqtt'] = None; "
             "from duplex.kiosk_cli import kiosk_main; "
             "sys.exit(kiosk_main(['--set', 'mqtt.enabled=true', '--input', sys.argv[1]]))")
    done = subprocess.run([sys.executable, "-c", probe, str(question)], capture_output=True, text=True,
                          timeout=60, env=kiosk_env())
    assert done.returncode == 2
    assert done.stderr == ("duplex-kiosk: error: mqtt.enabled needs the 'mqtt' extra: "
                           "pip install 'duplex[mqtt]' (aiomqtt)\n")


async def test_commands_sent_while_a_session_starts_are_applied_when_it_runs(question: Path) -> None:
    """'start' then 'mute' at once (an operator's script): the mute is held, not refused, and applied."""
    async def open_slowly() -> DuplexSession:
        await asyncio.sleep(0.2)  # e.g. a model loading
        return DuplexSession(input=mqtt_fixtures.EndlessInput(question))

    host = SessionHost(open_session=open_slowly, autostart=False)
    events = host.bus.subscribe()
    async with host:
        host.command(Start())
        host.command(Mute())  # the session is not running yet
        await until(lambda: host.session is not None and not host.session.stats().mic_open)
        host.command(Stop())
        await until(lambda: host.session is None)
    mics = [e for e in events.pending() if isinstance(e, Mic)]
    assert [m.open for m in mics] == [False]


async def test_a_stop_sent_while_a_session_starts_stops_it(question: Path) -> None:
    async def open_slowly() -> DuplexSession:
        await asyncio.sleep(0.2)
        return DuplexSession(input=mqtt_fixtures.EndlessInput(question))

    host = SessionHost(open_session=open_slowly, autostart=False)
    async with host:
        host.command(Start())
        await asyncio.sleep(0.05)
        host.command(Stop())  # before it runs: it must not then run for ever
        await until(lambda: host.sessions_started == 1 and host.session is None)
