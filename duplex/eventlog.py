"""The JSON-lines event log: one `Event.to_dict()` per line, written as it happens.

Each line goes to the disk with one unbuffered write, so an interrupted session still leaves
every event it published, each line whole. A write that fails (a full disk, `/dev/full`) cuts
the file back to its last whole line and raises AudioFileError: the session ends with one line
naming the log, and what was logged stays valid JSON lines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from duplex.errors import AudioFileError
from duplex.events import Event, Subscription


class EventLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_dir() or not self.path.parent.exists():
            raise AudioFileError(self.path, "cannot write the event log here")
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise AudioFileError(self.path, f"cannot write the event log ({exc.strerror or exc})") from exc
        self._good = 0  # bytes of whole lines on disk
        self.lines = 0

    def write(self, event: Event) -> None:
        self.write_line(event.to_json())

    def write_line(self, line: str) -> None:
        """One JSON line as it is (a thin client writes the lines its server sent)."""
        if self._fd is None:
            raise AudioFileError(self.path, "the event log is closed")
        data = (line + "\n").encode()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            self._cut_back()
            raise AudioFileError(self.path, f"writing the event log failed after {self.lines} lines "
                                            f"({exc.strerror or exc}); those lines are kept") from exc
        self._good += len(data)
        self.lines += 1

    def _cut_back(self) -> None:
        """Drop a partly written last line, so the log stays valid JSON lines."""
        try:
            if os.fstat(self._fd).st_size > self._good:  # type: ignore[arg-type]
                os.ftruncate(self._fd, self._good)  # type: ignore[arg-type]
        except OSError:
            pass  # a device (/dev/full) cannot be cut: nothing partial reached a file

    async def follow(self, subscription: Subscription) -> None:
        async for event in subscription:
            self.write(event)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_events(path: Path) -> list[dict[str, Any]]:
    with Path(path).open() as f:
        return [json.loads(line) for line in f if line.strip()]
