"""`duplex-chat` without `--input`: a live conversation on the sound card, same engine as offline.

Opens the devices (one line naming the device and the fix when that fails), waits out the
start-up stall of the streams, starts the session clock on the microphone's first block, then
runs the engine next to the terminal UI (or a plain timeline), the event log and the recorder in
one task group. Ctrl-C, `q` or `--duration` end the session cleanly with a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from duplex.config import Config, LiveConfig
from duplex.errors import DeviceError

if TYPE_CHECKING:  # the rest loads when a live session starts, so `--help` stays fast
    from duplex.engine import Engine
    from duplex.eventlog import EventLog
    from duplex.tui import SessionMetrics

def add_live_arguments(p: argparse.ArgumentParser) -> None:
    """The live-session flags of `duplex-chat` (they override the `live.*` config keys)."""
    g = p.add_argument_group("live session (no --input)")
    g.add_argument("--list-devices", action="store_true", help="list sound devices and exit")
    g.add_argument("--input-device", metavar="IDX|NAME", help="microphone by index or name substring")
    g.add_argument("--output-device", metavar="IDX|NAME", help="speaker by index or name substring")
    g.add_argument("--record", type=Path, metavar="DIR", help="save mic.wav, mic_raw.wav, speaker.wav, events.jsonl")
    g.add_argument("--no-tui", action="store_true", help="print the timeline instead of the terminal UI")
    g.add_argument("--duration", type=float, metavar="SECONDS", help="end the session after this long")


def live_options(cfg: Config, args: argparse.Namespace) -> LiveConfig:
    """The `live` section with the command-line flags applied."""
    live = cfg.live
    changes: dict[str, Any] = {}
    if getattr(args, "input_device", None) is not None:
        changes["input_device"] = args.input_device
    if getattr(args, "output_device", None) is not None:
        changes["output_device"] = args.output_device
    if getattr(args, "no_tui", False):
        changes["tui"] = False
    return dataclasses.replace(live, **changes)


def run_live(cfg: Config, args: argparse.Namespace) -> int:
    if getattr(args, "list_devices", False):
        from audio_io.devices import default_indices, describe_devices, list_devices

        inp, out = default_indices()
        print(describe_devices(list_devices(), inp, out) + "; choose with --input-device/--output-device IDX|NAME")
        return 0
    live = live_options(cfg, args)
    session = LiveSession(cfg, live, record=getattr(args, "record", None), events=getattr(args, "events", None),
                          duration=getattr(args, "duration", None))
    return asyncio.run(session.run())


class LiveSession:
    """One live conversation: devices, engine, UI, log and recorder, opened and closed together."""

    def __init__(self, cfg: Config, live: LiveConfig, *, record: Path | None = None, events: Path | None = None,
                 duration: float | None = None) -> None:
        self.cfg, self.live = cfg, live
        self.record, self.events, self.duration = record, events, duration
        from duplex.events import EventBus

        self.bus = EventBus()
        self.engine: Engine | None = None

    async def run(self) -> int:
        from audio_io.record import Recorder
        from duplex.backbones import load_model
        from duplex.engine import Engine
        from duplex.eventlog import EventLog
        from duplex.live_devices import open_live_devices
        from duplex.tui import SessionMetrics, summary_lines

        model = load_model(self.cfg)  # config and checkpoint errors before any device is touched
        recorder = Recorder(self.record) if self.record else None
        log_path = self.events or (self.record / "events.jsonl" if self.record else None)
        log = EventLog(log_path) if log_path else None
        devices = None
        try:
            devices = await open_live_devices(self.live, tap=recorder)
            engine = Engine(model=model, input=devices.mic, output=devices.speaker, bus=self.bus,
                            clock=devices.clock, config=self.cfg.engine, offline=False)
            self.engine = engine
            metrics = SessionMetrics(mic=devices.mic, speaker=devices.speaker, engine=engine, aec=devices.aec,
                                     guard_s=devices.guard_s)
            await self._converse(engine, metrics, log)
        finally:
            if devices is not None:
                devices.close()
            if recorder:
                recorder.close()
            if log:
                log.close()
        for line in summary_lines(metrics):
            print(line)
        if metrics.errors:  # a device failed mid-session: the summary, then one error line, exit 2
            raise DeviceError(metrics.errors[-1])
        return 0

    async def _converse(self, engine: Engine, metrics: SessionMetrics, log: EventLog | None) -> None:
        from duplex.engine import Command
        from duplex.events import Event, EventType
        from duplex.tui import LiveView, PlainView

        view = LiveView(metrics, engine) if self.live.tui and sys.stdout.isatty() else PlainView(metrics)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, engine.submit, Command.STOP)
            loop.add_signal_handler(signal.SIGTERM, engine.submit, Command.STOP)
        watchers = [self.bus.subscribe()]
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(metrics.follow(watchers[0]), name="duplex.live.metrics")
                if log:
                    watchers.append(self.bus.subscribe())
                    tg.create_task(log.follow(watchers[-1]), name="duplex.live.eventlog")
                ui = tg.create_task(view.run(), name="duplex.live.ui")
                if self.duration:
                    timer = tg.create_task(self._stop_after(engine, self.duration), name="duplex.live.duration")
                await engine.run()
                self.bus.publish(Event(engine.clock.now(), EventType.SESSION, {"what": "live", **metrics.figures()}))
                self.bus.close()
                ui.cancel()
                if self.duration:
                    timer.cancel()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, ValueError):
                    loop.remove_signal_handler(sig)

    @staticmethod
    async def _stop_after(engine: Engine, seconds: float) -> None:
        from duplex.engine import Command

        await asyncio.sleep(seconds)
        engine.submit(Command.STOP)
