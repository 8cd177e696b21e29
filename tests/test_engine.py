"""The engine on a scripted backbone: routing, timing, truncation, draining, commands, overruns."""

from __future__ import annotations

import numpy as np
import pytest

from audio_io.format import STEP_SAMPLES, UNIT_SAMPLES
from audio_io.speaker import FADE_SAMPLES
from audio_io.wav import MemoryOutput
from duplex.backbones.base import Model
from duplex.clock import VirtualClock
from duplex.commands import Mute, Stop, StopSpeaking, Unmute
from duplex.config import EngineConfig
from duplex.engine import Engine
from duplex.events import EventBus, EventType
from duplex.tokens import BREAK, EOT, SHIFT, THINK, Kind, Token, audio
from tests.fakes import ListMicrophone, ScriptedBackbone, ToneVocoder, scripted_model

A = audio


def make(script, *, chunks: int = 12, value: float = 0.0, config: EngineConfig | None = None, **kw):
    model = scripted_model(script, **kw)
    out = MemoryOutput()
    bus = EventBus()
    events = bus.subscribe()
    engine = Engine(model=model, input=ListMicrophone(chunks, value), output=out, bus=bus, clock=VirtualClock(),
                    config=config or EngineConfig(max_tail_s=2.0))
    return engine, model.backbone, out, events


def kinds(events) -> list[tuple]:
    out = []
    for e in events.pending():
        if e.type is EventType.STATE:
            out.append((round(e.t, 2), "state", e.data["to"]))
        elif e.type is EventType.CONTROL:
            out.append((round(e.t, 2), "control", e.data["token"]))
        elif e.type is EventType.SPEAKER:
            out.append((round(e.t, 2), "speaker", e.data["what"]))
    return out


async def test_reply_plays_from_the_end_of_the_shift_step() -> None:
    engine, backbone, out, events = make([(THINK,) * 4, (SHIFT, A(0), A(1), A(2)), (A(3), A(4), EOT, THINK)])
    await engine.run()
    played = out.audio()
    start = 2 * STEP_SAMPLES + UNIT_SAMPLES  # SHIFT came in step 1, known at 0.32 s; then the 40 ms lead-in
    assert np.all(played[:start] == 0)
    assert np.allclose(played[start : start + UNIT_SAMPLES], 0.01)
    assert np.allclose(played[start + 4 * UNIT_SAMPLES : start + 5 * UNIT_SAMPLES], 0.05)
    assert np.all(played[start + 5 * UNIT_SAMPLES :] == 0)
    assert kinds(events) == [
        (0.0, "state", "LISTENING"), (0.32, "control", "SHIFT"), (0.32, "state", "SPEAKING"),
        (0.36, "speaker", "started"), (0.48, "control", "EOT"), (0.48, "state", "DRAINING"),
        (0.56, "speaker", "stopped"), (0.64, "state", "LISTENING"), (1.92, "state", "IDLE"),
    ]


async def test_audio_before_shift_and_after_eot_is_never_played() -> None:
    engine, _, out, _ = make([(A(5), A(6), THINK, THINK), (SHIFT, A(0), EOT, A(9)), (A(9),) * 4])
    await engine.run()
    played = out.audio()
    assert {round(float(x), 3) for x in np.unique(played)} == {0.0, 0.01}


async def test_break_flushes_in_the_same_step_and_reports_units_heard() -> None:
    script = [(SHIFT, A(0), A(1), A(2)), (A(3), A(4), A(5), A(6)), (A(7), A(8), A(9), A(10)),
              (BREAK, THINK, THINK, THINK)]
    engine, backbone, out, events = make(script)
    await engine.run()
    played = out.audio()
    # Steps 1-3 played 3 + 4 + 4 units; step 3's BREAK flushes what step 2 queued beyond that.
    heard = backbone.heard_calls
    assert heard == [11]
    after = played[4 * STEP_SAMPLES :]
    assert np.count_nonzero(after) <= 80  # only the 5 ms fade-out
    assert np.all(np.abs(after[:80]) <= 0.11)
    assert ("control", "BREAK") in [(k, v) for _, k, v in kinds(events)]


async def test_break_mid_turn_counts_only_what_left_the_speaker() -> None:
    script = [(SHIFT, A(0), A(1), A(2)), (A(3), A(4), A(5), A(6)), (BREAK, THINK, THINK, THINK)]
    engine, backbone, _, _ = make(script)
    await engine.run()
    # The speaker plays a step's block before the step computes: at step 2's BREAK it had played the
    # lead-in + 3 units (step 1) and step 1's 4 units (step 2): 7 units heard, nothing left to drop.
    assert backbone.heard_calls == [7]


class BufferedOutput(MemoryOutput):
    """A clocked speaker one block behind the steps, as a live one is (its jitter buffer)."""

    started = False

    def advance(self) -> np.ndarray:
        self.started = self.started or self.queue.queued > STEP_SAMPLES  # waits for a second block first
        if not self.started:
            self._blocks.append(np.zeros(STEP_SAMPLES, np.float32))
            return self._blocks[-1]
        return super().advance()


def runs(audio: np.ndarray) -> list[tuple[float, int]]:
    """(value, samples) for each run of equal samples (a tone unit u is 0.01 * (u + 1))."""
    edges = np.flatnonzero(np.diff(audio)) + 1
    return [(round(float(v), 4), int(n)) for v, n in zip(audio[np.r_[0, edges]], np.diff(np.r_[0, edges, audio.size]),
                                                          strict=True)]


async def held_run(script):  # type: ignore[no-untyped-def]
    model = scripted_model(script)
    out = BufferedOutput()
    bus = EventBus()
    events = bus.subscribe()
    engine = Engine(model=model, input=ListMicrophone(len(script)), output=out, bus=bus, clock=VirtualClock(),
                    config=EngineConfig(max_tail_s=2.0))
    paused = []
    for _ in script:
        await engine.step(np.zeros(STEP_SAMPLES, np.float32))
        paused.append(out.queue.paused)
    await engine.worker.drain()
    holds = [(round(e.t, 2), e.data["what"]) for e in events.pending() if e.type is EventType.HOLD]
    return model.backbone, out, paused, holds


async def test_a_step_of_the_turn_with_no_speech_pauses_the_speaker_and_the_reply_goes_on_after_it() -> None:
    script = [(SHIFT, A(0), A(1), A(2)), (A(3), A(4), A(5), A(6)), (A(7), A(8), A(9), A(10)), (THINK,) * 4,
              (THINK,) * 4, (A(11), A(12), A(13), A(14)), (A(15), A(16), THINK, THINK), (A(17), EOT, THINK, THINK),
              (THINK,) * 4, (THINK,) * 4, (THINK,) * 4]
    _, out, paused, holds = await held_run(script)
    # the held beats pause; speech, even with THINKs beside it, plays on; so does the turn's end
    assert paused == [False, False, False, True, True, False, False, False, False, False, False]
    # once each way, at the end of the step that decided it (a thin client pauses its own speaker on it)
    assert holds == [(0.64, "held"), (0.96, "released")]
    played = runs(out.audio())
    first_silence = next(i for i, (v, n) in enumerate(played) if i and v == 0.0 and n > 640)
    silent_at = sum(n for _, n in played[:first_silence])
    # the hold's block (step 4) plays 5 ms of fade-out, not the 160 ms queued before the hold
    assert 4 * STEP_SAMPLES < silent_at <= 4 * STEP_SAMPLES + FADE_SAMPLES
    assert [v for v, n in played if n == UNIT_SAMPLES] == [round(0.01 * (u + 1), 4) for u in range(18) if u != 7]
    # unit 7: 5 ms of it faded out at the hold; the resume goes on from there, fading in: nothing twice
    resumed = played[first_silence + 1:]
    assert all(0 < v < 0.08 for v, _ in resumed[:FADE_SAMPLES - 1])  # the fade-in (its last gain is 1) ...
    assert resumed[FADE_SAMPLES - 1] == (0.08, UNIT_SAMPLES - 2 * FADE_SAMPLES + 1)  # ... and the rest of unit 7


async def test_a_cut_after_a_held_beat_counts_only_what_was_played() -> None:
    script = [(SHIFT, A(0), A(1), A(2)), (A(3), A(4), A(5), A(6)), (A(7), A(8), A(9), A(10)), (THINK,) * 4,
              (BREAK, THINK, THINK, THINK)]
    backbone, out, _, holds = await held_run(script)
    assert holds == [(0.64, "held"), (0.8, "released")]  # the BREAK's step ends the hold too
    # at the hold (step 3) the speaker had played the lead-in and units 0-6 (steps 0 and 1), and then
    # played 5 ms of unit 7: seven units heard, of the eleven sent (not the eleven a block later)
    assert backbone.heard_calls == [7]
    assert not out.queue.queued and not out.queue.paused


async def test_backbone_must_return_four_tokens() -> None:
    engine, *_ = make([(THINK, THINK, THINK)])
    with pytest.raises(RuntimeError, match="returned 3 tokens, not 4"):
        await engine.run()


async def test_mute_feeds_silence_and_stop_speaking_cuts_the_turn() -> None:
    script = [(THINK,) * 4, (SHIFT, A(0), A(1), A(2)), (A(3),) * 4, (A(4),) * 4, (A(5),) * 4]
    engine, backbone, out, events = make(script, chunks=8, value=0.5)
    engine.submit(Mute())
    await engine.step(np.full(STEP_SAMPLES, 0.5, dtype=np.float32))
    assert np.all(backbone.chunks[0] == 0)
    engine.submit(Unmute())
    await engine.step(np.full(STEP_SAMPLES, 0.5, dtype=np.float32))
    assert np.all(backbone.chunks[1] == 0.5)
    await engine.step(np.full(STEP_SAMPLES, 0.5, dtype=np.float32))
    engine.submit(StopSpeaking())
    await engine.step(np.full(STEP_SAMPLES, 0.5, dtype=np.float32))
    assert engine.phase.name == "LISTENING"
    assert len(backbone.heard_calls) == 1
    commands = [e.data["command"] for e in events.pending() if e.type is EventType.COMMAND]
    assert commands == ["mute", "unmute", "stop_speaking"]


async def test_stop_command_ends_the_session_in_idle() -> None:
    engine, *_ = make([(SHIFT, A(0), A(1), A(2))], chunks=100)
    engine.submit(Stop())
    await engine.run()
    assert engine.phase.name == "IDLE" and engine.step_index == 0


async def test_slow_steps_are_counted_and_published_as_overruns() -> None:
    engine, _, _, events = make([], chunks=3, delay_s=0.03, config=EngineConfig(overrun_ms=10.0))
    await engine.run()
    overruns = [e for e in events.pending() if e.type is EventType.OVERRUN]
    assert [e.data["step"] for e in overruns] == [0, 1, 2]
    assert all(e.data["ms"] >= 10 for e in overruns)
    assert engine.stats.overruns == 3


async def test_the_event_loop_stays_free_while_the_backbone_computes() -> None:
    import asyncio

    engine, *_ = make([], chunks=5, delay_s=0.05)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    await engine.run()
    task.cancel()
    assert ticks >= 20  # 5 steps x 50 ms of compute, the loop kept ticking


async def test_a_24k_vocoder_is_resampled_to_the_session_rate() -> None:
    model = Model(backbone=ScriptedBackbone([(SHIFT, A(49), A(49), A(49)), (A(49),) * 4, (EOT,) + (THINK,) * 3]),
                  vocoder=ToneVocoder(24_000), name="24k")
    out = MemoryOutput()
    engine = Engine(model=model, input=ListMicrophone(6), output=out, clock=VirtualClock())
    await engine.run()
    played = out.audio()
    loud = np.flatnonzero(np.abs(played) > 0.25)
    assert loud.size == pytest.approx(7 * UNIT_SAMPLES, abs=60)
    assert np.allclose(played[loud[20:-20]], 0.5, atol=0.01)


async def test_text_tokens_reach_the_transcript() -> None:
    hello = Token(Kind.TEXT, text="hello")
    engine, _, _, events = make([(hello, THINK, THINK, THINK)], chunks=2)
    await engine.run()
    assert engine.transcript == ["hello"]
    assert [e.data["text"] for e in events.pending() if e.type is EventType.TEXT] == ["hello"]


async def test_an_engine_runs_once() -> None:
    engine, *_ = make([], chunks=1)
    await engine.run()
    with pytest.raises(RuntimeError, match="runs once"):
        await engine.run()
