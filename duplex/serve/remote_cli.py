"""`--server URL` for `duplex-chat` and `duplex-kiosk`: the same run, the conversation on a `duplex-serve`.

Only the model moves: outputs are checked first (`duplex.paths`), the input is read and encoded
before connecting, the WAV and the JSONL are what the local offline run writes, and the timeline
is printed the same way. Errors are one line and exit status 2 (`ServerError` is a DuplexError).
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from duplex.errors import ConfigError
from duplex.events import Event, from_dict

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from duplex.config import Config
    from duplex.serve.client import Link
    from duplex.serve.remote import RemoteSession


def add_server_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("thin client (the model runs on a duplex-serve)")
    g.add_argument("--server", metavar="ws://HOST:PORT", help="talk to this duplex-serve instead of a local model")
    g.add_argument("--token-file", type=Path, help="with --server: file whose first line is the server's token")
    g.add_argument("--retry-for", type=float, default=30.0, metavar="SECONDS",
                   help="with --server: keep reconnecting this long after the link drops (default 30)")


def link_from_args(args: argparse.Namespace, prog: str) -> Link:
    """A `duplex.serve.client.Link` from the flags; ConfigError (one line) for a bad URL or token file."""
    try:
        from duplex.serve.client import Link, stderr_report
    except ModuleNotFoundError as exc:
        if exc.name != "websockets":
            raise
        raise ConfigError("--server needs the 'serve' extra: pip install 'duplex[serve]' (websockets)") from exc

    url = args.server
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(f"--server {url!r}: expected ws://HOST:PORT or wss://HOST:PORT")
    if not (args.retry_for >= 0):
        raise ConfigError(f"--retry-for {args.retry_for:g}: must be 0 or more seconds")
    token = None
    if args.token_file is not None:
        from duplex.mqtt.guards import read_password_file

        token = read_password_file(args.token_file, option="--token-file ", secret="the token").strip() or None
    if not parts.path:
        url = url + "/"
    return Link(url, token=token, ssl=ssl.create_default_context() if parts.scheme == "wss" else None,
                retry_for_s=args.retry_for, report=stderr_report(prog))


def chat_remote(cfg: Config, args: argparse.Namespace) -> int:
    """`duplex-chat --server URL --input IN.wav [--output OUT.wav] [--events E.jsonl]`, or live without --input."""
    link = link_from_args(args, "duplex-chat")
    if args.input is None:
        from duplex.serve.live_client import run_live_remote

        return run_live_remote(cfg, args, link)
    from duplex.serve.remote import FileClient
    from duplex.timeline import print_timeline

    client = FileClient(link=link, input=args.input, output=args.output, events=args.events)
    result = asyncio.run(client.run())
    if not args.quiet:
        events = session_events(result.events)
        stopped = [e for e in events if e.type.value == "session" and e.data.get("what") == "stopped"]
        print_timeline(events, stopped[-1].summary() if stopped else {})  # type: ignore[attr-defined]
    return 0


def session_events(lines: list[dict[str, object]]) -> list[Event]:
    """The session events among the received lines (the client's own `link` lines left out)."""
    return [from_dict(line) for line in lines if line.get("type") != "link"]


def kiosk_remote_factory(cfg: Config, args: argparse.Namespace) -> Callable[[], Awaitable[RemoteSession]]:
    """`duplex-kiosk --server URL`: each session a conversation on the server, from the sound card or,
    with --input, from the file (at real time, into --output). The URL, token and file are checked now."""
    from duplex.paths import chat_outputs

    chat_outputs(args)
    link_from_args(args, "duplex-kiosk")
    from duplex.serve.client import BlockWriter, frames_of
    from duplex.serve.remote import FileFrames, RemoteSession

    frames = frames_of(args.input) if args.input is not None else None
    if frames is None:
        from duplex.audio_setup import device_from_config

        device_from_config(cfg.live, "input")  # one line naming the device (or what to install), exit 2
        device_from_config(cfg.live, "output")

    async def open_remote() -> RemoteSession:
        link = link_from_args(args, "duplex-kiosk")  # a fresh backoff per session
        if frames is not None:
            sink = BlockWriter(args.output) if args.output is not None else None
            return RemoteSession(link=link, source=FileFrames(frames), sink=sink)
        from duplex.live_devices import open_live_devices
        from duplex.serve.live_client import live_remote_session

        return live_remote_session(link, await open_live_devices(cfg.live))

    return open_remote
