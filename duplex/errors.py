"""Two small exception trees; the CLI turns any of them (`USER_ERRORS`) into one line and exit 2.

    DuplexError
     ├── ConfigError        a bad key or value in a config file or override
     ├── CheckpointError    a missing or damaged model checkpoint file
     ├── ScenarioError      a scenario file that cannot be run as written
     └── SessionError       an embedding-API call the session cannot honour now
          └── NotSupportedError   the backbone cannot do what was asked (e.g. say())

    audio_io.errors.AudioError     (the audio layer's own root: it knows nothing of duplex)
     ├── AudioFileError     a missing, unreadable, empty, corrupt or unwritable audio file
     ├── DeviceError        a sound device that cannot be found, opened or kept running
     ├── NotInstalledError  an optional audio engine is not installed
     └── AudioValueError    a value the audio layer does not support

Where duplex knows the config key behind an audio value it re-raises as `ConfigError(...) from exc`
(see `duplex.audio_setup`); the audio file and device errors reach the user as they are, so they
are re-exported here. Each carries the culprit (a path, a key, a device name) in its message;
low-level errors are chained with `raise ... from`.
"""

from __future__ import annotations

from audio_io.errors import (
    AudioError,
    AudioFileError,
    AudioValueError,
    DeviceError,
    DeviceNotFoundError,
    NotInstalledError,
    one_line,
)

__all__ = [
    "USER_ERRORS", "AudioError", "AudioFileError", "AudioValueError", "CheckpointError", "ConfigError",
    "DeviceError", "DeviceNotFoundError", "DuplexError", "NotInstalledError", "NotSupportedError",
    "ScenarioError", "SessionError", "one_line",
]


class DuplexError(Exception):
    """Root of every error the runtime reports to a user."""


class ConfigError(DuplexError):
    pass


class CheckpointError(DuplexError):
    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class ScenarioError(DuplexError):
    pass


class SessionError(DuplexError):
    """A call the session cannot honour now: not entered yet, or already ended."""


class NotSupportedError(SessionError):
    """The session's backbone cannot do what was asked (e.g. `say()` on a backbone that only answers)."""


# What a command-line tool reports as one line and exit status 2 (anything else is a bug: traceback).
USER_ERRORS: tuple[type[Exception], ...] = (DuplexError, AudioError)
