"""The MQTT wire rules without a broker: strict command parsing, payload shapes, limits, topics."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from duplex.commands import WIRE, Mute, Ping, Stop
from duplex.config import MqttConfig, load_config
from duplex.errors import ConfigError
from duplex.events import Event, EventType, from_dict
from duplex.mqtt.limits import Backoff, CommandCounters, GateQueue, TokenBucket
from duplex.mqtt.protocol import (
    CommandError,
    Outage,
    StateTracker,
    Topics,
    drop_notice,
    parse_command,
    reply,
)
from tests.mqtt_fixtures import check_schema

LIMIT = 4096


@pytest.mark.parametrize("cmd", list(WIRE))
@pytest.mark.parametrize("id_", ["op-1", 7, None])
def test_every_listed_command_parses(cmd: str, id_: Any) -> None:
    body: dict[str, Any] = {"cmd": cmd} if id_ is None else {"cmd": cmd, "id": id_}
    check_schema("command", body)
    request = parse_command(json.dumps(body).encode(), max_bytes=LIMIT)
    assert request.cmd == WIRE[cmd] and request.cmd.name == cmd and request.id == id_


REFUSED = [
    (b"x" * (LIMIT + 1), None, "payload of 4097 bytes exceeds the limit of 4096 (mqtt.max_payload_bytes)"),
    (b"\xff\xfe", None, "payload is not UTF-8 text (byte 0)"),
    (b"", None, "malformed JSON: Expecting value at line 1 column 1"),
    (b"{nope", None, "malformed JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b'"mute"', None, 'expected a JSON object like {"cmd": "ping", "id": 1}, got a string'),
    (b"[1]", None, "got an array"),
    (b'{"id": 3}', 3, "missing 'cmd' (one of mute, unmute, stop_speaking, reset, start, stop, ping)"),
    (b'{"cmd": "fly", "id": "a"}', "a", "unknown cmd \"fly\": expected one of mute, unmute, stop_speaking"),
    (b'{"cmd": "MUTE", "id": 1}', 1, "unknown cmd \"MUTE\""),
    (b'{"cmd": 5, "id": 2}', 2, "'cmd' must be a string, got a number"),
    (b'{"cmd": ["mute"]}', None, "'cmd' must be a string, got an array"),
    (b'{"cmd": "mute", "id": 1.5}', None, "'id' must be a string of at most 128 characters or an integer, got a"),
    (b'{"cmd": "mute", "id": true}', None, "got a boolean"),
    (b'{"cmd": "mute", "id": {"x": 1}}', None, "got an object"),
    (json.dumps({"cmd": "mute", "id": "x" * 129}).encode(), None, "at most 128 characters"),
    (b'{"cmd": "ping", "id": 9007199254740993}', None, "or an integer"),
    (b'{"cmd": "start", "id": 4, "path": "/etc/passwd"}', 4, "unknown key \"path\": a command has only 'cmd' and 'id'"),
    (b'{"cmd": "start", "url": "http://x"}', None, "unknown key \"url\""),
    (b'{"cmd": "reset", "code": "import os"}', None, "unknown key \"code\""),
    (b'{"cmd": "mute", "id": NaN}', None, "got a number"),
]


@pytest.mark.parametrize(("payload", "id_", "message"), REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_refused_commands_name_the_problem(payload: bytes, id_: Any, message: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(payload, max_bytes=LIMIT)
    assert message in str(caught.value)
    assert caught.value.id == id_
    answer = reply(caught.value.id, error=str(caught.value))
    check_schema("command-result", answer)
    assert len(answer) < 400  # the culprit is quoted, never echoed whole


@pytest.mark.parametrize(("payload", "message"), [
    (b"[" * 200_000 + b"]" * 200_000, "malformed JSON: RecursionError"),
    (b"1" * 5000, "malformed JSON: ValueError"),
])
def test_pathological_json_under_a_large_limit_is_refused_not_crashed(payload: bytes, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_command(payload, max_bytes=1_000_000)


def test_replies_and_notices_match_their_schema() -> None:
    for payload in (reply("a", cmd=Mute()), reply(None, error="x"), reply(5, cmd=Stop(), error="no session"),
                    drop_notice(9000)):
        check_schema("command-result", payload)
    assert json.loads(reply(1, cmd=Ping())) == {"id": 1, "ok": True, "cmd": "ping"}


def ev(t: float, type: EventType, **data: Any) -> Event:
    return from_dict({"t": t, "type": type.value, **data})


STOPPED = {"steps": 19, "step_ms_p50": 1.0, "step_ms_p99": 2.0, "overruns": 0, "realtime_factor": 9.0}


def test_state_tracker_follows_a_session_and_reports_changes_only() -> None:
    tracker = StateTracker()
    stream = [ev(0, EventType.SESSION, what="started", backbone="b"),
              ev(0, EventType.STATE, **{"from": "IDLE", "to": "LISTENING"}),
              ev(1, EventType.MIC, what="muted"), ev(1.1, EventType.TEXT, text="hi"),
              ev(2, EventType.STATE, **{"from": "LISTENING", "to": "SPEAKING"}),
              ev(3, EventType.STATE, **{"from": "SPEAKING", "to": "IDLE"}),
              ev(3, EventType.SESSION, what="stopped", **STOPPED)]
    changes = [tracker.feed(e) for e in stream]
    assert changes == [True, True, True, False, True, True, True]
    assert json.loads(tracker.to_bytes()) == {"state": "IDLE", "session": "ended", "mic_open": False, "sessions": 1,
                                              "t": 3.0}
    check_schema("state", tracker.to_bytes())
    tracker.feed(ev(0, EventType.SESSION, what="started", backbone="b"))
    tracker.feed(ev(1, EventType.ERROR, message="mic unplugged"))
    tracker.feed(ev(1, EventType.SESSION, what="stopped", **STOPPED))
    assert tracker.payload()["session"] == "failed" and tracker.payload()["sessions"] == 2


def test_outage_summary_counts_in_constant_space() -> None:
    outage = Outage(since=100.0)
    for i in range(10_000):
        outage.add(ev(i * 0.16, EventType.STATE, **{"from": "IDLE", "to": "LISTENING"}) if i % 2
                   else ev(i * 0.16, EventType.TEXT, text="x"))
    # five lost in the queue before this one:
    outage.add(ev(1600.0, EventType.STATE, **{"from": "LISTENING", "to": "IDLE"}), overflowed=5)
    outage.failed_attempts = 3
    summary = json.loads(outage.summary(102.5, StateTracker(state="LISTENING")))
    assert summary == {"t": 1600.0, "type": "bridge", "what": "reconnected", "down_s": 2.5, "missed": 10_006,
                       "missed_by_type": {"text": 5000, "state": 5001}, "overflowed": 5, "failed_attempts": 3,
                       "state": "LISTENING"}
    check_schema("event", summary)


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=5, clock=lambda: now[0])
    assert [bucket.allow() for _ in range(7)] == [True] * 5 + [False] * 2
    now[0] = 0.35  # 3.5 tokens refilled
    assert [bucket.allow() for _ in range(4)] == [True] * 3 + [False]
    now[0] = 100.0  # never more than the burst
    assert sum(bucket.allow() for _ in range(50)) == 5


def test_gate_queue_drops_over_the_limit_before_anything_is_parsed() -> None:
    now = [0.0]
    counters = CommandCounters()
    gate = GateQueue(3, bucket=TokenBucket(rate=1, burst=5, clock=lambda: now[0]), counters=counters)
    for i in range(10):
        gate.put_nowait(i)
    assert gate.qsize() == 3  # the queue bound bites first here
    assert (counters.received, counters.dropped, counters.dropped_unreported) == (10, 7, 7)


def test_backoff_doubles_with_jitter_and_resets() -> None:
    backoff = Backoff(low=0.25, high=2.0)
    delays = [backoff.next() for _ in range(6)]
    for delay, nominal in zip(delays, [0.25, 0.5, 1.0, 2.0, 2.0, 2.0], strict=True):
        assert 0.8 * nominal <= delay <= 1.2 * nominal
    backoff.reset()
    assert backoff.next() <= 0.3


def test_topics_live_under_prefix_and_device() -> None:
    topics = Topics.for_config(MqttConfig(topic_prefix="site/lobby", device_id="kiosk-7"))
    assert [topics.state, topics.event, topics.metrics, topics.status, topics.cmd, topics.cmd_result] == [
        "site/lobby/kiosk-7/state", "site/lobby/kiosk-7/event", "site/lobby/kiosk-7/metrics",
        "site/lobby/kiosk-7/status", "site/lobby/kiosk-7/cmd", "site/lobby/kiosk-7/cmd/result"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("device_id", "a/b", "mqtt.device_id = 'a/b': use letters"),
    ("device_id", "#", "mqtt.device_id = '#'"),
    ("topic_prefix", "site/+/x", "mqtt.topic_prefix = 'site/+/x'"),
    ("topic_prefix", "a//b", "no '+', '#' or empty levels"),
])
def test_bad_topic_names_are_config_errors_naming_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        Topics.for_config(load_config(overrides={"mqtt": {key: value}}).mqtt)


def test_mqtt_config_keys_are_validated_like_every_other_key() -> None:
    with pytest.raises(ConfigError, match=r"mqtt.port = 70000 is out of range"):
        load_config(overrides={"mqtt": {"port": 70000}})
    with pytest.raises(ConfigError, match=r"unknown key 'mqtt.max_payload' \(did you mean 'mqtt.max_payload_bytes'"):
        load_config(overrides={"mqtt": {"max_payload": 10}})


async def test_stop_during_a_restart_delay_cancels_the_restart() -> None:
    """A failed session waits before it is restarted; 'stop' in that wait means no restart."""
    from duplex.kiosk import SessionHost

    opened = 0

    def failing_session():  # type: ignore[no-untyped-def]
        nonlocal opened
        opened += 1
        raise RuntimeError("the microphone is gone")

    async with SessionHost(open_session=failing_session, autostart=True, restart_delay_s=0.3) as host:
        for _ in range(100):
            if host.failures:
                break
            await asyncio.sleep(0.01)
        assert host.failures == 1
        host.command(Stop())  # answered, not refused with "no session is running"
        await asyncio.sleep(0.8)
    assert opened == 1
