"""The human-readable state timeline printed after an offline session."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console

from duplex.events import Event, EventType

_SHOWN = {EventType.STATE, EventType.CONTROL, EventType.SPEAKER, EventType.OVERRUN, EventType.ERROR,
          EventType.COMMAND, EventType.TEXT}


def describe(event: Event) -> str:
    d = event.data
    match event.type:
        case EventType.STATE:
            return f"{d['from']} -> {d['to']}"
        case EventType.CONTROL:
            return f"token {d['token']}"
        case EventType.SPEAKER:
            return f"speaker {d['what']}"
        case EventType.OVERRUN:
            return f"overrun: step {d['step']} took {d['ms']} ms"
        case _:
            return f"{event.type.value} " + " ".join(f"{k}={v}" for k, v in d.items())


def print_timeline(events: Iterable[Event], summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    for event in events:
        if event.type in _SHOWN:
            console.print(f"{event.t:8.3f}  {describe(event)}")
    console.print("summary: " + ", ".join(f"{k}={v}" for k, v in summary.items()), soft_wrap=True)
