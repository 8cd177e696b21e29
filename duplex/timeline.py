"""The human-readable state timeline printed after an offline session."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console

from duplex.events import CommandApplied, Control, Error, Event, Hold, Overrun, Speaker, StateChanged, Text

_SHOWN = (StateChanged, Control, Speaker, Hold, Overrun, Error, CommandApplied, Text)


def describe(event: Event) -> str:
    match event:
        case StateChanged(src=src, dst=dst):
            return f"{src.value} -> {dst.value}"
        case Control(token=token):
            return f"token {token.value}"
        case Speaker(audible=audible):
            return f"speaker {'started' if audible else 'stopped'}"
        case Hold(held=held):
            return "reply held" if held else "hold over"
        case Overrun(step=step, ms=ms):
            return f"overrun: step {step} took {ms} ms"
        case _:
            return f"{event.type.value} " + " ".join(f"{k}={v}" for k, v in event.payload().items())


def print_timeline(events: Iterable[Event], summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    for event in events:
        if isinstance(event, _SHOWN):
            console.print(f"{event.t:8.3f}  {describe(event)}")
    console.print("summary: " + ", ".join(f"{k}={v}" for k, v in summary.items()), soft_wrap=True)
