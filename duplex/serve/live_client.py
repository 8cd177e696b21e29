"""The live thin client: the local sound card on one end, a `duplex-serve` conversation on the other.

`duplex-chat --server URL` (no `--input`) and `duplex-kiosk --server URL` open the microphone and
speaker exactly as a local live session does (`duplex.live_devices`: echo cancellation, the
speaker's jitter buffer, device recovery), send each cleaned 160 ms microphone chunk as a frame and
play the blocks that come back. What must not wait on the network stays local: the echo canceller
works on the local speaker's reference, and a BREAK flushes the local speaker's queue the moment
the event arrives (`LiveSink.flush`). Jitter on the link is absorbed by the speaker's jitter
buffer: a turn's first audio is held back `live.jitter_ms` before it plays.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from duplex.config import Config, LiveConfig
from duplex.errors import DeviceError
from duplex.serve import protocol
from duplex.serve.client import Link
from duplex.serve.remote import RemoteSession

if TYPE_CHECKING:
    from duplex.live_devices import LiveDevices


class MicFrames:
    """The local microphone as frames: each read waits for the next 160 ms chunk (never paced, never skipped)."""

    paced = False

    def __init__(self, mic: Any) -> None:
        self.mic = mic

    async def read(self) -> bytes | None:
        chunk = await self.mic.read()
        return None if chunk is None else protocol.samples_to_frame(chunk)

    def skip(self, n: int) -> int:
        return 0

    def close(self) -> None:
        self.mic.close()


class LiveSink:
    """The local speaker: the server's blocks into its queue (silent blocks left out, so the queue runs
    dry between turns and the jitter buffer holds each new turn back); a BREAK flushes it at once,
    a hold pauses it at once (what it queued plays when the reply goes on)."""

    def __init__(self, speaker: Any) -> None:
        self.speaker = speaker
        self.held = False

    def play(self, step: int, frame: bytes) -> None:
        samples = np.frombuffer(frame, dtype="<i2")
        if self.held:  # the server's fade-out, then silence: the fade joins what is paused, the silence not
            samples = np.trim_zeros(samples, "b")
        if samples.any():
            self.speaker.queue.push(samples.astype(np.float32) / 32768.0)

    def flush(self) -> None:
        self.speaker.queue.flush()

    def hold(self, held: bool) -> None:
        self.held = held
        if held:
            self.speaker.queue.pause()
        else:
            self.speaker.queue.resume()

    def close(self) -> None:
        self.speaker.close()


def live_remote_session(link: Link, devices: LiveDevices, *, events: Any = None) -> RemoteSession:
    return RemoteSession(link=link, source=MicFrames(devices.mic), sink=LiveSink(devices.speaker), events_path=events)


async def converse_remote(cfg: Config, live: LiveConfig, link: Link, *, events: Path | None = None,
                          record: Path | None = None, duration: float | None = None) -> int:
    """`duplex-chat --server URL`: the live session's devices, UI, recorder and summary, the model on the server."""
    from audio_io.record import Recorder
    from duplex.live_cli import run_with_view
    from duplex.live_devices import open_live_devices
    from duplex.tui import SessionMetrics, summary_lines

    recorder = Recorder(record) if record else None
    try:
        devices = await open_live_devices(live, tap=recorder)
        session = live_remote_session(link, devices, events=events or (record / "events.jsonl" if record else None))
        metrics = SessionMetrics(mic=devices.mic, speaker=devices.speaker, session=session, aec=devices.aec,
                                 guard_s=devices.guard_s)
        await run_with_view(session, metrics, tui=live.tui and sys.stdout.isatty(), duration=duration)
    finally:
        if recorder:
            recorder.close()
    for line in summary_lines(metrics):
        print(line)
    if metrics.errors:
        raise DeviceError(metrics.errors[-1])
    return 0


def run_live_remote(cfg: Config, args: argparse.Namespace, link: Link) -> int:
    import asyncio

    from duplex.live_cli import live_options

    return asyncio.run(converse_remote(cfg, live_options(cfg, args), link, events=getattr(args, "events", None),
                                       record=getattr(args, "record", None), duration=getattr(args, "duration", None)))
