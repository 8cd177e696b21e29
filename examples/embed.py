"""Embedding duplex in your own asyncio program: one offline session on a WAV, followed event by event.

    python examples/embed.py question.wav --output reply.wav [--cut] [--config my.yaml]

Any WAV with someone speaking works (make one with `espeak-ng -w question.wav "What time is it?"`).
The example pads the recording with two seconds of silence through a tiny InputDevice of its own,
so the model has room to answer; prints every event as a JSON line (the same lines as
`duplex-chat --events`); with `--cut`, cuts the model off as soon as it is heard, as an operator's
button would; and prints the session's stats at the end. No sound card, network or GPU needed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import numpy as np

from duplex import USER_ERRORS, DuplexSession, Speaker, StopSpeaking, WavInput, load_config


class PaddedWav:
    """An InputDevice: a WAV file, then `pad_s` seconds of silence (160 ms chunks of 16 kHz mono)."""

    def __init__(self, path: Path, pad_s: float = 2.0) -> None:
        self._wav = WavInput(path)
        self._pad_chunks = round(pad_s / 0.16)
        self._silence = np.zeros(0, dtype=np.float32)

    async def read(self) -> np.ndarray | None:
        chunk = await self._wav.read()
        if chunk is not None:
            self._silence = np.zeros_like(chunk)  # every chunk has the same size
        elif self._pad_chunks > 0:
            self._pad_chunks -= 1
            chunk = self._silence
        return chunk

    def close(self) -> None:
        self._wav.close()


async def converse(question: Path, output: Path | None, *, config_path: Path | None, cut: bool) -> None:
    config = load_config(config_path)
    async with DuplexSession(config=config, input=PaddedWav(question), output=output) as session:
        async for event in session.events():  # ends when the session does
            print(event.to_json(), flush=True)
            match event:
                case Speaker(audible=True) if cut:
                    session.submit(StopSpeaking())  # applied at the next 160 ms step
        stats = await session.wait()
    print("stats:", stats.to_dict())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", type=Path, help="WAV the microphone hears")
    parser.add_argument("--output", type=Path, help="WAV of what the speaker plays")
    parser.add_argument("--config", type=Path, help="YAML config (defaults otherwise)")
    parser.add_argument("--cut", action="store_true", help="cut the model off as soon as it is heard")
    args = parser.parse_args()
    try:
        asyncio.run(converse(args.question, args.output, config_path=args.config, cut=args.cut))
    except USER_ERRORS as exc:
        print(f"embed.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
