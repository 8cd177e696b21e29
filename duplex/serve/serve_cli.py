"""`duplex-serve`: load the model once, serve conversations over WebSocket until SIGTERM, then drain.

Prints one JSON line when it listens (`{"type":"serve","what":"listening","url":...}`) and one per
conversation closed (the kiosk's JSON log format), so journald and tests read the same thing. A bad
config, token file, certificate or port ends with one line naming it and exit status 2, before
the model loads where possible.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from duplex.cli import guarded
from duplex.errors import ConfigError

if TYPE_CHECKING:
    from duplex.config import Config


def serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duplex-serve",
                                description="Many full-duplex conversations on one model, over WebSocket.")
    p.add_argument("--config", type=Path, help="YAML config file (the model and engine keys of duplex-chat)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    p.add_argument("--max-sessions", type=int, default=8, metavar="N",
                   help="conversations at once (default 8); the next one is refused with close code 1013")
    p.add_argument("--token-file", type=Path, help="file whose first line is the token clients must send")
    p.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve wss:// (with --tls-key)")
    p.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    p.add_argument("--batched", action=argparse.BooleanOptionalAction, default=None,
                   help="lanes of one batched model (default: when the backbone has one) or one model each")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads, process-wide (default: every core for the batched host, whose one "
                        "model thread runs every conversation; 1 with one model per conversation)")
    p.add_argument("--drain-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="on SIGTERM, longest wait for a model's turn to end (default 30)")
    p.add_argument("--name", default="duplex-serve",
                   help="this server's name in its hello, /health and logs (e.g. the host behind a load balancer)")
    p.add_argument("--print-config", action="store_true", help="print the effective config and exit")
    return p


def serve_main(argv: Sequence[str] | None = None) -> int:
    args = serve_parser().parse_args(argv)
    return guarded("duplex-serve", _serve, args)


def main() -> None:
    sys.exit(serve_main())


def _serve(args: argparse.Namespace) -> int:
    from duplex.config import dump_yaml, load_config

    # duplex-chat's default, the cue model and the words, since round 14: a recogniser of words costs
    # half the CPU it did, and 12-22 conversations with words run in real time on 2 cores (docs/serve.md)
    cfg = load_config(args.config, sets=args.set)
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    if not 1 <= args.max_sessions <= 4096:
        raise ConfigError(f"--max-sessions {args.max_sessions}: must be 1..4096")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be 0..65535")
    if args.threads is not None and not 1 <= args.threads <= 256:
        raise ConfigError(f"--threads {args.threads}: must be 1..256")
    if not args.drain_timeout >= 0:
        raise ConfigError(f"--drain-timeout {args.drain_timeout:g}: must be 0 or more seconds")
    token = _token(args.token_file)
    tls = _tls(args.tls_cert, args.tls_key)
    return asyncio.run(_run(cfg, args, token, tls))


async def _run(cfg: Config, args: argparse.Namespace, token: str | None, tls: ssl.SSLContext | None) -> int:
    from duplex.backbones import load_model
    from duplex.serve.conversation import Limits
    from duplex.serve.host import SeparateModels, make_host
    from duplex.serve.server import DuplexServer, ServeOptions

    prototype = await asyncio.to_thread(load_model, cfg)
    host = make_host(prototype, cfg, capacity=args.max_sessions, batched=args.batched,
                     load=functools.partial(load_model, cfg))
    threads = _set_threads(args.threads, batched=not isinstance(host, SeparateModels))
    options = ServeOptions(host=args.host, port=args.port, token=token, ssl=tls, name=args.name,
                           limits=Limits(drain_timeout_s=args.drain_timeout))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    from duplex.kiosk_cli import json_logging

    json_logging(quiet={"websockets": logging.WARNING})
    try:
        server_cm = DuplexServer(host=host, config=cfg, options=options)
        async with server_cm as server:
            scheme = "wss" if tls else "ws"
            _line({"type": "serve", "what": "listening", "url": f"{scheme}://{args.host}:{server.port}",
                   "port": server.port, "capacity": host.capacity, "host": type(host).__name__,
                   "backbone": cfg.backbone, "threads": threads})
            await stop.wait()
            server.stop_accepting()
            _line({"type": "serve", "what": "draining", "conversations": len(server.active)})
            await server.drain()
            _line({"type": "serve", "what": "stopped", **server.health()})
    except OSError as exc:
        raise ConfigError(f"--host {args.host} --port {args.port}: cannot listen ({exc.strerror or exc})") from exc
    return 0


def _set_threads(threads: int | None, *, batched: bool) -> int | None:
    """torch's intra-op threads for the host: a batched host has one model thread (give it the cores),
    separate models one thread each (1 apiece). None when torch is not loaded (the policy backbone)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    chosen = threads or ((os.cpu_count() or 1) if batched else 1)
    torch.set_num_threads(chosen)
    return chosen


def _token(path: Path | None) -> str | None:
    if path is None:
        return None
    from duplex.mqtt.guards import read_password_file

    token = read_password_file(path, option="--token-file ", secret="the token").strip()
    if not token:
        raise ConfigError(f"--token-file {str(path)!r}: its first line is empty; put the token there")
    return token


def _tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("--tls-cert and --tls-key go together (a PEM certificate chain and its key)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"--tls-cert {cert} --tls-key {key}: cannot be used ({getattr(exc, 'strerror', None) or exc})"
                          ) from exc
    return context


def _line(obj: dict[str, object]) -> None:
    print(json.dumps(obj, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
