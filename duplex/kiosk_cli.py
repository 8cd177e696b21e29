"""`duplex-kiosk`: sessions supervised for days, mirrored on MQTT, logged as JSON lines on stdout.

The unattended counterpart of `duplex-chat`: no terminal UI, a session restarted after errors,
every event (and every bridge log record) one JSON object per line on stdout for journald or a
log shipper, and a clean `offline` on SIGTERM. A bad config or input ends with one line naming
the culprit and exit status 2, before anything connects.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from duplex.cli import guarded
from duplex.config import Config
from duplex.errors import ConfigError
from duplex.events import Subscription

if TYPE_CHECKING:
    from duplex.backbones import Model
    from duplex.serve.remote import RemoteSession
    from duplex.session import DuplexSession

SessionFactory = Callable[[], "DuplexSession | Awaitable[DuplexSession] | RemoteSession | Awaitable[RemoteSession]"]


def kiosk_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duplex-kiosk",
                                description="Unattended sessions with an MQTT bridge and JSON logs on stdout.")
    p.add_argument("--config", type=Path, help="YAML config file (see examples/kiosk/kiosk.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key")
    p.add_argument("--input", type=Path,
                   help="a WAV as the microphone instead of the sound card (each session replays it)")
    p.add_argument("--output", type=Path, help="with --input: WAV of what the speaker plays (rewritten per session)")
    p.add_argument("--realtime", action="store_true", help="with --input: pace sessions at wall-clock speed")
    p.add_argument("--once", action="store_true", help="exit when the first session ends (status 1 if it failed)")
    p.add_argument("--print-config", action="store_true", help="print the effective config and exit")
    from duplex.serve.remote_cli import add_server_arguments

    add_server_arguments(p)
    return p


def kiosk_main(argv: Sequence[str] | None = None) -> int:
    args = kiosk_parser().parse_args(argv)
    return guarded("duplex-kiosk", _kiosk, args)


def main() -> None:
    sys.exit(kiosk_main())


def _kiosk(args: argparse.Namespace) -> int:
    from duplex.config import dump_yaml, load_config

    cfg = load_config(args.config, sets=args.set)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    open_session = _session_factory(cfg, args)
    json_logging()
    return asyncio.run(_serve(cfg, open_session, once=args.once))


def _session_factory(cfg: Config, args: argparse.Namespace) -> SessionFactory:
    """Check the devices now (a bad path or device fails before anything starts); open them per session."""
    if getattr(args, "server", None) is not None:
        from duplex.serve.remote_cli import kiosk_remote_factory

        return kiosk_remote_factory(cfg, args)
    if args.input is None:
        return _live_factory(cfg)
    from audio_io.wav import probe
    from duplex.paths import chat_outputs
    from duplex.session import DuplexSession

    chat_outputs(args)  # checked once at start: a bad --output must not fail every session
    probe(args.input)
    return lambda: DuplexSession(config=cfg, input=args.input, output=args.output, realtime=args.realtime)


def _live_factory(cfg: Config) -> SessionFactory:
    """Sessions on the sound card: the same device set-up as `duplex-chat` live, repeated per session."""
    from duplex.audio_setup import device_from_config

    live = cfg.live
    device_from_config(live, "input")  # one line naming the device (or what to install), exit 2
    device_from_config(live, "output")

    loaded: list[Model] = []  # loaded once; each session starts it afresh (START resets its context)

    async def open_live() -> DuplexSession:
        from duplex.backbones import load_model
        from duplex.live_devices import open_live_devices
        from duplex.session import DuplexSession
        from duplex.worker import ModelWorker

        if not loaded:
            loaded.append(await asyncio.to_thread(load_model, cfg))  # before the microphone runs
        model = loaded[0]
        ModelWorker.of(model).reset_vocoder()  # on the model's thread, behind anything still in flight
        devices = await open_live_devices(live)
        return DuplexSession(config=cfg, input=devices.mic, output=devices.speaker, model=model, live=True,
                             clock=devices.clock)

    return open_live


async def _serve(cfg: Config, open_session: SessionFactory, *, once: bool) -> int:
    from duplex.kiosk import SessionHost

    host = SessionHost(open_session=open_session, autostart=cfg.mqtt.autostart or once,
                       restart_delay_s=cfg.mqtt.restart_delay_s, once=once)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bridge = None
    async with contextlib.AsyncExitStack() as stack:
        if cfg.mqtt.enabled:
            from duplex.mqtt.bridge import MqttBridge  # ConfigError if aiomqtt is missing

            bridge = await stack.enter_async_context(MqttBridge(config=cfg.mqtt, host=host, base_dir=cfg.base_dir))
        events = host.bus.subscribe(maxsize=10_000)
        async with asyncio.TaskGroup() as tasks:
            printer = tasks.create_task(_print_events(events), name="duplex.kiosk.log")
            async with host:
                waits: list[asyncio.Task[Any]] = [tasks.create_task(stop.wait(), name="duplex.kiosk.signal")]
                if once:
                    waits.append(tasks.create_task(host.finished(), name="duplex.kiosk.once"))
                    if bridge is not None:  # refused credentials are a config error: exit 2, not 0
                        waits.append(tasks.create_task(bridge.refused.wait(), name="duplex.kiosk.refused"))
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in waits:
                    task.cancel()
            events.close()
            await printer
    if once and bridge is not None and bridge.refused.is_set():
        raise ConfigError(bridge.last_error)
    return 1 if once and host.failures else 0


async def _print_events(events: Subscription) -> None:
    async for event in events:
        print(event.to_json(), flush=True)


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"type": "log", "time": round(time.time(), 3), "level": record.levelname.lower(),
                           "logger": record.name, "message": record.getMessage()}, separators=(",", ":"))


def json_logging(*, quiet: dict[str, int] | None = None) -> None:
    """duplex's log records as JSON lines on stdout (also `duplex-serve`'s); `quiet`: logger -> level."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_JsonLines())
    root = logging.getLogger("duplex")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name, level in (quiet or {"duplex.mqtt.client": logging.ERROR}).items():
        logging.getLogger(name).setLevel(level)


if __name__ == "__main__":
    main()
