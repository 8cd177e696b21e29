"""Remote control that outlives its sender, refused credentials, hostile password files (real mosquitto)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest

from duplex.config import Config, MqttConfig
from duplex.errors import ConfigError
from duplex.kiosk import SessionHost
from duplex.mqtt.bridge import MqttBridge
from duplex.mqtt.guards import read_password_file
from duplex.session import DuplexSession
from tests import mqtt_fixtures
from tests.mqtt_fixtures import BASE, Broker, EndlessInput, Watcher, commander, kiosk_argv, kiosk_env, need_broker
from tests.test_bad_input import assert_one_line_error

broker, auth_broker, question = mqtt_fixtures.broker, mqtt_fixtures.auth_broker, mqtt_fixtures.question
CMD, RESULT = f"{BASE}/cmd", f"{BASE}/cmd/result"


async def until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_retained_command_is_ignored_answered_once_and_survives_no_reconnect(tmp_path: Path,
                                                                                    question: Path) -> None:
    need_broker()
    b = Broker(tmp_path / "broker", persistence=True)  # keeps the retained message across its restart
    b.start()
    try:
        subprocess.run(b.cli("mosquitto_pub", "-r", "-q", "1", "-t", CMD, "-m", '{"cmd":"stop","id":"old"}'),
                       check=True, timeout=30)
        host = SessionHost(open_session=lambda: DuplexSession(config=Config(backbone="policy"),
                                                              input=EndlessInput(question)), autostart=True)
        config = b.config(reconnect_min_s=0.1, reconnect_max_s=0.3)
        async with Watcher(b, RESULT) as results, MqttBridge(config=config, host=host) as bridge, host:
            answer = await results.wait_for(RESULT, lambda r: r.get("id") == "old")
            assert answer["ok"] is False and "retained" in answer["error"]
            assert f"mosquitto_pub -r -n -t '{CMD}'" in answer["error"]
            await until(lambda: host.session is not None and host.session.running)
            await asyncio.sleep(1.0)
            assert host.session is not None and host.session.running  # the retained stop was not applied
            assert host.sessions_started == 1
            connects = bridge.counters.connects
            b.terminate()  # the broker restarts: the bridge subscribes again and is sent the message again
            await asyncio.to_thread(b.start)
            await until(lambda: bridge.online and bridge.counters.connects > connects)
            async with commander(b, BASE) as send:
                assert (await send({"cmd": "ping", "id": 2}))["ok"] is True
            assert bridge.retained.ignored == 2
            assert [r.json()["id"] for r in results.seen] == ["old", 2]  # answered once
            assert host.session is not None and host.session.running
    finally:
        b.kill()


def test_the_docs_say_how_to_clear_a_retained_command() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "kiosk.md").read_text()
    assert "mosquitto_pub -r -n -t" in docs


def test_once_with_a_wrong_password_exits_2(auth_broker: Broker, question: Path, tmp_path: Path) -> None:
    (tmp_path / "kiosk.yaml").write_text(auth_broker.config_yaml(password="wrong", reconnect_min_s=0.1))
    proc = subprocess.run(kiosk_argv("--config", str(tmp_path / "kiosk.yaml"), "--input", str(question), "--once",
                                     "--set", "backbone=policy"),
                          capture_output=True, text=True, timeout=120, env=kiosk_env())
    assert_one_line_error(proc, "refused user 'kiosk'", "Not retried")
    assert '"level":"error"' in proc.stdout and "refused" in proc.stdout  # the log record too


@pytest.mark.parametrize("kind", ["fifo", "zero", "big", "latin1", "folder"])
def test_hostile_password_files_are_refused_at_once(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "pw"
    needle = {"fifo": "not a regular file", "zero": "not a regular file", "big": "larger than 4096",
              "latin1": "not UTF-8", "folder": "not a regular file"}[kind]
    if kind == "fifo":
        os.mkfifo(path)  # nobody writes: reading it must not wait
    elif kind == "zero":
        path = Path("/dev/zero")
    elif kind == "big":
        path.write_bytes(b"x" * 10_000_000)
    elif kind == "latin1":
        path.write_bytes("pässword\n".encode("latin-1"))
    else:
        path.mkdir()
    started = time.monotonic()
    with pytest.raises(ConfigError, match=needle):
        read_password_file(path)
    assert time.monotonic() - started < 1.0


def test_a_good_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret-Pw\nignored\n")
    assert read_password_file(tmp_path / "pw") == "s3cret-Pw"


def test_the_kiosk_reports_a_fifo_password_file_in_one_line(tmp_path: Path, question: Path) -> None:
    os.mkfifo(tmp_path / "pw")
    (tmp_path / "kiosk.yaml").write_text("mqtt:\n  enabled: true\n  password_file: pw\n")
    proc = subprocess.run(kiosk_argv("--config", str(tmp_path / "kiosk.yaml"), "--input", str(question), "--once",
                                     "--set", "backbone=policy"),
                          capture_output=True, text=True, timeout=60, env=kiosk_env())
    assert_one_line_error(proc, "mqtt.password_file", "not a regular file")


def test_the_bridge_reads_the_password_file_with_the_guard(tmp_path: Path, question: Path) -> None:
    (tmp_path / "pw").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        MqttBridge(config=MqttConfig(enabled=True, password_file="pw"),
                   host=SessionHost(open_session=lambda: DuplexSession(input=question)), base_dir=tmp_path)
