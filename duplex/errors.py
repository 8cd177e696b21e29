"""One small exception tree; the CLI turns any of these into a one-line message and exit 2.

    DuplexError
     ├── ConfigError        a bad key or value in a config file or override
     ├── AudioFileError     a missing, unreadable, empty or corrupt audio file
     ├── DeviceError        a sound device that cannot be found or opened
     ├── CheckpointError    a missing or damaged model checkpoint file
     ├── ScenarioError      a scenario file that cannot be run as written
     └── SessionError       an embedding-API call the session cannot honour now
          └── NotSupportedError   the backbone cannot do what was asked (e.g. say())

Each carries the culprit (a path, a key, a device name) in its message; low-level errors are
chained with `raise ... from`.
"""

from __future__ import annotations


def one_line(exc: BaseException, limit: int = 160) -> str:
    """A low-level error's message on one line (for the culprit's one-line error), at most `limit` chars."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DuplexError(Exception):
    """Root of every error the runtime reports to a user."""


class ConfigError(DuplexError):
    pass


class AudioFileError(DuplexError):
    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class DeviceError(DuplexError):
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
