"""The duplex-serve wire protocol without a network: frames, commands, close reasons, hello."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from duplex.commands import Mute, Ping
from duplex.serve import protocol
from duplex.serve.protocol import EndOfInput, FrameError


def test_speaker_frames_are_the_bytes_the_offline_wav_writer_stores(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    samples = np.concatenate([rng.uniform(-1.2, 1.2, 2560 * 20), np.linspace(-1, 1, 2560 * 4),
                              [1.0, -1.0, 0.5 / 32768, -0.5 / 32768, 1e-9, -1e-9, 0.0]]).astype(np.float32)
    samples = np.resize(samples, (samples.size // 2560 + 1) * 2560)
    sf.write(tmp_path / "ref.wav", np.clip(samples, -1, 1), 16_000, subtype="PCM_16")  # what WavOutput does
    stored = sf.read(tmp_path / "ref.wav", dtype="int16")[0]
    sent = b"".join(protocol.samples_to_frame(samples[i:i + 2560]) for i in range(0, samples.size, 2560))
    assert np.array_equal(np.frombuffer(sent, dtype="<i2"), stored)


def test_a_pcm16_input_survives_the_round_trip_exactly() -> None:
    pcm = np.arange(-32768, 32767, 25, dtype=np.int16)[:2560]
    samples = pcm.astype(np.float32) / 32768.0  # how soundfile reads a PCM16 WAV
    frame = protocol.samples_to_frame(samples)
    assert np.array_equal(protocol.frame_to_samples(frame, 0), samples)


@pytest.mark.parametrize(("size", "odd"), [(5121, True), (100, False), (0, False), (5118, False)])
def test_a_frame_of_another_size_is_refused_naming_its_index_and_size(size: int, odd: bool) -> None:
    with pytest.raises(FrameError) as caught:
        protocol.frame_to_samples(b"\x00" * size, 12)
    assert caught.value.code == protocol.BAD_FRAME
    assert str(caught.value).startswith(f"frame 12: {size} bytes")
    assert ("odd byte count" in str(caught.value)) is odd


def test_text_frames_are_commands_of_the_mqtt_parser_or_the_end() -> None:
    assert isinstance(protocol.parse_text('{"type":"end"}'), EndOfInput)
    request = protocol.parse_text('{"cmd":"mute","id":3}')
    assert not isinstance(request, EndOfInput) and request.cmd == Mute() and request.id == 3
    ping = protocol.parse_text('{"cmd":"ping"}')
    assert not isinstance(ping, EndOfInput) and ping.cmd == Ping()
    assert json.loads(protocol.reply(request)) == {"type": "reply", "id": 3, "ok": True, "cmd": "mute"}
    assert json.loads(protocol.reply(request, "no")) == {"type": "reply", "id": 3, "ok": False, "cmd": "mute",
                                                          "error": "no"}


@pytest.mark.parametrize(("text", "expected"), [
    ("hello", "malformed JSON"),
    ('{"cmd":"say"}', 'unknown cmd "say"'),
    ('{"cmd":"mute","url":"http://x"}', 'unknown key "url"'),
    ('{"type":"end","now":true}', "exactly"),
    ("[" * 3000, "malformed JSON"),
    ("x" * 5000, "exceeds the limit of 4096"),
], ids=["not JSON", "say", "extra key", "end with more", "deep nesting", "too long"])
def test_anything_else_in_a_text_frame_closes_with_one_short_line(text: str, expected: str) -> None:
    with pytest.raises(FrameError) as caught:
        protocol.parse_text(text)
    reason = str(caught.value)
    assert caught.value.code == protocol.BAD_TEXT and expected in reason
    assert "\n" not in reason and len(reason.encode()) <= protocol.MAX_REASON_BYTES


def test_close_reasons_are_cut_to_the_websocket_limit_on_a_character_boundary() -> None:
    reason = protocol.close_reason("é" * 200 + "\nsecond line")
    assert len(reason.encode()) <= protocol.MAX_REASON_BYTES and reason.endswith("...") and "\n" not in reason


def test_a_client_refuses_a_server_of_another_protocol_version() -> None:
    hello = json.loads(protocol.hello(backbone="tiny-fd", server="s1"))
    assert protocol.check_hello(json.dumps(hello))["server"] == "s1"
    with pytest.raises(FrameError, match="protocol 2"):
        protocol.check_hello(json.dumps({**hello, "protocol": 2}))
    with pytest.raises(FrameError, match="did not greet"):
        protocol.check_hello('{"t":0,"type":"session"}')
