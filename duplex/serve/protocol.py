"""The `duplex-serve` wire protocol, version 1: what travels on one WebSocket. Pure, no network.

One connection is one conversation, negotiated as the WebSocket subprotocol `duplex.v1`:

    client -> server   binary: one step of microphone audio, 160 ms of 16 kHz mono PCM16 LE (5120 bytes)
                       text:   a command, `{"cmd": "mute", "id": 7}` (exactly the MQTT command: `duplex.commands.WIRE`)
                               or the end of the input, `{"type": "end"}` (the server then plays the tail
                               of the reply like an offline run and closes)
    server -> client   text:   first `{"type": "hello", "protocol": 1, ...}`, then every session event, exactly
                               its JSONL line, and one `{"type": "reply", "id", "ok", "cmd"[, "error"]}` per command
                       binary: one step of speaker audio (5120 bytes PCM16), the block an offline run writes
                               to its WAV at that step; a BREAK event is always sent before the flushed block

Each received frame is one step of the conversation's clock, so the client paces the session.
Whatever a client sends that does not fit closes its connection only, with a one-line reason
(`FrameError`); close reasons fit the WebSocket limit of 123 bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from audio_io.format import SAMPLE_RATE, STEP_SAMPLES
from duplex.commands import CommandError
from duplex.mqtt.protocol import Request, parse_command

VERSION = 1
SUBPROTOCOL = "duplex.v1"
FRAME_BYTES = STEP_SAMPLES * 2  # one 160 ms step of PCM16
MAX_TEXT_BYTES = 4096  # a command or the end message (the MQTT payload limit)
MAX_MESSAGE_BYTES = 4 * FRAME_BYTES  # larger is refused by websockets itself (1009); smaller but wrong: BAD_FRAME
MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason

# Close codes: standard ones where they fit, 4000-4999 (application) for the rest.
NORMAL = 1000  # the input ended and the reply's tail was sent
GOING_AWAY = 1001  # the server is draining (SIGTERM): the conversation ended after its turn
PROTOCOL_ERROR = 1002
IDLE = 1008  # policy: no audio for `idle_timeout_s`
BAD_FRAME = 1003  # unsupported data: a frame of the wrong size
BAD_TEXT = 1007  # a text frame that is not a command
SERVER_ERROR = 1011  # the conversation failed on the server (a model error)
TRY_AGAIN = 1013  # full: every conversation slot is taken
TOO_FAST = 4008  # frames or commands faster than the per-connection limit
SLOW_READER = 4009  # the client does not read what the server sends (the server's queue for it is full)
UNAUTHORIZED = 4401  # only for clients that cannot send headers; the server refuses at the handshake (HTTP 401)

RETRYABLE = frozenset({GOING_AWAY, SERVER_ERROR, TRY_AGAIN, 1006})  # 1006: the connection dropped


class FrameError(Exception):
    """What a client sent cannot be used: the connection closes with `code` and this one-line reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True, slots=True)
class EndOfInput:
    """The client's microphone input is over: play the reply's tail and close."""


END = json.dumps({"type": "end"})


def close_reason(text: str) -> str:
    """One line of at most 123 UTF-8 bytes (cut with '...')."""
    line = " ".join(text.split())
    data = line.encode()
    if len(data) <= MAX_REASON_BYTES:
        return line
    return data[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


def hello(*, backbone: str, server: str) -> str:
    return _dumps({"type": "hello", "protocol": VERSION, "server": server, "backbone": backbone,
                   "sample_rate": SAMPLE_RATE, "frame_bytes": FRAME_BYTES})


def check_hello(text: str | bytes) -> dict[str, Any]:
    """The server's first message, or FrameError saying why it is not one this client speaks."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        obj = None
    if not isinstance(obj, dict) or obj.get("type") != "hello":
        raise FrameError(PROTOCOL_ERROR, "the server did not greet with a hello message (not a duplex-serve?)")
    if obj.get("protocol") != VERSION or obj.get("frame_bytes") != FRAME_BYTES:
        raise FrameError(PROTOCOL_ERROR, f"the server speaks protocol {obj.get('protocol')!r}, this client {VERSION}")
    return obj


def parse_text(text: str) -> Request | EndOfInput:
    """A client's text frame: a command (the MQTT parser) or the end of the input; FrameError otherwise."""
    data = text.encode()
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        obj = None
    if isinstance(obj, dict) and obj.get("type") == "end":
        if len(obj) != 1:
            raise FrameError(BAD_TEXT, "the end message is exactly {\"type\": \"end\"}")
        return EndOfInput()
    try:
        return parse_command(data, max_bytes=MAX_TEXT_BYTES)
    except CommandError as exc:
        raise FrameError(BAD_TEXT, close_reason(f"bad command: {exc}")) from None


def reply(request: Request, error: str | None = None) -> str:
    out: dict[str, Any] = {"type": "reply", "id": request.id, "ok": error is None, "cmd": request.cmd.name}
    if error is not None:
        out["error"] = error
    return _dumps(out)


def frame_to_samples(frame: bytes, index: int) -> np.ndarray:
    """One received microphone frame -> 2560 float32 samples; FrameError for any other size."""
    if len(frame) != FRAME_BYTES:
        odd = " (an odd byte count: not PCM16)" if len(frame) % 2 else ""
        raise FrameError(BAD_FRAME, f"frame {index}: {len(frame)} bytes{odd}; a frame is 160 ms of 16 kHz mono "
                                    f"PCM16, {FRAME_BYTES} bytes")
    return np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0


def samples_to_frame(samples: np.ndarray) -> bytes:
    """Float samples -> PCM16 LE exactly as the offline WAV writer stores them (libsndfile: clip,
    then floor(x * 32768)), so a client's WAV of the frames equals the offline run's WAV byte for byte."""
    scaled = np.floor(np.clip(samples, -1.0, 1.0) * np.float32(32768.0))
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))
