"""The MQTT wire protocol: topics, command parsing, reply and state payloads. Pure, no network.

Kept apart from the bridge so every rule a remote client can hit (size limit, JSON, types, the
closed list of commands, `duplex.commands.WIRE`) is checked by plain unit tests, and so the JSON schemas under
`examples/schemas/` describe exactly what these functions produce and accept. A command is a
name from a closed list and an optional id, parsed into a `duplex.commands` object: there is no
argument, so no command can carry a file path, a URL or code.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from duplex.commands import WIRE, CommandError, HostCommand
from duplex.config import MqttConfig
from duplex.errors import ConfigError
from duplex.events import Error, Event, EventBus, Mic, SessionStarted, SessionStopped, StateChanged

MAX_ID_CHARS = 128
_TOPIC_WORD = re.compile(r"^[A-Za-z0-9_.\-]+$")


COMMAND_NAMES = ", ".join(WIRE)


class Host(Protocol):
    """What the bridge drives: a bus of every event, commands, and metrics."""

    bus: EventBus

    def command(self, cmd: HostCommand) -> None:
        """Apply `cmd` or raise CommandError saying why not (e.g. no session is running)."""
        ...

    def metrics(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic names of one device, all under `<prefix>/<device_id>/`."""

    base: str

    @classmethod
    def for_config(cls, cfg: MqttConfig) -> Topics:
        prefix = cfg.topic_prefix.strip("/")
        parts = prefix.split("/") if prefix else []
        for part in parts:
            if not _TOPIC_WORD.match(part):
                raise ConfigError(f"mqtt.topic_prefix = {cfg.topic_prefix!r}: use letters, digits, '_', '-', '.' "
                                  "between '/' (no '+', '#' or empty levels)")
        if not _TOPIC_WORD.match(cfg.device_id):
            raise ConfigError(f"mqtt.device_id = {cfg.device_id!r}: use letters, digits, '_', '-', '.' only")
        return cls("/".join([*parts, cfg.device_id]))

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def metrics(self) -> str:
        return f"{self.base}/metrics"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def cmd(self) -> str:
        return f"{self.base}/cmd"

    @property
    def cmd_result(self) -> str:
        return f"{self.base}/cmd/result"


ONLINE = b"online"
OFFLINE = b"offline"


@dataclass(frozen=True, slots=True)
class Request:
    cmd: HostCommand
    id: str | int | None


def parse_command(payload: bytes, *, max_bytes: int) -> Request:
    """A command payload -> Request, or CommandError naming what is wrong (nothing is applied)."""
    if len(payload) > max_bytes:
        raise CommandError(f"payload of {len(payload)} bytes exceeds the limit of {max_bytes} (mqtt.max_payload_bytes)")
    try:
        obj = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CommandError(f"payload is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"malformed JSON: {type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise CommandError(f"expected a JSON object like {{\"cmd\": \"ping\", \"id\": 1}}, got {_json_type(obj)}")
    id_ = obj.get("id")
    if id_ is not None and not _valid_id(id_):
        raise CommandError(f"'id' must be a string of at most {MAX_ID_CHARS} characters or an integer, "
                           f"got {_json_type(id_)}")
    extra = sorted(str(k) for k in obj if k not in ("cmd", "id"))
    if extra:
        raise CommandError(f"unknown key {_show(extra[0])}: a command has only 'cmd' and 'id'", id=id_)
    if "cmd" not in obj:
        raise CommandError(f"missing 'cmd' (one of {COMMAND_NAMES})", id=id_)
    name = obj["cmd"]
    if not isinstance(name, str):
        raise CommandError(f"'cmd' must be a string, got {_json_type(name)}", id=id_)
    cmd = WIRE.get(name)
    if cmd is None:
        raise CommandError(f"unknown cmd {_show(name)}: expected one of {COMMAND_NAMES}", id=id_)
    return Request(cmd, id_)


def reply(id: str | int | None, *, cmd: HostCommand | None = None, error: str | None = None) -> bytes:
    """The `cmd/result` payload: the request's id, ok, and the error when refused."""
    out: dict[str, Any] = {"id": id, "ok": error is None}
    if cmd is not None:
        out["cmd"] = cmd.name
    if error is not None:
        out["error"] = error
    return _dumps(out)


def drop_notice(dropped: int) -> bytes:
    """Sent at most once a second while commands are being dropped by the rate limit."""
    return _dumps({"id": None, "ok": False, "error": f"rate limit: {dropped} commands dropped unanswered",
                   "dropped": dropped})


@dataclass(slots=True)
class StateTracker:
    """The retained `state` payload, updated from the event stream in order."""

    state: str = "IDLE"
    session: str = "none"  # none | running | ended | failed
    mic_open: bool = True
    t: float = 0.0
    sessions: int = 0

    def feed(self, event: Event) -> bool:
        """Apply one event; True if the payload changed."""
        before = self.payload()
        match event:
            case StateChanged(dst=phase):
                self.state = phase.value
            case Mic(open=is_open):
                self.mic_open = is_open
            case SessionStarted():
                self.session, self.mic_open, self.sessions = "running", True, self.sessions + 1
            case SessionStopped():
                self.session = "failed" if self.session == "failed" else "ended"
                self.mic_open = False  # the engine closes the microphone when a session stops
            case Error():
                self.session = "failed"
            case _:
                return False
        changed = self.payload() != before
        if changed:
            self.t = event.t
        return changed

    def payload(self) -> dict[str, Any]:
        return {"state": self.state, "session": self.session, "mic_open": self.mic_open, "sessions": self.sessions}

    def to_bytes(self) -> bytes:
        return _dumps({**self.payload(), "t": round(self.t, 4)})


@dataclass(slots=True)
class Outage:
    """What happened while the broker was unreachable, in constant space: counts, not events."""

    since: float  # time.monotonic() when the link was lost (or the bridge started)
    missed: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    last_t: float = 0.0
    failed_attempts: int = 0
    overflowed: int = 0  # dropped by the bus queue before they could be counted by type

    def add(self, event: Event, overflowed: int = 0) -> None:
        self.missed += 1 + overflowed
        self.overflowed += overflowed
        self.by_type[event.type.value] += 1
        self.last_t = event.t

    def summary(self, now: float, state: StateTracker) -> bytes:
        """The one `event` published on reconnect instead of the events themselves."""
        return _dumps({
            "t": round(self.last_t or state.t, 4), "type": "bridge", "what": "reconnected",
            "down_s": round(now - self.since, 3), "missed": self.missed, "missed_by_type": dict(self.by_type),
            "overflowed": self.overflowed, "failed_attempts": self.failed_attempts, "state": state.state,
        })


def _valid_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < 2**53
    return isinstance(value, str) and len(value) <= MAX_ID_CHARS


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
    return type(value).__name__


def _show(text: str) -> str:
    shown = json.dumps(text)
    return shown if len(shown) <= 42 else shown[:38] + '..."'


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
