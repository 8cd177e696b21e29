"""Test seams for `duplex-serve`: the real CLI in a subprocess on a free port, raw WebSocket clients,
and the local offline run a served conversation must equal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from duplex.serve import protocol
from duplex.session import DuplexSession

ROOT = Path(__file__).resolve().parent.parent
TIMING_KEYS = {"step_ms_p50", "step_ms_p99", "realtime_factor", "overruns"}
START_TIMEOUT_S = 120.0  # a model load on a machine shared with other test runs


class ServerProcess:
    """`duplex-serve --port 0 ...` in a subprocess; its JSON stdout lines in a file; stopped on exit."""

    def __init__(self, tmp: Path, *args: str, name: str = "serve") -> None:
        self.log = tmp / f"{name}.jsonl"
        self.stderr = tmp / f"{name}.err"
        self.args = ["--port", "0", *args]
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> ServerProcess:
        if self.proc is None:
            self.start()
        return self.wait_listening()

    def start(self) -> None:
        """Start the process (its model loads meanwhile: start several, then wait for each)."""
        with self.log.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "duplex.serve.serve_cli", *self.args],
                                         stdout=out, stderr=err, cwd=ROOT)

    def wait_listening(self) -> ServerProcess:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            listening = [line for line in self.lines() if line.get("what") == "listening"]
            if listening:
                self.port = int(listening[0]["port"])
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"duplex-serve exited {self.proc.returncode}: {self.stderr.read_text()}")
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("duplex-serve did not listen in time")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.log.read_text().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue  # a line being written
        return out


async def health(port: int) -> dict[str, Any]:
    """GET /health on a plain socket (no HTTP client library needed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return {"http_status": status, **json.loads(body)}


async def wait_for_health(port: int, check: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        figures = await health(port)
        if check(figures) or time.monotonic() > deadline:
            return figures
        await asyncio.sleep(0.1)


async def send_and_close_reason(url: str, token: str | None, messages: Sequence[str | bytes]) -> tuple[int, str]:
    """A raw client: connect, read the hello, send `messages`, return the server's close code and reason."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with connect(url, subprotocols=[protocol.SUBPROTOCOL], additional_headers=headers,  # type: ignore[list-item]
                       compression=None) as ws:
        with contextlib.suppress(ConnectionClosed):  # a full server closes before its hello
            protocol.check_hello(await ws.recv())
            for message in messages:
                await ws.send(message)
            async for _ in ws:
                pass
    return ws.close_code or 1006, ws.close_reason or ""


async def solo_run(source: Path, wav: Path, events: Path) -> None:
    """The local offline run of `source` on the default config (what `duplex-chat --input` does, and
    what duplex-serve serves by default)."""
    from duplex.config import load_config

    config = load_config()
    await DuplexSession(config=config, input=source, output=wav, events_path=events).play()


def comparable(lines: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event lines without the wall-clock figures (a late step on a loaded machine is not a change)."""
    return [{k: v for k, v in line.items() if k not in TIMING_KEYS} for line in lines
            if line.get("type") != "overrun"]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def pcm(path: Path) -> np.ndarray:
    return sf.read(path, dtype="int16")[0]
