"""A held reply on a thin client: the server's `hold` events reach the client's speaker (paused at
once, what it queued kept and played when the reply goes on, nothing twice, no silence queued),
in order with the BREAK's flush, over a real `duplex-serve`."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from audio_io.format import STEP_SAMPLES
from audio_io.speaker import FADE_SAMPLES, SpeakerQueue
from duplex.serve.client import Link, frames_of
from duplex.serve.live_client import LiveSink
from duplex.serve.protocol import samples_to_frame
from duplex.serve.remote import FileFrames, RemoteSession
from tests.serve_fixtures import ROOT, ServerProcess, read_jsonl

CONVERSATION = ROOT / "examples/audio/conversation.wav"


def pcm(x: np.ndarray) -> np.ndarray:
    """What the wire carries of `x` (PCM16, as the server writes it)."""
    return np.frombuffer(samples_to_frame(x), dtype="<i2").astype(np.float32) / 32768.0


def test_a_held_reply_pauses_the_local_speaker_and_goes_on_from_its_first_unheard_sample() -> None:
    queue = SpeakerQueue()
    sink = LiveSink(SimpleNamespace(queue=queue, close=lambda: None))
    fall = np.linspace(1, 0, FADE_SAMPLES + 1, dtype=np.float32)[1:]
    rise = np.linspace(0, 1, FADE_SAMPLES + 1, dtype=np.float32)[1:]
    # the reply as the wire carries it: every sample its own value
    wire = pcm(np.linspace(0.1, 0.6, 6 * STEP_SAMPLES, dtype=np.float32))
    blocks = wire.reshape(6, STEP_SAMPLES)
    sink.play(0, samples_to_frame(blocks[0]))
    sink.play(1, samples_to_frame(blocks[1]))
    assert np.array_equal(queue.pull(STEP_SAMPLES), blocks[0])  # block 1 is still queued here (a jitter buffer)
    sink.hold(True)
    # the server's held blocks: its 5 ms fade-out of block 2's head, then silence
    fade = pcm(blocks[2][:FADE_SAMPLES] * fall)
    sink.play(2, samples_to_frame(np.r_[fade, np.zeros(STEP_SAMPLES - FADE_SAMPLES, np.float32)]))
    for k in (3, 4):
        sink.play(k, samples_to_frame(np.zeros(STEP_SAMPLES, np.float32)))
    while_held = queue.pull(3 * STEP_SAMPLES)
    assert np.allclose(while_held[:FADE_SAMPLES], blocks[1][:FADE_SAMPLES] * fall)  # its own fade-out, at once
    assert not while_held[FADE_SAMPLES:].any()  # then silent: nothing the server sent while held plays
    kept = np.trim_zeros(fade, "b")  # (the fade's last gain is 0)
    assert queue.queued == STEP_SAMPLES - FADE_SAMPLES + kept.size  # block 1's rest and the server's fade: no silence
    sink.hold(False)
    # the server's resume: a fade-in from its first unheard sample
    rest = pcm(blocks[2][FADE_SAMPLES:] * np.r_[rise, np.ones(STEP_SAMPLES - 2 * FADE_SAMPLES, np.float32)])
    sink.play(5, samples_to_frame(rest))
    after = queue.pull(2 * STEP_SAMPLES)
    # block 1 from the first sample nobody heard, fading in; the server's fade-out; its resumed block:
    # in order, every sample once, nothing skipped but the two 5 ms fades that were heard
    expect = np.r_[blocks[1][FADE_SAMPLES:] * np.r_[rise, np.ones(STEP_SAMPLES - 2 * FADE_SAMPLES, np.float32)],
                   kept, rest]
    assert np.allclose(after[:expect.size], expect, atol=1e-6) and not after[expect.size:].any()
    assert not queue.queued and not queue.paused


class RecordingSink:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def play(self, step: int, frame: bytes) -> None:
        pass

    def flush(self) -> None:
        self.calls.append("flush")

    def hold(self, held: bool) -> None:
        self.calls.append("held" if held else "released")

    def close(self) -> None:
        pass


async def test_the_servers_holds_reach_the_thin_clients_speaker_in_order_with_its_flushes(tmp_path: Path) -> None:
    frames = frames_of(CONVERSATION)
    sink = RecordingSink()
    with ServerProcess(tmp_path, "--no-batched", "--config", str(ROOT / "examples/policy.yaml")) as server:
        link = Link(server.url, retry_for_s=5.0, report=lambda _line: None)
        async with RemoteSession(link=link, source=FileFrames(frames), sink=sink,
                                 events_path=tmp_path / "events.jsonl") as session:
            await session.wait()
    lines = read_jsonl(tmp_path / "events.jsonl")
    expected = []
    for line in lines:
        if line.get("type") == "hold":
            expected.append(line["what"])
        elif line.get("type") == "control" and line.get("token") == "BREAK":
            expected.append("flush")
    assert "held" in expected and "flush" in expected  # this conversation holds its reply, then is cut
    assert sink.calls == expected
    holds = [c for c in expected if c != "flush"]
    assert holds == ["held", "released"] * (len(holds) // 2)  # each hold ends
