"""duplex: a full-duplex spoken-conversation runtime for speech language models.

The public API, all importable from here:

    from duplex import DuplexSession, load_config, Speaker, StopSpeaking

- the session: `DuplexSession`, `SessionStats`, `Lifecycle`; `WavInput` (an audio file as the
  microphone, to wrap in an input device of your own)
- configuration: `load_config`, `Config`
- commands (`duplex.commands`): `Mute`, `Unmute`, `StopSpeaking`, `Reset`, `Stop`, `Say`
- events (`duplex.events`): `StateChanged`, `Control`, `Speaker`, `Hold`, `Text`, `Mic`, `CommandApplied`,
  `Step`, `Overrun`, `Error`, `BadSamples`, `Device`, `SessionStarted`, `SessionStopped`, `SessionSummary`
  (all `Event`s)
- errors (`duplex.errors`): `DuplexError` and its subclasses, `AudioError` (from `audio_io`), and
  `USER_ERRORS` (both roots: what a CLI turns into a one-line message)

Importing this package stays cheap (no torch, no numpy, no sound devices): each name is loaded
on first use (PEP 562), from the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "DuplexSession": "duplex.session", "SessionStats": "duplex.stats", "Lifecycle": "duplex.engine",
    "load_config": "duplex.config", "Config": "duplex.config", "WavInput": "audio_io.wav",
    **dict.fromkeys(("Command", "Mute", "Unmute", "StopSpeaking", "Reset", "Stop", "Say"), "duplex.commands"),
    **dict.fromkeys(("Event", "EventType", "StateChanged", "Control", "Speaker", "Hold", "Text", "Mic",
                     "CommandApplied", "Step", "Overrun", "Error", "BadSamples", "Device", "SessionStarted",
                     "SessionStopped", "SessionSummary"), "duplex.events"),
    **dict.fromkeys(("DuplexError", "ConfigError", "AudioFileError", "DeviceError", "CheckpointError",
                     "ScenarioError", "SessionError", "NotSupportedError", "AudioError", "USER_ERRORS"),
                    "duplex.errors"),
}

__all__ = [
    "__version__", "WavInput", "DuplexSession", "SessionStats", "Lifecycle", "load_config", "Config", "Command", "Mute",
    "Unmute", "StopSpeaking", "Reset", "Stop", "Say", "Event", "EventType", "StateChanged", "Control",
    "Speaker", "Hold", "Text", "Mic", "CommandApplied", "Step", "Overrun", "Error", "BadSamples", "SessionStarted",
    "SessionStopped", "SessionSummary", "DuplexError", "ConfigError", "AudioFileError", "DeviceError",
    "CheckpointError", "ScenarioError", "SessionError", "NotSupportedError", "AudioError", "USER_ERRORS", "Device",
]
assert set(__all__) == {"__version__", *_EXPORTS}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'duplex' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from audio_io.wav import WavInput
    from duplex.commands import Command, Mute, Reset, Say, Stop, StopSpeaking, Unmute
    from duplex.config import Config, load_config
    from duplex.engine import Lifecycle
    from duplex.errors import (
        USER_ERRORS,
        AudioError,
        AudioFileError,
        CheckpointError,
        ConfigError,
        DeviceError,
        DuplexError,
        NotSupportedError,
        ScenarioError,
        SessionError,
    )
    from duplex.events import (
        BadSamples,
        CommandApplied,
        Control,
        Device,
        Error,
        Event,
        EventType,
        Hold,
        Mic,
        Overrun,
        SessionStarted,
        SessionStopped,
        SessionSummary,
        Speaker,
        StateChanged,
        Step,
        Text,
    )
    from duplex.session import DuplexSession
    from duplex.stats import SessionStats
