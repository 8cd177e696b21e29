"""One offline session: a WAV (or any input device) in, the speaker's WAV and the events out.

Everything is validated and opened before the first step, so a bad input never leaves a
half-written output behind; the WAV sink and the event log are closed in every case.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audio_io.stream import open_input
from audio_io.wav import NullOutput, WavOutput
from duplex.backbones import Model, load_model
from duplex.clock import VirtualClock, WallClock
from duplex.config import Config
from duplex.engine import Engine, InputDevice, OutputDevice
from duplex.eventlog import EventLog
from duplex.events import Event, EventBus


@dataclass(slots=True)
class SessionResult:
    events: list[Event] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


async def run_session(cfg: Config, *, input: InputDevice, output: OutputDevice, model: Model | None = None,
                      events_path: Path | None = None, realtime: bool = False,
                      bus: EventBus | None = None) -> SessionResult:
    """Drive one engine to the end on an offline input; collect every event."""
    model = model or load_model(cfg)
    bus = bus or EventBus()
    log = EventLog(events_path) if events_path else None
    collected = bus.subscribe()
    engine = Engine(model=model, input=input, output=output, bus=bus, config=cfg.engine,
                    clock=WallClock() if realtime else VirtualClock(), offline=True)
    tasks = []
    if log:
        tasks.append(asyncio.create_task(log.follow(bus.subscribe()), name="duplex.eventlog"))
    try:
        await engine.run()
    finally:
        bus.close()
        await asyncio.gather(*tasks)
        if log:
            log.close()
        output.close()
        input.close()
    events = collected.pending()
    return SessionResult(events=events, summary=engine.stats.summary() | {"steps": engine.step_index})


def run_wav_session(cfg: Config, input_path: Path, output_path: Path | None,
                    events_path: Path | None = None, *, realtime: bool = False) -> SessionResult:
    model = load_model(cfg)  # config errors surface before any file is touched
    source = open_input(input_path)  # a file, or a pipe/FIFO read as a stream
    try:
        sink: OutputDevice = WavOutput(output_path) if output_path else NullOutput()
    except Exception:
        source.close()
        raise
    return asyncio.run(run_session(cfg, input=source, output=sink, model=model,
                                   events_path=events_path, realtime=realtime))
