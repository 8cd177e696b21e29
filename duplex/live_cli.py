"""`duplex-chat` without `--input`: a live conversation on the sound card, the same DuplexSession as offline.

Opens the devices (one line naming the device and the fix when that fails), waits out the
start-up stall of the streams, starts the session clock on the microphone's first block, then
runs the session next to the terminal UI (or a plain timeline) and the recorder; the session
writes the event log. Ctrl-C, `q` or `--duration` end the session cleanly with a summary.
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
    from duplex.serve.remote import RemoteSession
    from duplex.session import DuplexSession
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
    return asyncio.run(converse(cfg, live_options(cfg, args), record=getattr(args, "record", None),
                                events=getattr(args, "events", None), duration=getattr(args, "duration", None)))


async def converse(cfg: Config, live: LiveConfig, *, record: Path | None = None, events: Path | None = None,
                   duration: float | None = None) -> int:
    """One live conversation: a DuplexSession on the sound card, with the UI, recorder and log."""
    from audio_io.record import Recorder
    from duplex.backbones import load_model
    from duplex.live_devices import open_live_devices
    from duplex.session import DuplexSession
    from duplex.tui import SessionMetrics, summary_lines

    log_path = events or (record / "events.jsonl" if record else None)
    model = await asyncio.to_thread(load_model, cfg)  # config and checkpoint errors before any device too
    recorder = Recorder(record) if record else None
    try:
        devices = await open_live_devices(live, tap=recorder)
        metrics: SessionMetrics | None = None
        session = DuplexSession(config=cfg, input=devices.mic, output=devices.speaker, model=model, live=True,
                                clock=devices.clock, events_path=log_path,
                                summary=lambda: metrics.figures() if metrics is not None else {})
        metrics = SessionMetrics(mic=devices.mic, speaker=devices.speaker, session=session, aec=devices.aec,
                                 guard_s=devices.guard_s)
        await run_with_view(session, metrics, tui=live.tui and sys.stdout.isatty(), duration=duration)
    finally:
        if recorder:
            recorder.close()
    assert metrics is not None
    for line in summary_lines(metrics):
        print(line)
    if metrics.errors:  # a device failed mid-session: the summary, then one error line, exit 2
        raise DeviceError(metrics.errors[-1])
    return 0


async def run_with_view(session: DuplexSession | RemoteSession, metrics: SessionMetrics, *, tui: bool,
                        duration: float | None) -> None:
    """The session next to the terminal UI (or the plain timeline) until it ends, `q`, Ctrl-C or `duration`."""
    from duplex.tui import LiveView, PlainView

    view = LiveView(metrics, session.submit) if tui else PlainView(metrics)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, _stop, session)
        loop.add_signal_handler(signal.SIGTERM, _stop, session)
    try:
        async with session, asyncio.TaskGroup() as tasks:
            tasks.create_task(metrics.follow(session.events(maxsize=0)), name="duplex.live.metrics")
            ui = tasks.create_task(view.run(), name="duplex.live.ui")
            timer = tasks.create_task(_stop_after(session, duration), name="duplex.live.duration")
            await session.wait()
            ui.cancel()
            timer.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, ValueError):
                loop.remove_signal_handler(sig)


def _stop(session: DuplexSession | RemoteSession) -> None:
    if session.running:
        session.stop()


async def _stop_after(session: DuplexSession | RemoteSession, seconds: float | None) -> None:
    if seconds:
        await asyncio.sleep(seconds)
        _stop(session)
