"""The errors `audio_io` raises on purpose; nothing here knows who called it.

    AudioError
     ├── AudioFileError        a missing, unreadable, empty, corrupt, unsupported or unwritable audio file
     ├── DeviceError           a sound device that cannot be found, opened or kept running
     │    └── DeviceNotFoundError   no device matches what was asked for (a name, an index, a default)
     ├── NotInstalledError     an optional engine (livekit, libspeexdsp, silero-vad) is not installed
     └── AudioValueError       a value audio_io does not support (an unknown engine name); also a ValueError

Messages name the culprit (a path, a device, an engine) in audio terms only. An application maps
them to its own vocabulary where it knows more (the config key that chose the engine), chaining
with `raise ... from exc`; `audio_io` itself never imports its callers.
"""

from __future__ import annotations


def one_line(exc: BaseException, limit: int = 160) -> str:
    """A low-level error's message on one line (for the culprit's one-line error), at most `limit` chars."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class AudioError(Exception):
    """Root of every error `audio_io` raises on purpose."""


class AudioFileError(AudioError):
    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class DeviceError(AudioError):
    pass


class DeviceNotFoundError(DeviceError):
    pass


class NotInstalledError(AudioError):
    pass


class AudioValueError(AudioError, ValueError):
    pass
