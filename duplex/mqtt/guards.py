"""What the bridge refuses from the outside world: retained commands, refused credentials, odd password files.

* A retained message on the command topic is replayed by the broker at every subscribe, so one
  `mosquitto_pub -r` would stop or mute every future session, across restarts and reconnects.
  Commands are requests of the moment: a retained one is never applied, and answered once (per
  distinct payload, per process) with an error that says how to clear it.
* A broker that refuses the credentials (CONNACK "bad user name or password" / "not authorised")
  will refuse them again: retrying for ever only hides a configuration error. It is reported
  once, distinctly, and not retried, unless the broker accepted the same credentials earlier in
  this process (it is then reloading its user list, a passing state).
* `password_file` is a small regular UTF-8 text file; a FIFO, `/dev/zero` or a huge file must
  neither hang the kiosk nor eat its memory.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from duplex.errors import ConfigError

PASSWORD_FILE_MAX = 4096
# CONNACK codes: MQTT 3.1.1 (4 bad user name or password, 5 not authorised) and MQTT 5 (134, 135)
AUTH_REFUSED = frozenset({4, 5, 134, 135})


def read_password_file(path: Path, *, option: str = "mqtt.password_file = ", secret: str = "the password") -> str:
    """The first line of `path`: a regular file of at most 4 KiB of UTF-8, read without blocking.

    `option` names where the path came from in messages (`duplex-serve --token-file ` reuses it)."""
    where = f"{option}{str(path)!r}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read ({exc.strerror or type(exc).__name__})") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{where}: not a regular file (a device, pipe or folder); put {secret} in a file")
        data = os.read(fd, PASSWORD_FILE_MAX + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read ({exc.strerror or type(exc).__name__})") from exc
    finally:
        os.close(fd)
    if len(data) > PASSWORD_FILE_MAX:
        raise ConfigError(f"{where}: larger than {PASSWORD_FILE_MAX} bytes; it should hold one line, {secret}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text (byte {exc.start})") from exc
    lines = text.splitlines()
    return lines[0] if lines else ""


def refusal_code(exc: BaseException) -> int | None:
    """The CONNACK code when `exc` says the broker refused the credentials, else None."""
    rc = getattr(exc, "rc", None)
    value = getattr(rc, "value", rc)
    return value if isinstance(value, int) and value in AUTH_REFUSED else None


def auth_message(host: str, port: int, username: str, exc: BaseException) -> str:
    who = f"user {username!r}" if username else "an anonymous client"
    return (f"broker {host}:{port} refused {who} ({exc}); check mqtt.username and mqtt.password / "
            "mqtt.password_file. Not retried: restart after fixing the credentials")


class RetainedCommands:
    """Answer each distinct retained command once; never apply any."""

    def __init__(self) -> None:
        self._answered: set[bytes] = set()
        self.ignored = 0

    def first_sight(self, payload: bytes) -> bool:
        """Count it; True the first time this payload is seen retained (answer it then)."""
        self.ignored += 1
        key = hashlib.sha256(payload).digest()
        if key in self._answered:
            return False
        self._answered.add(key)
        return True

    @staticmethod
    def error(topic: str) -> str:
        return (f"retained message on {topic} ignored: commands must not be retained (it would be replayed at "
                f"every start); clear it with: mosquitto_pub -r -n -t '{topic}'")
