"""The conversation never notices the broker: deaths, restarts, outages and command floods.

The kiosk runs as a real subprocess where a process death matters (SIGKILL, broker restarts);
outage summaries are checked in-process with a broker that refuses the bridge until the test's
watcher is listening (users are admitted by rewriting the password file and SIGHUP; a broker that
accepted the bridge before is retried when it refuses it), or with a persistent watcher session
the broker queues for, so what the watcher must see is never a race.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from duplex.commands import HostCommand
from duplex.events import Event, EventBus, EventType, StateChanged, Text
from duplex.kiosk import SessionHost
from duplex.mqtt.bridge import MqttBridge
from duplex.session import DuplexSession
from states import Phase
from tests import mqtt_fixtures
from tests.mqtt_fixtures import (
    BASE,
    Broker,
    Watcher,
    check_schema,
    comparable,
    kiosk_argv,
    kiosk_env,
    need_broker,
    reference_run,
)
from tests.speech import silence, write_wav

broker, question = mqtt_fixtures.broker, mqtt_fixtures.question

STATE, STATUS, EVENT, METRICS, RESULT = (f"{BASE}/{t}" for t in ("state", "status", "event", "metrics", "cmd/result"))
WATCHER, KIOSK = ("watcher", "w-secret"), ("kiosk", "k-secret")


async def start_kiosk(broker: Broker, tmp_path: Path, *args: str | Path) -> asyncio.subprocess.Process:
    config = tmp_path / "kiosk.yaml"
    config.write_text("live: {tui: false}\n" + broker.config_yaml())
    log = (tmp_path / "kiosk.jsonl").open("wb")  # a file, not a pipe: the kiosk never blocks on its log
    return await asyncio.create_subprocess_exec(*kiosk_argv("--config", str(config), *map(str, args)),
                                                stdout=log, stderr=asyncio.subprocess.STDOUT, env=kiosk_env())


def kiosk_log(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "kiosk.jsonl").read_text().splitlines() if line.startswith("{")]


async def test_last_will_says_offline_when_the_kiosk_is_sigkilled(broker: Broker, question: Path,
                                                                  tmp_path: Path) -> None:
    kiosk = await start_kiosk(broker, tmp_path, "--input", question)
    killed = 0.0
    try:
        async with Watcher(broker, STATUS, STATE) as watcher:
            await watcher.wait_for(STATUS, lambda v: v == "online")
            await watcher.wait_for(STATE, lambda s: s["session"] == "ended")  # the WAV was answered; kiosk idles
            kiosk.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await watcher.wait_for(STATUS, lambda v: v == "offline")
    finally:
        if not killed:  # signal once only: a second send_signal polls, reaping under asyncio's feet
            kiosk.send_signal(signal.SIGKILL)
        status = await asyncio.wait_for(kiosk.wait(), 30)
    will_after = watcher.on(STATUS)[-1].at - killed
    print(f"last will 'offline' {will_after * 1000:.0f} ms after SIGKILL")
    assert will_after < 5.0 and status == -signal.SIGKILL
    async with Watcher(broker, STATUS) as late:  # a newcomer reads the will, retained
        assert await late.wait_for(STATUS) == "offline" and late.on(STATUS)[0].retain


async def test_sigterm_ends_the_kiosk_cleanly_and_says_offline(broker: Broker, question: Path, tmp_path: Path) -> None:
    kiosk = await start_kiosk(broker, tmp_path, "--input", question)
    async with Watcher(broker, STATUS, STATE) as watcher:
        await watcher.wait_for(STATE, lambda s: s["session"] == "ended")
        kiosk.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(kiosk.wait(), 30) == 0
        await watcher.wait_for(STATUS, lambda v: v == "offline")
    lines = kiosk_log(tmp_path)
    events = [line for line in lines if line["type"] != "log"]
    assert {k: v for k, v in events[0].items() if k != "backbone"} == {"t": 0.0, "type": "session", "what": "started"}
    assert {"type": "control", "token": "SHIFT"}.items() <= next(e for e in events if e["type"] == "control").items()
    assert any(line["type"] == "log" and "online at" in line["message"] for line in lines)


async def test_broker_killed_and_restarted_mid_session(broker: Broker, question: Path, tmp_path: Path) -> None:
    question = write_wav(tmp_path / "long.wav", question, silence(2.0))  # ~7.7 s at wall-clock pace
    kiosk = await start_kiosk(broker, tmp_path, "--input", question, "--output", tmp_path / "out.wav",
                              "--realtime", "--once")
    try:
        async with Watcher(broker, f"{BASE}/#") as watcher:
            await watcher.wait_for(STATE, lambda s: s["state"] == "SPEAKING")  # mid-answer
            broker.kill()
            await asyncio.sleep(1.5)  # the broker stays away for 1.5 s of the conversation
            restarted = time.monotonic()
            await asyncio.to_thread(broker.start)
            await watcher.wait_until(lambda: [s for s in watcher.on(STATUS) if s.at > restarted], what="online again")
            back = next(s for s in watcher.on(STATUS) if s.at > restarted)
            back_after = back.at - restarted
            assert back.payload == b"online"
            metrics = await watcher.wait_for(METRICS, lambda m: m["bridge"]["reconnects"] >= 1)
            assert await asyncio.wait_for(kiosk.wait(), 60) == 0
    finally:
        if kiosk.returncode is None:
            kiosk.kill()
            await kiosk.wait()
    print(f"bridge back online {back_after:.2f} s after the broker restarted")
    assert back_after < 5.0
    assert metrics["bridge"]["last_outage_s"] >= 1.5 and metrics["bridge"]["link"] == "online"
    await reference_run(question, tmp_path / "reference.wav")
    out, ref = (sf.read(tmp_path / name, dtype="int16")[0] for name in ("out.wav", "reference.wav"))
    assert out.size == ref.size and np.array_equal(out, ref)  # what the user heard did not change at all
    assert any(line["type"] == "log" and "back online after" in line["message"] for line in kiosk_log(tmp_path))


class ScriptedHost:
    """A host whose events the test writes itself (to drive the bridge through an outage)."""

    def __init__(self) -> None:
        self.bus = EventBus()

    def command(self, cmd: HostCommand) -> None:
        pass

    def metrics(self) -> dict[str, Any]:
        return {}


async def until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_what_happened_while_the_broker_was_away_is_one_summary_event(tmp_path: Path) -> None:
    need_broker()
    chaos = Broker(tmp_path / "broker", users=dict([WATCHER, KIOSK]))
    chaos.start()
    host = ScriptedHost()
    config = chaos.config(username=KIOSK[0], password=KIOSK[1], reconnect_min_s=0.1, reconnect_max_s=0.5)
    try:
        async with MqttBridge(config=config, host=host) as bridge:
            await until(lambda: bridge.online, "the bridge online")
            host.bus.publish(StateChanged(0.0, Phase.IDLE, Phase.LISTENING))
            await until(lambda: bridge.counters.published == 1, "the first event published")
            chaos.kill()
            await until(lambda: not bridge.online, "the bridge to notice the broker is gone")
            for i in range(5000):  # what happens meanwhile is counted, not queued
                t = 1 + i * 0.01
                host.bus.publish(Text(t, "x") if i % 2 else StateChanged(t, Phase.LISTENING, Phase.SPEAKING))
                if i % 100 == 0:
                    await asyncio.sleep(0)
            del chaos.users[KIOSK[0]]  # back, but refusing the bridge until the watcher listens
            await asyncio.to_thread(chaos.start)
            async with Watcher(chaos, EVENT, STATE) as watcher:
                chaos.admit(*KIOSK)
                summary = await watcher.wait_for(EVENT, lambda e: e["type"] == "bridge")
                host.bus.publish(StateChanged(60.0, Phase.SPEAKING, Phase.LISTENING))
                await watcher.wait_for(EVENT, lambda e: e["t"] == 60.0)
                retained_state = await watcher.wait_for(STATE, lambda s: s["state"] == "SPEAKING")
    finally:
        chaos.kill()
    check_schema("event", summary)
    assert summary["missed"] == 5000 and summary["missed_by_type"] == {"state": 2500, "text": 2500}
    assert summary["overflowed"] == 0 and summary["failed_attempts"] >= 1 and summary["state"] == "SPEAKING"
    assert summary["t"] == 50.99 and summary["down_s"] > 0
    assert [e["type"] for e in (s.json() for s in watcher.on(EVENT))] == ["bridge", "state"]  # no replay
    assert retained_state["t"] == 1.0


async def test_a_broker_down_at_start_changes_nothing_and_is_caught_up_on(tmp_path: Path, question: Path) -> None:
    need_broker()
    # The watcher's subscription is made first and kept by the broker (a persistent session saved
    # on SIGTERM), so what the bridge publishes when the broker comes back is queued for it: no race.
    late = Broker(tmp_path / "broker", users=dict([WATCHER, KIOSK]), persistence=True)
    late.start()
    async with Watcher(late, EVENT, STATE, identifier="late-watcher", persistent=True):
        pass
    late.terminate()  # down before the bridge starts: nothing listens on its port
    host = SessionHost(open_session=lambda: DuplexSession(input=question), autostart=True)
    history = host.bus.subscribe()
    config = late.config(username=KIOSK[0], password=KIOSK[1], reconnect_min_s=0.1, reconnect_max_s=0.5)
    try:
        async with MqttBridge(config=config, host=host) as bridge, host:
            await until(lambda: host.sessions_started == 1 and host.session is None, "the session to end")
            await until(lambda: bridge.last_error, "a failed connection attempt")
            assert not bridge.online
            await asyncio.to_thread(late.start)
            async with Watcher(late, EVENT, STATE, identifier="late-watcher", persistent=True) as watcher:
                summary = await watcher.wait_for(EVENT, lambda e: e["type"] == "bridge")
                retained = await watcher.wait_for(STATE)
    finally:
        late.kill()
    events = history.pending()
    assert comparable(events) == comparable(await reference_run(question))
    assert summary["missed"] == len(events) and summary["missed_by_type"]["state"] == 5
    assert summary["failed_attempts"] >= 1
    assert retained == {"state": "IDLE", "session": "ended", "mic_open": False, "sessions": 1,
                        "t": events[-1].to_dict()["t"]}


def flood_lines(n: int) -> bytes:
    """n malformed commands of every kind, one per line (for `mosquitto_pub -l`)."""
    kinds = [
        lambda i: f'{{"cmd":"fly","id":{i}}}',
        lambda i: f'{{"cmd":5,"id":{i}}}',
        lambda i: f'{{"cmd":"mute","id":{i},"path":"/etc/passwd"}}',
        lambda i: f'{{"cmd":"start","id":{i},"url":"http://example.invalid/x"}}',
        lambda i: f'{{"cmd":"reset","id":{i},"code":"__import__(\'os\')"}}',
        lambda i: f'{{nope {i}',
        lambda i: f'[{i}]',
        lambda i: f'{{"cmd":"stop","id":{i}.5}}',
        lambda i: '{"cmd":"mute","id":"' + "x" * 4100 + f'{i}"}}',  # over max_payload_bytes
    ]
    return "".join(kinds[i % len(kinds)](i) + "\n" for i in range(n)).encode()


@pytest.mark.slow  # a soak; malformed commands one by one: tests/test_mqtt_protocol.py
async def test_ten_thousand_malformed_commands_in_a_burst(broker: Broker, question: Path, tmp_path: Path) -> None:
    host = SessionHost(open_session=lambda: DuplexSession(input=question, output=tmp_path / "out.wav", realtime=True),
                       autostart=False)
    history = host.bus.subscribe()
    config = broker.config()
    async with Watcher(broker, RESULT, STATE) as watcher, MqttBridge(config=config, host=host) as bridge, host:
        await until(lambda: bridge.online, "the bridge online")
        host.start()
        await watcher.wait_for(STATE, lambda s: s["state"] == "LISTENING")
        started = time.monotonic()
        flood = await asyncio.create_subprocess_exec(*broker.cli("mosquitto_pub", "-t", f"{BASE}/cmd", "-l"),
                                                     stdin=asyncio.subprocess.PIPE)
        await flood.communicate(flood_lines(10_000))
        assert flood.returncode == 0

        def accounted() -> int:
            replies = [s.json() for s in watcher.on(RESULT)]
            return sum(r.get("dropped", 1) for r in replies)

        await watcher.wait_until(lambda: accounted() >= 10_000, what="every command answered or reported dropped")
        elapsed = time.monotonic() - started
        await until(lambda: host.session is None, "the session to end")
    replies = [s.json() for s in watcher.on(RESULT)]
    answered = [r for r in replies if "dropped" not in r]
    notices = [r for r in replies if "dropped" in r]
    assert accounted() == 10_000 == bridge.commands.received
    assert len(answered) == bridge.commands.answered == bridge.commands.refused
    assert sum(n["dropped"] for n in notices) == bridge.commands.dropped
    assert len(answered) <= config.command_burst + config.max_commands_per_s * elapsed + 1  # the documented limit
    assert all(r["ok"] is False and r["error"] for r in answered)
    for reply in replies:
        check_schema("command-result", reply)
    print(f"flood: {len(answered)} answered, {bridge.commands.dropped} dropped in {len(notices)} notices, "
          f"{elapsed:.1f} s")
    # the session did not notice: same events (bar wall-clock times) and the very same audio
    events = history.pending()
    assert not [e for e in events if e.type is EventType.COMMAND]
    overruns = [e for e in events if e.type is EventType.OVERRUN]  # compute time on a loaded machine, not behaviour
    print(f"steps over budget during the flood: {len(overruns)}")
    reference = await reference_run(question, tmp_path / "reference.wav")

    def behaviour(events: list[Event]) -> list[dict[str, Any]]:
        return [{k: v for k, v in d.items() if k != "t"} for d in comparable(events)]

    assert behaviour(events) == behaviour(reference)
    assert np.array_equal(sf.read(tmp_path / "out.wav", dtype="int16")[0],
                          sf.read(tmp_path / "reference.wav", dtype="int16")[0])
