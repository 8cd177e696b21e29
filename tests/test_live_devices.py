"""Live device pieces without a sound server: a fake PortAudio drives the callbacks directly.

Covers what the loopback tests cannot pin down exactly: flush at the next callback with a fade,
time-to-silence within one block + 10 ms, exact played counts, the jitter hold, speaker edges,
the zero-allocation resampler, the callback ring, device lookup and the "what to install" errors.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import audio_io.devices as devices
import audio_io.live_input as live_input
import audio_io.live_output as live_output
from audio_io.aec import FRAME, erle_db, make_aec
from audio_io.blockrate import BlockResampler, block_frames
from audio_io.devices import DeviceInfo, find_device
from audio_io.format import SAMPLE_RATE, STEP_SAMPLES
from audio_io.ring import SampleRing
from duplex.cli import chat_main
from duplex.errors import DeviceError


class FakeStream:
    def __init__(self, *, callback: Any, finished_callback: Any, latency: Any, **kw: Any) -> None:
        self.callback, self.finished, self.kw, self.latency = callback, finished_callback, kw, 0.04

    def start(self) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


DEVICES = [
    {"index": 0, "name": "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "hostapi": 0, "max_input_channels": 2,
     "max_output_channels": 2, "default_samplerate": 48000.0},
    {"index": 1, "name": "USB Headset: Audio (hw:1,0)", "hostapi": 0, "max_input_channels": 1,
     "max_output_channels": 2, "default_samplerate": 44100.0},
    {"index": 2, "name": "pulse", "hostapi": 0, "max_input_channels": 32, "max_output_channels": 32,
     "default_samplerate": 44100.0},
]


@pytest.fixture
def fake_sd(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    sd = SimpleNamespace(OutputStream=FakeStream, InputStream=FakeStream, PortAudioError=RuntimeError,
                         query_devices=lambda: DEVICES, query_hostapis=lambda: [{"name": "ALSA"}],
                         default=SimpleNamespace(device=[2, 2]))
    for module in (devices, live_output, live_input):
        monkeypatch.setattr(module, "sounddevice", lambda: sd)
    return sd


def status(**flags: bool) -> SimpleNamespace:
    return SimpleNamespace(output_underflow=flags.get("underflow", False), input_overflow=flags.get("overflow", False))


def speaker(rate: int = 48_000, jitter_s: float = 0.0) -> tuple[live_output.LiveOutput, list[float]]:
    clock = [0.0]
    out = live_output.LiveOutput(DeviceInfo(0, "fake", "ALSA", 0, 2, rate), rate=rate, block_ms=20,
                                 jitter_s=jitter_s, now=lambda: clock[0])
    return out, clock


def play(out: live_output.LiveOutput, clock: list[float], blocks: int) -> np.ndarray:
    got = []
    for _ in range(blocks):
        buf = np.zeros((out.block, 2), dtype=np.float32)
        out._stream.callback(buf, out.block, None, status())
        clock[0] += out.block_s
        got.append(buf[:, 0].copy())
    return np.concatenate(got)


def test_device_lookup_by_index_substring_and_default(fake_sd: SimpleNamespace) -> None:
    assert find_device("", "input").name == "pulse"
    assert find_device("1", "output").index == 1
    assert find_device("headset", "input").index == 1
    assert find_device("PULSE", "output").index == 2
    with pytest.raises(DeviceError, match="ambiguous"):
        find_device("hw:", "output")
    with pytest.raises(DeviceError, match="no input device name contains it"):
        find_device("bluetooth", "input")
    with pytest.raises(DeviceError, match="no output device with that index"):
        find_device("7", "output")


def test_missing_portaudio_says_what_to_install_and_exits_2(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    def no_portaudio() -> None:
        raise DeviceError(devices.INSTALL_PORTAUDIO)

    monkeypatch.setattr(devices, "sounddevice", no_portaudio)
    assert chat_main(["--list-devices"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "apt-get install libportaudio2" in err


def test_unknown_device_is_one_line_and_exit_2(fake_sd: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert chat_main(["--input-device", "nonexistent", "--no-tui"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'nonexistent'" in err


def test_flush_silences_the_next_callback_within_one_block_plus_10_ms(fake_sd: SimpleNamespace) -> None:
    out, clock = speaker()
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)).astype(np.float32)
    out.queue.push(tone)
    play(out, clock, 5)
    before = out.queue.played
    dropped = out.queue.flush()
    after = play(out, clock, 3)
    assert dropped > 0 and out.queue.queued == 0
    assert out.queue.played - before == live_output.SAMPLE_RATE * 5 // 1000  # only the 5 ms fade was played
    loud = np.flatnonzero(np.abs(after) > 1e-4)
    assert loud.size and loud[-1] / out.rate <= 0.010  # silent after the fade (+ the filter's 1 ms)
    assert np.abs(np.diff(after[: loud[-1] + 1])).max() < 0.05  # no click: the fade is smooth
    assert len(out.time_to_silence()) == 1 and out.time_to_silence()[0] <= out.block_s + 0.010
    edges = out.queue.take_marks()
    assert [a for _, a in edges] == [True, False]


def test_speaker_plays_silence_when_empty_and_counts_exactly(fake_sd: SimpleNamespace) -> None:
    out, clock = speaker(rate=44_100)
    assert not play(out, clock, 3).any()  # nothing queued: silence, never garbage
    out.queue.push(np.full(1000, 0.25, dtype=np.float32))
    played = play(out, clock, 4)
    assert out.queue.played == 1000 and out.queue.queued == 0
    assert abs(played.sum() / out.rate - 1000 * 0.25 / SAMPLE_RATE) < 1e-3  # the same energy at 44.1 kHz
    assert out.reference.written == 7 * out.n16  # the echo reference saw every block, silence included


def test_jitter_buffer_holds_a_turn_start_then_plays_continuously(fake_sd: SimpleNamespace) -> None:
    out, clock = speaker(jitter_s=0.06)
    out.queue.push(np.full(STEP_SAMPLES, 0.1, dtype=np.float32))
    first = play(out, clock, 4)
    assert not first[: 3 * out.block].any()  # held for 60 ms: the callbacks at 0, 20 and 40 ms are silent
    assert first[3 * out.block + 100 :].all()
    started = out.queue.take_marks()
    assert started[0] == (pytest.approx(0.06), True)
    assert out.underruns == 0


def test_a_turn_cut_while_still_held_back_is_never_heard(fake_sd: SimpleNamespace) -> None:
    out, clock = speaker(jitter_s=0.06)
    out.queue.push(np.full(STEP_SAMPLES, 0.1, dtype=np.float32))
    play(out, clock, 1)  # 20 ms into the 60 ms hold
    out.queue.flush()  # the user cut in before anything played
    after = play(out, clock, 6)
    assert not after.any() and out.queue.queued == 0
    assert out.queue.take_marks() == [] and out.audible_since is None  # no speaker edges, no barge-in guard


def test_audio_that_returns_mid_turn_plays_at_once_and_counts_an_underrun(fake_sd: SimpleNamespace) -> None:
    out, clock = speaker(jitter_s=0.06)
    out.queue.push(np.full(STEP_SAMPLES, 0.1, dtype=np.float32))
    play(out, clock, 12)  # 60 ms hold + 160 ms of audio, then the speaker runs dry
    out.queue.push(np.full(STEP_SAMPLES, 0.1, dtype=np.float32))  # the next step arrives 20 ms late
    late = play(out, clock, 2)
    assert late[100:].all()  # no second 60 ms hold in the middle of a turn
    assert out.underruns == 1


def test_a_held_reply_is_silent_at_the_next_callback_and_goes_on_at_once_when_resumed(fake_sd: SimpleNamespace) -> None:
    out, clock = speaker(jitter_s=0.16)
    out.queue.push(np.full(3 * STEP_SAMPLES, 0.1, dtype=np.float32))
    play(out, clock, 10)  # 160 ms held back, then 40 ms played
    out.queue.take_marks()
    queued = out.queue.queued
    out.queue.pause()  # the model holds its reply: the user is talking over it
    held = play(out, clock, 20)
    loud = np.flatnonzero(np.abs(held) > 1e-4)
    assert loud[-1] / out.rate <= 0.010  # silent after the 5 ms fade (+ the filter's 1 ms), not a block later
    assert out.queue.queued == queued - live_output.SAMPLE_RATE * 5 // 1000  # the rest is kept
    out.queue.resume()  # it was only "mm-hmm"
    back = play(out, clock, 2)
    assert back[: out.block // 2].any() and back[out.block // 2:].all()  # at once: no second jitter hold
    assert out.underruns == 0  # a hold is not the speaker running dry
    assert [a for _, a in out.queue.take_marks()] == [False, True]


def test_block_resampler_is_exact_in_blocks_and_allocates_nothing() -> None:
    for rate in (48_000, 44_100, 22_050, 8_000):
        n_in, n_out = block_frames(SAMPLE_RATE, rate, 20)
        r = BlockResampler(SAMPLE_RATE, rate, n_in)
        x = np.sin(2 * np.pi * 500 * np.arange(n_in * 20) / SAMPLE_RATE).astype(np.float32)
        out = np.zeros(n_out, dtype=np.float32)
        ys = []
        for i in range(0, x.size, n_in):
            r.process(x[i : i + n_in], out)
            ys.append(out.copy())
        y = np.concatenate(ys)[n_out:]
        t = (np.arange(y.size) + n_out) / rate - r.delay_in / SAMPLE_RATE
        assert np.abs(y - np.sin(2 * np.pi * 500 * t)).max() < 1e-3, rate
    tracemalloc.start()
    block = x[:n_in].copy()
    r.process(block, out)
    snapshot = tracemalloc.take_snapshot()
    for _ in range(200):
        r.process(block, out)
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(snapshot, "filename") if s.size_diff > 0)
    tracemalloc.stop()
    assert grown < 4096  # no per-call arrays (scalars and tracemalloc's own book-keeping only)


def test_ring_keeps_positions_and_counts_what_a_slow_reader_lost() -> None:
    ring = SampleRing(8)
    ring.write(np.arange(5, dtype=np.float32))
    assert ring.read_new().tolist() == [0, 1, 2, 3, 4]
    ring.write(np.arange(5, 15, dtype=np.float32))  # 10 more into 8 slots: 2 lost
    assert ring.read_new().tolist() == list(range(7, 15)) and ring.lost == 2
    assert ring.copy_range(12, 17).tolist() == [12, 13, 14, 0, 0]  # the future reads as silence


async def test_microphone_chunks_are_160_ms_at_16k_and_echo_is_cancelled(fake_sd: SimpleNamespace) -> None:
    out, clock = speaker()
    mic = live_input.LiveInput(DeviceInfo(1, "fake mic", "ALSA", 1, 0, 48_000), rate=48_000, block_ms=20,
                               output=out, aec=make_aec("webrtc"))
    start = asyncio.create_task(mic.start(timeout=2))
    await asyncio.sleep(0)
    mic._stream.callback(np.zeros((mic.block, 1), np.float32), mic.block, None, status())
    await start
    rng = np.random.default_rng(3)
    far = np.repeat(rng.standard_normal(SAMPLE_RATE * 4).astype(np.float32) * 0.1, 1)
    out.queue.push(far)
    history = np.zeros(0, dtype=np.float32)
    chunks = []
    for _ in range(200):  # 4 s: the speaker plays, its echo (-10 dB, 3 blocks late) reaches the mic
        play(out, clock, 1)
        history = np.concatenate([history, out._out])
        echo = np.zeros(mic.block, np.float32)
        lag = 3 * out.block
        if history.size >= lag + mic.block:
            echo = history[-lag - mic.block : -lag] * 10 ** (-10 / 20)
        mic._stream.callback(echo[:, None].copy(), mic.block, None, status())
        await asyncio.sleep(0)
        while not mic._queue.empty():
            chunks.append(await mic.read())
    assert chunks and all(c.shape == (STEP_SAMPLES,) and c.dtype == np.float32 for c in chunks)
    assert len(chunks) in (24, 25)  # 4 s minus the resampler's start-up
    tail_raw = np.concatenate([history[-SAMPLE_RATE * 3 :: 3]]) * 10 ** (-10 / 20)
    assert erle_db(tail_raw, np.concatenate(chunks[-10:])) > 15
    mic.close()
    assert await mic.read() is None


@pytest.mark.parametrize("kind", ["webrtc", "speex"])
def test_each_canceller_removes_a_simple_echo(kind: str) -> None:
    rng = np.random.default_rng(0)
    far = (rng.standard_normal(SAMPLE_RATE * 6) * 0.1).astype(np.float32)
    echo = np.concatenate([np.zeros(800, np.float32), far[:-800]]) * 0.3
    aec, out = make_aec(kind), np.zeros(FRAME, np.float32)
    cleaned = np.zeros_like(far)
    for i in range(0, far.size, FRAME):
        aec.process(echo[i : i + FRAME], far[i : i + FRAME], out)
        cleaned[i : i + FRAME] = out
    assert erle_db(echo[-SAMPLE_RATE * 2 :], cleaned[-SAMPLE_RATE * 2 :]) > 15


def test_tui_folds_events_into_latencies_and_renders(fake_sd: SimpleNamespace) -> None:
    from rich.console import Console

    from duplex.events import from_dict
    from duplex.stats import SessionStats
    from duplex.tui import LiveView, SessionMetrics, summary_lines

    out, _ = speaker()
    mic = SimpleNamespace(level=0.1, speech=False, speech_started=-1.0, speech_ended=-1.0, overflows=0,
                          dropped_chunks=0, lost=0, latency_s=0.04, echo_figures=dict)
    stats = SessionStats("s", True, "SPEAKING", True, 100, 16.0, 1.0, 1.0, 0, 10.0, 4)
    session = SimpleNamespace(stats=lambda: stats)
    m = SessionMetrics(mic=mic, speaker=out, session=session, aec="webrtc")  # type: ignore[arg-type]
    mic.speech_ended = 2.0
    m.add(from_dict({"t": 2.9, "type": "state", "from": "LISTENING", "to": "SPEAKING"}))
    m.add(from_dict({"t": 3.0, "type": "speaker", "what": "started"}))
    mic.speech_started = 4.0
    m.add(from_dict({"t": 4.3, "type": "control", "token": "BREAK"}))
    m.add(from_dict({"t": 4.35, "type": "speaker", "what": "stopped"}))
    assert m.turn_latency_s == [pytest.approx(1.0)] and m.stop_latency_s == [pytest.approx(0.35)]
    console = Console(record=True, width=100)
    console.print(LiveView(m, lambda command: None).render())
    screen = console.export_text()
    assert "SPEAKING" in screen and "barge-in" in screen and "stop latency 350 ms" in screen
    assert any("barge-ins" in line and "1" in line for line in summary_lines(m))


def test_tui_takes_a_held_reply_going_on_for_the_same_turn_and_a_hold_before_a_cut_for_its_stop(
        fake_sd: SimpleNamespace) -> None:
    from duplex.events import from_dict
    from duplex.stats import SessionStats
    from duplex.tui import SessionMetrics

    out, _ = speaker()
    mic = SimpleNamespace(level=0.1, speech=False, speech_started=-1.0, speech_ended=-1.0, overflows=0,
                          dropped_chunks=0, lost=0, latency_s=0.04, echo_figures=dict)
    stats = SessionStats("s", True, "SPEAKING", True, 100, 16.0, 1.0, 1.0, 0, 10.0, 4)
    m = SessionMetrics(mic=mic, speaker=out, session=SimpleNamespace(stats=lambda: stats))  # type: ignore[arg-type]
    mic.speech_ended = 2.0
    lines = [
        {"t": 2.4, "type": "state", "from": "LISTENING", "to": "SPEAKING"},
        {"t": 2.5, "type": "speaker", "what": "started"},
        {"t": 4.0, "type": "hold", "what": "held"},  # "mm-hmm" over the reply ...
        {"t": 4.01, "type": "speaker", "what": "stopped"},
    ]
    for line in lines:
        m.add(from_dict(line))
    mic.speech_ended = 4.3
    for line in [{"t": 4.64, "type": "hold", "what": "released"},  # ... and the reply goes on
                 {"t": 4.65, "type": "speaker", "what": "started"}]:
        m.add(from_dict(line))
    assert m.turns == 1 and m.turn_latency_s == [pytest.approx(0.5)]  # not a second turn 0.35 s after "mm-hmm"
    mic.speech_started = 6.0
    for line in [{"t": 6.2, "type": "hold", "what": "held"},  # "stop, ..." held, then judged a barge-in
                 {"t": 6.21, "type": "speaker", "what": "stopped"},
                 {"t": 6.56, "type": "control", "token": "BREAK"},
                 {"t": 6.56, "type": "state", "from": "SPEAKING", "to": "LISTENING"},
                 {"t": 6.56, "type": "hold", "what": "released"},
                 {"t": 7.5, "type": "state", "from": "LISTENING", "to": "SPEAKING"},
                 {"t": 7.6, "type": "speaker", "what": "started"}]:
        m.add(from_dict(line))
    assert m.barge_ins == 1 and m.stop_latency_s == [pytest.approx(0.21)]  # silent from the hold, not the BREAK
    assert m.turns == 2  # the answer to the interruption is a new turn
    timeline = "\n".join(m.timeline)
    assert "model holds: hears you out" in timeline and timeline.count("model goes on") == 1
