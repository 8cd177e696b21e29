"""The MQTT bridge against a real mosquitto: retained state, command round trips, authentication."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from duplex.events import EventType
from duplex.kiosk import SessionHost
from duplex.mqtt.bridge import MqttBridge, closing_within
from duplex.session import DuplexSession
from tests import mqtt_fixtures
from tests.mqtt_fixtures import BASE, Broker, EndlessInput, Watcher, check_schema, commander, comparable, reference_run

broker, auth_broker, question = mqtt_fixtures.broker, mqtt_fixtures.auth_broker, mqtt_fixtures.question

STATE, STATUS, EVENT, METRICS = (f"{BASE}/{t}" for t in ("state", "status", "event", "metrics"))


def offline_host(question: Path, **kw: Any) -> SessionHost:
    return SessionHost(open_session=lambda: DuplexSession(input=question), autostart=False, **kw)


def check_all_payloads(watcher: Watcher) -> None:
    """Every payload the bridge published matches its JSON schema under examples/schemas/."""
    schema = {STATE: "state", STATUS: "status", EVENT: "event", METRICS: "metrics",
              f"{BASE}/cmd/result": "command-result"}
    for seen in watcher.seen:
        if seen.topic in schema:
            check_schema(schema[seen.topic], seen.payload)


async def run_cli(*argv: str) -> str:
    """One of Debian's clients, without blocking the event loop the bridge runs on."""
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, f"{argv[0]} failed: {err.decode()}"
    return out.decode().strip()


async def test_retained_state_follows_an_offline_session(broker: Broker, question: Path) -> None:
    host = offline_host(question)
    session_events = host.bus.subscribe()
    async with Watcher(broker, f"{BASE}/#") as watcher, MqttBridge(config=broker.config(), host=host), host:
        await watcher.wait_for(STATUS, lambda v: v == "online")
        host.start()
        await watcher.wait_for(STATE, lambda s: s["session"] == "ended")
        # a newcomer (Debian's client) is told where things stand
        retained = json.loads(await run_cli(*broker.cli("mosquitto_sub", "-t", STATE, "-C", "1", "-W", "10")))
    history = session_events.pending()
    end = history[-1].to_dict()["t"]
    assert retained == {"state": "IDLE", "session": "ended", "mic_open": False, "sessions": 1, "t": end}
    transitions = [e.data["to"] for e in history if e.type is EventType.STATE]
    assert transitions == ["LISTENING", "SPEAKING", "DRAINING", "LISTENING", "IDLE"]
    states = [s.json() for s in watcher.on(STATE)]
    assert [s["state"] for s in states] == ["IDLE", "IDLE", *transitions, "IDLE"]  # retained, start, ..., end
    assert states[-1]["session"] == "ended" and states[-2]["t"] == end > 4.0
    assert [s.json() for s in watcher.on(EVENT)] == [e.to_dict() for e in history]  # every event, in order
    assert watcher.on(STATUS)[-1].payload == b"offline"  # a clean exit says so itself
    check_all_payloads(watcher)


async def test_every_command_round_trips_with_its_effect(broker: Broker, question: Path) -> None:
    host = SessionHost(open_session=lambda: DuplexSession(input=EndlessInput(question), realtime=True),
                       autostart=False)
    async with (Watcher(broker, f"{BASE}/#") as watcher, MqttBridge(config=broker.config(), host=host),
                host, commander(broker, BASE) as send):
        await watcher.wait_for(STATUS, lambda v: v == "online")

        def event(**match: Any) -> Any:
            return watcher.wait_for(EVENT, lambda e: all(e.get(k) == v for k, v in match.items()))

        assert await send({"cmd": "ping", "id": "p-1"}) == {"id": "p-1", "ok": True, "cmd": "ping"}
        assert await send({"cmd": "mute", "id": 1}) == {
            "id": 1, "ok": False, "cmd": "mute", "error": "no session is running ('mute' needs one; send 'start')"}
        assert await send({"cmd": "start", "id": 2}) == {"id": 2, "ok": True, "cmd": "start"}
        await watcher.wait_for(STATE, lambda s: s["session"] == "running" and s["state"] == "LISTENING")
        assert (await send({"cmd": "start", "id": 3}))["error"].startswith("a session is already running")

        await watcher.wait_for(STATE, lambda s: s["state"] == "SPEAKING")  # the echo of the question
        assert (await send({"cmd": "stop_speaking", "id": 4}))["ok"]
        await event(type="command", command="stop_speaking")
        await event(type="state", **{"from": "SPEAKING", "to": "LISTENING"})

        assert (await send({"cmd": "mute", "id": 5}))["ok"]
        await event(type="mic", what="muted")
        await watcher.wait_for(STATE, lambda s: s["mic_open"] is False)
        assert (await send({"cmd": "unmute", "id": 6}))["ok"]
        await event(type="mic", what="unmuted")
        assert (await send({"cmd": "reset", "id": "r"}))["ok"]
        await event(type="command", command="reset")

        assert await send({"cmd": "stop", "id": 7}) == {"id": 7, "ok": True, "cmd": "stop"}
        await watcher.wait_for(STATE, lambda s: s["session"] == "ended" and s["state"] == "IDLE")
        assert (await send({"cmd": "stop", "id": 8}))["error"].startswith("no session is running")
        assert (await send({"cmd": "start", "id": 9}))["ok"]  # a new session: sessions counts it
        await watcher.wait_for(STATE, lambda s: s["sessions"] == 2 and s["state"] == "LISTENING")
        metrics = await watcher.wait_for(METRICS, lambda m: m["session"] is not None and m["bridge"]["answered"] >= 11)
        assert metrics["session"]["running"] and metrics["sessions_started"] == 2
    check_all_payloads(watcher)


async def test_commands_round_trip_through_debian_clients(broker: Broker, question: Path) -> None:
    host = SessionHost(open_session=lambda: DuplexSession(input=EndlessInput(question), realtime=True),
                       autostart=False)
    async with MqttBridge(config=broker.config(), host=host) as bridge, host:
        status = await run_cli(*broker.cli("mosquitto_sub", "-t", STATUS, "-C", "1", "-W", "20"))
        assert status == "online" and bridge.online

        async def rr(payload: str) -> Any:
            return json.loads(await run_cli(*broker.cli("mosquitto_rr", "-t", f"{BASE}/cmd", "-e", f"{BASE}/cmd/result",
                                                        "-m", payload, "-W", "20")))

        assert await rr('{"cmd":"ping","id":"rr-1"}') == {"id": "rr-1", "ok": True, "cmd": "ping"}
        assert await rr('{"cmd":"start","id":"rr-2"}') == {"id": "rr-2", "ok": True, "cmd": "start"}
        assert await rr('{"cmd":"mute","id":"rr-3"}') == {"id": "rr-3", "ok": True, "cmd": "mute"}
        refused = await rr('{"cmd":"mute","id":"rr-4","file":"/etc/shadow"}')
        assert refused == {"id": "rr-4", "ok": False,
                           "error": "unknown key \"file\": a command has only 'cmd' and 'id'"}
        assert await rr('{"cmd":"stop","id":"rr-5"}') == {"id": "rr-5", "ok": True, "cmd": "stop"}
        assert bridge.commands.answered == 5 and bridge.commands.refused == 1


async def test_username_and_password_are_honoured(auth_broker: Broker, question: Path) -> None:
    host = offline_host(question)
    async with (Watcher(auth_broker, f"{BASE}/#") as watcher, MqttBridge(config=auth_broker.config(), host=host),
                host, commander(auth_broker, BASE) as send):
        await watcher.wait_for(STATUS, lambda v: v == "online")
        assert await send({"cmd": "ping", "id": 1}) == {"id": 1, "ok": True, "cmd": "ping"}


async def test_a_wrong_password_is_not_retried_and_never_disturbs_the_session(auth_broker: Broker,
                                                                              question: Path) -> None:
    host = offline_host(question)
    events = host.bus.subscribe()
    config = auth_broker.config(password="wrong", reconnect_min_s=0.1, reconnect_max_s=0.2)
    async with MqttBridge(config=config, host=host) as bridge, host:
        host.start()
        await asyncio.wait_for(bridge.refused.wait(), 20)
        while host.sessions_started == 0 or host.session is not None:
            await asyncio.sleep(0.05)
        assert "not authori" in bridge.last_error.lower() and "kiosk" in bridge.last_error
        assert not bridge.online and bridge.link.value == "refused"
    assert auth_broker.log.read_text().count("not authorised") == 1  # one attempt, never retried
    history = events.pending()
    assert comparable(history) == comparable(await reference_run(question))
    assert bridge.counters.missed_offline == len(history) and bridge.counters.published == 0


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("secret_in", ["file", "config"])
async def test_the_password_can_live_in_a_file(auth_broker: Broker, tmp_path: Path, question: Path,
                                               secret_in: str) -> None:
    user, password = next(iter(auth_broker.users.items()))
    (tmp_path / "mqtt-password").write_text(password + "\n")
    config = (auth_broker.config(password="", password_file="mqtt-password") if secret_in == "file"
              else auth_broker.config())
    async with MqttBridge(config=config, host=offline_host(question), base_dir=tmp_path) as bridge:
        await asyncio.wait_for(_until(lambda: bridge.online), 20)


KIOSK_ACL = """\
user kiosk-test
topic write duplex/kiosk-test/status
topic write duplex/kiosk-test/state
topic write duplex/kiosk-test/event
topic write duplex/kiosk-test/metrics
topic write duplex/kiosk-test/cmd/result
topic read duplex/kiosk-test/cmd

user operator
topic read duplex/+/status
topic read duplex/+/state
topic read duplex/+/event
topic read duplex/+/metrics
topic read duplex/+/cmd/result
topic write duplex/+/cmd
"""


async def test_the_bridge_needs_no_more_than_the_documented_acl(tmp_path: Path, question: Path) -> None:
    mqtt_fixtures.need_broker()
    docs = (mqtt_fixtures.ROOT / "docs" / "kiosk.md").read_text()
    assert KIOSK_ACL.replace("kiosk-test", "lobby-1") in docs.replace("\n  ", "\n")  # the ACL the docs show
    strict = Broker(tmp_path / "broker", users={"operator": "op-pw", "kiosk-test": "kiosk-pw"}, acl=KIOSK_ACL)
    strict.start()
    try:
        host = offline_host(question)
        config = strict.config(username="kiosk-test", password="kiosk-pw")
        async with (Watcher(strict, f"{BASE}/#") as watcher, MqttBridge(config=config, host=host), host,
                    commander(strict, BASE) as send):
            await watcher.wait_for(STATUS, lambda v: v == "online")
            assert await send({"cmd": "start", "id": "acl"}) == {"id": "acl", "ok": True, "cmd": "start"}
            await watcher.wait_for(STATE, lambda s: s["session"] == "ended")
            await watcher.wait_for(METRICS)
            assert [e["type"] for e in (s.json() for s in watcher.on(EVENT))][:2] == ["session", "state"]
    finally:
        strict.kill()


async def test_tls_with_a_private_ca(tmp_path: Path, question: Path) -> None:
    mqtt_fixtures.need_broker()
    secure = Broker(tmp_path / "broker", users={"kiosk-test": "kiosk-pw"}, tls=True)
    secure.start()
    try:
        async with MqttBridge(config=secure.config(tls=True, ca_file="broker/ca.crt"), host=offline_host(question),
                              base_dir=tmp_path) as bridge:
            status = await run_cli(*secure.cli("mosquitto_sub", "-t", STATUS, "-C", "1", "-W", "20"))
            assert status == "online" and bridge.online
            reply = await run_cli(*secure.cli("mosquitto_rr", "-t", f"{BASE}/cmd", "-e", f"{BASE}/cmd/result",
                                              "-m", '{"cmd":"ping","id":"tls"}', "-W", "20"))
            assert json.loads(reply) == {"id": "tls", "ok": True, "cmd": "ping"}
        untrusted = secure.config(tls=True)  # the system CAs do not know the test CA: refused, retried
        async with MqttBridge(config=untrusted, host=offline_host(question)) as bridge:
            await asyncio.wait_for(_until(lambda: "certificate verify failed" in bridge.last_error), 20)
            assert not bridge.online
    finally:
        secure.kill()


def test_a_missing_ca_file_is_a_config_error(tmp_path: Path, question: Path) -> None:
    from duplex.config import MqttConfig
    from duplex.errors import ConfigError

    with pytest.raises(ConfigError, match="mqtt.tls: cannot load the CA or client certificate"):
        MqttBridge(config=MqttConfig(tls=True, ca_file="nope.crt"), host=offline_host(question), base_dir=tmp_path)


class StallingClient:
    """A client whose exit never completes, as aiomqtt's would if its disconnect never did (it waits
    for it without a limit)."""

    async def __aenter__(self) -> StallingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.Event().wait()


async def test_a_client_whose_disconnect_stalls_cannot_hold_the_bridge(caplog: pytest.LogCaptureFixture) -> None:
    client = StallingClient()
    async with asyncio.timeout(5):
        async with closing_within(client, 0.1) as inside:  # type: ignore[arg-type]
            assert inside is client
        with pytest.raises(ValueError, match="the body's"):
            async with closing_within(client, 0.1):  # type: ignore[arg-type]
                raise ValueError("the body's own error")

        async def serve() -> None:
            async with closing_within(client, 0.1):  # type: ignore[arg-type]
                await asyncio.Event().wait()

        task = asyncio.create_task(serve())  # the connection loop, cancelled on the bridge's exit
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert caplog.text.count("did not complete within") == 3
