"""`--input -`, `/dev/stdin` and FIFOs: a WAV stream read in bounded blocks, a missing writer reported."""

from __future__ import annotations

import asyncio
import io
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_io.stream import READ_BYTES, StreamInput
from audio_io.wav import WavInput
from duplex.errors import AudioFileError
from tests.speech import write_wav
from tests.test_bad_input import assert_one_line_error

POLICY = ("--set", "backbone=policy", "--quiet")


def wav_bytes(audio: np.ndarray, rate: int, subtype: str, *, streaming: bool = False) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, rate, subtype=subtype, format="WAV")
    data = bytearray(buf.getvalue())
    if streaming:  # what a writer to a pipe puts there: it cannot know the size
        at = data.index(b"data")
        data[4:8] = data[at + 4:at + 8] = struct.pack("<I", 0xFFFFFFFF)
    return bytes(data)


def feed_fifo(path: Path, data: bytes, *, delay_s: float = 0.0) -> threading.Thread:
    def write() -> None:
        time.sleep(delay_s)
        with open(path, "wb") as f:
            for i in range(0, len(data), 5000):  # in small writes, as a live producer would
                f.write(data[i:i + 5000])

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def read_all(device: StreamInput | WavInput) -> np.ndarray:
    chunks = []
    while (chunk := device.read_now()) is not None:
        chunks.append(chunk)
    device.close()
    return np.concatenate(chunks)


@pytest.mark.parametrize("rate, channels, subtype", [(16000, 1, "PCM_16"), (44100, 2, "PCM_24"),
                                                     (48000, 1, "FLOAT"), (8000, 1, "PCM_U8"),
                                                     (22050, 3, "PCM_32"), (16000, 1, "DOUBLE")])
def test_a_stream_reads_like_the_file(tmp_path: Path, rate: int, channels: int, subtype: str) -> None:
    rng = np.random.default_rng(1)
    audio = (0.3 * rng.standard_normal((rate * 3 + 17, channels))).clip(-1, 1).astype(np.float32)
    data = wav_bytes(audio, rate, subtype, streaming=rate == 44100)
    (tmp_path / "f.wav").write_bytes(data if rate != 44100 else wav_bytes(audio, rate, subtype))
    os.mkfifo(tmp_path / "fifo")
    writer = feed_fifo(tmp_path / "fifo", data)
    streamed = read_all(StreamInput(tmp_path / "fifo", timeout_s=5))
    writer.join()
    filed = read_all(WavInput(tmp_path / "f.wav"))
    assert streamed.shape == filed.shape
    np.testing.assert_allclose(streamed, filed, atol=2e-4)


def test_the_buffer_is_bounded(tmp_path: Path) -> None:
    audio = np.zeros(16000 * 60, np.float32)  # 60 s: 1.9 MB of PCM
    os.mkfifo(tmp_path / "fifo")
    writer = feed_fifo(tmp_path / "fifo", wav_bytes(audio, 16000, "PCM_16", streaming=True))
    device = StreamInput(tmp_path / "fifo", timeout_s=5)
    raw, pending, n = 0, 0, 0
    while device.read_now() is not None:
        raw, pending = max(raw, len(device._buf)), max(pending, device._pending.nbytes)
        n += 1
    writer.join()
    assert n == 375  # 60 s of 160 ms steps
    assert raw <= READ_BYTES  # one read's bytes at most ...
    assert pending <= READ_BYTES // 2 * 4 + 2560 * 4  # ... and that block as float samples


def test_a_fifo_without_a_writer_is_reported_not_waited_for(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    started = time.monotonic()
    with pytest.raises(AudioFileError, match="no data for 0.5 s"):
        StreamInput(tmp_path / "fifo", timeout_s=0.5)
    assert time.monotonic() - started < 2.0


def test_a_writer_that_comes_late_is_waited_for(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    feed_fifo(tmp_path / "fifo", wav_bytes(np.zeros(8000, np.float32), 16000, "PCM_16"), delay_s=0.3)
    assert read_all(StreamInput(tmp_path / "fifo", timeout_s=5)).size == 2560 * 4


@pytest.mark.parametrize("data, needle", [(b"", "ended inside the WAV header"), (b"\0" * 100, "not a WAV stream"),
                                          (None, "sample rate 1 Hz")])
def test_bad_streams(tmp_path: Path, data: bytes | None, needle: str) -> None:
    if data is None:
        data = bytearray(wav_bytes(np.zeros(100, np.float32), 16000, "PCM_16"))
        data[24:28] = struct.pack("<I", 1)
    os.mkfifo(tmp_path / "fifo")
    feed_fifo(tmp_path / "fifo", bytes(data))
    with pytest.raises(AudioFileError, match=needle):
        StreamInput(tmp_path / "fifo", timeout_s=5)


def chat_stdin(stdin: bytes, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "duplex", *map(str, args)], input=stdin, capture_output=True,
                          timeout=120)


def test_duplex_chat_reads_a_pipe(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    user = write_wav(tmp_path / "q.wav", (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32))
    for name, source in (("file.wav", user), ("dash.wav", "-"), ("stdin.wav", "/dev/stdin")):
        proc = chat_stdin(user.read_bytes(), "--input", source, "--output", tmp_path / name, *POLICY)
        assert proc.returncode == 0, proc.stderr.decode()
    reference = (tmp_path / "file.wav").read_bytes()
    assert (tmp_path / "dash.wav").read_bytes() == reference
    assert (tmp_path / "stdin.wav").read_bytes() == reference


def test_duplex_chat_on_a_fifo_nobody_writes(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "duplex", "--input", str(tmp_path / "fifo"), "--output",
                           str(tmp_path / "o.wav"), *POLICY], capture_output=True, text=True, timeout=60)
    assert_one_line_error(proc, "fifo", "no data for 10 s")
    assert time.monotonic() - started < 30
    assert not (tmp_path / "o.wav").exists()


async def test_a_session_waiting_for_a_fifo_writer_never_holds_the_event_loop(tmp_path: Path) -> None:
    """The header is waited for on a worker thread: other sessions, the UI and remote control run on
    (it used to be read on the loop, holding it up to 10 s for a FIFO with no writer)."""
    from duplex.config import Config
    from duplex.session import DuplexSession
    from tests.fakes import max_loop_stall

    os.mkfifo(tmp_path / "fifo")
    writer = feed_fifo(tmp_path / "fifo", wav_bytes(np.zeros(8000, np.float32), 16000, "PCM_16"), delay_s=2.0)
    stop = asyncio.Event()
    ticker = asyncio.create_task(max_loop_stall(stop))
    await asyncio.sleep(0.05)  # the ticker is ticking
    started = time.monotonic()
    async with DuplexSession(config=Config(backbone="policy"), input=tmp_path / "fifo") as session:
        waited = time.monotonic() - started
        stats = await session.wait()
    stop.set()
    gap = await ticker
    writer.join()
    assert waited >= 1.9  # the session did wait for the writer ...
    assert gap < 0.5, f"the event loop was held for {gap * 1000:.0f} ms"  # ... without holding the loop
    assert stats.steps >= 3  # and then read the 0.5 s it wrote


async def test_a_cancelled_wait_for_a_writer_closes_the_stream_it_opens(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from audio_io.stream import open_input_async

    os.mkfifo(tmp_path / "fifo")
    opened: list[StreamInput] = []
    real_init = StreamInput.__init__

    def spy(self: StreamInput, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        opened.append(self)

    monkeypatch.setattr(StreamInput, "__init__", spy)
    waiting = asyncio.create_task(open_input_async(tmp_path / "fifo", timeout_s=5))
    await asyncio.sleep(0.2)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    feed_fifo(tmp_path / "fifo", wav_bytes(np.zeros(800, np.float32), 16000, "PCM_16")).join()
    for _ in range(250):
        if opened and opened[0]._fd < 0:
            break
        await asyncio.sleep(0.02)
    assert opened and opened[0]._fd == -1  # nobody took it: closed, not leaked
