"""What the outside world (the API, MQTT, the TUI's keys, signals) may ask of a running session.

One frozen dataclass per command, the only vocabulary there is: `Engine.submit` takes them and
applies them at the next 160 ms step boundary, the MQTT parser returns them, the TUI maps keys
to them. `Start` and `Ping` are for a session host (the kiosk), which has no session to hand
them to. Each class carries its wire `name` (the `command` event's value, the MQTT `cmd`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from audio_io.format import SAMPLE_RATE
from states import Input


@dataclass(frozen=True, slots=True)
class Mute:
    """Close the microphone: the model hears silence until Unmute."""

    name: ClassVar[str] = "mute"
    input: ClassVar[Input] = Input.MUTE


@dataclass(frozen=True, slots=True)
class Unmute:
    name: ClassVar[str] = "unmute"
    input: ClassVar[Input] = Input.UNMUTE


@dataclass(frozen=True, slots=True)
class StopSpeaking:
    """Cut the model off as a barge-in would (a no-op while it is not speaking)."""

    name: ClassVar[str] = "stop_speaking"
    input: ClassVar[Input] = Input.STOP_SPEAKING


@dataclass(frozen=True, slots=True)
class Reset:
    """Forget the conversation so far; the session keeps running, listening."""

    name: ClassVar[str] = "reset"
    input: ClassVar[Input] = Input.RESET


@dataclass(frozen=True, slots=True)
class Stop:
    """End the session at the next step."""

    name: ClassVar[str] = "stop"
    input: ClassVar[Input] = Input.STOP


@dataclass(frozen=True, slots=True, eq=False)
class Say:
    """Have the model speak `audio` (16 kHz mono float32) when it next can take the turn.

    Only a model loaded with `can_say` accepts it. Compared by identity (it holds an array).
    """

    audio: np.ndarray = field(repr=False)
    name: ClassVar[str] = "say"

    @property
    def seconds(self) -> float:
        return round(self.audio.size / SAMPLE_RATE, 3)


@dataclass(frozen=True, slots=True)
class Start:
    """Host only: start a session when none is running."""

    name: ClassVar[str] = "start"


@dataclass(frozen=True, slots=True)
class Ping:
    """Host only: answered, changes nothing (a liveness check)."""

    name: ClassVar[str] = "ping"


Command = Mute | Unmute | StopSpeaking | Reset | Stop | Say
"""What a session's engine accepts."""

ControlCommand = Mute | Unmute | StopSpeaking | Reset | Stop
"""The session commands without arguments: each is one controller input."""

HostCommand = Command | Start | Ping
"""What a session host (the kiosk) accepts."""

WIRE: dict[str, Mute | Unmute | StopSpeaking | Reset | Start | Stop | Ping] = {
    c.name: c for c in (Mute(), Unmute(), StopSpeaking(), Reset(), Start(), Stop(), Ping())}
"""Every command a remote client may send, by name, in the order error messages list them (no Say:
a remote command carries no argument, so never a file path, a URL or code)."""


class CommandError(Exception):
    """A command that is refused (malformed on the wire, or not applicable now); the message says why
    and goes back to the sender (the MQTT reply's `error`)."""

    def __init__(self, message: str, *, id: str | int | None = None, cmd: HostCommand | None = None) -> None:
        super().__init__(message)
        self.id = id
        self.cmd = cmd
