"""The JSON-lines event log: one `Event.to_dict()` per line, flushed as it is written.

Line-buffered so an interrupted session still leaves every event it published, each line whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from duplex.errors import AudioFileError
from duplex.events import Event, Subscription


class EventLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_dir() or not self.path.parent.exists():
            raise AudioFileError(self.path, "cannot write the event log here")
        self._file: TextIO = self.path.open("w", buffering=1)

    def write(self, event: Event) -> None:
        self._file.write(event.to_json() + "\n")

    async def follow(self, subscription: Subscription) -> None:
        async for event in subscription:
            self.write(event)

    def close(self) -> None:
        self._file.close()


def read_events(path: Path) -> list[dict[str, Any]]:
    with Path(path).open() as f:
        return [json.loads(line) for line in f if line.strip()]
