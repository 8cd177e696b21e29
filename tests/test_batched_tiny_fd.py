"""BatchedTinyFd: a conversation served among others equals the same conversation run alone.

Batched steps run on the shipped checkpoint with a small context (refills every few steps); the
solo reference is `TinyFdBackbone` with the same weights and settings.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from audio_io.wav import load_mono16k  # noqa: E402
from duplex.backbones.base import Model  # noqa: E402
from duplex.backbones.framebank import FrameBankVocoder  # noqa: E402
from duplex.backbones.tiny_fd import vocab as V  # noqa: E402
from duplex.backbones.tiny_fd.batched import BatchedTinyFd, LaneClosed  # noqa: E402
from duplex.backbones.tiny_fd.runtime import TinyFdBackbone  # noqa: E402
from duplex.config import Config, load_config  # noqa: E402
from duplex.serve.host import HostFull, ModelHost  # noqa: E402
from tests.fakes import play_offline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / "examples" / "scenarios" / "clips"
CONTEXT = {"context_steps": 8, "window_steps": 3}  # refills every few steps
NAMES = ["weather", "train", "table", "stop", "actually", "hesitant", "mono1", "right"]
STEP = 2560


@pytest.fixture(scope="module")
def cfg() -> Config:
    """tiny-fd's own timing (`tiny_fd.cues: false`): the batched network's tokens, which the tests
    below compare with solo runs (the cue rules' own tests build their configs below)."""
    return load_config(overrides={"tiny_fd": {**CONTEXT, "cues": False}})


@pytest.fixture(scope="module")
def prototype(cfg: Config) -> Model:
    from duplex.backbones import load_model

    return load_model(cfg)


def solo_backbone(prototype: Model) -> TinyFdBackbone:
    p = prototype.backbone
    return TinyFdBackbone(p.net, p.replies, p.bank, context_steps=p.context_steps, window_steps=p.window_steps,
                          shift_threshold=p.thresholds[V.SHIFT], break_threshold=p.thresholds[V.BREAK],
                          rules=p.rule_settings)  # the lanes' own (the cue model's too, when it is on)


def conversation(k: int, questions: int = 2) -> np.ndarray:
    """Questions with pauses (the model answers), the next one often cutting into the reply."""
    rng = np.random.default_rng(k)
    parts = []
    for j in range(questions):
        parts += [np.zeros(int(rng.uniform(0.1, 1.0) * 16_000), np.float32),
                  load_mono16k(CLIPS / f"{NAMES[(k + j) % len(NAMES)]}.wav"),
                  np.zeros(int(rng.uniform(0.8, 2.0) * 16_000), np.float32)]
    audio = np.concatenate(parts)
    return audio[: audio.size // STEP * STEP]


def chunks(audio: np.ndarray) -> list[np.ndarray]:
    return [audio[i: i + STEP] for i in range(0, audio.size, STEP)]


def kinds(tokens: object) -> list[str]:
    return [t.kind.name + (str(t.unit) if t.unit >= 0 else "") for t in tokens]  # type: ignore[attr-defined]


def run_solo(prototype: Model, audio: np.ndarray) -> list[list[str]]:
    backbone = solo_backbone(prototype)
    return [kinds(backbone.step(c)) for c in chunks(audio)]


def test_the_slotted_decoder_equals_the_transformers_forward(prototype: Model) -> None:
    """Rows of different lengths at different positions, in non-adjacent slots: each row's logits are
    those of transformers' own forward with its own cache."""
    from transformers import DynamicCache

    from duplex.backbones.hf_cache import cache_keyword, returned_cache
    from duplex.backbones.slotted import SlottedDecoder

    llm = prototype.backbone.net.llm
    decoder = SlottedDecoder(llm, slots=5, positions=40)
    torch.manual_seed(0)
    seqs = [torch.randn(n, llm.config.hidden_size) * 0.5 for n in (9, 7, 14)]
    slots, split = [4, 0, 2], [4, 5, 6]
    with torch.inference_mode():
        expected = []
        for s, cut in zip(seqs, split, strict=True):
            kw = {cache_keyword(llm): DynamicCache(config=llm.config)}
            first = llm(inputs_embeds=s[None, :cut], use_cache=True, **kw)
            kw = {cache_keyword(llm): returned_cache(first)}
            expected.append(llm(inputs_embeds=s[None, cut:], use_cache=True, **kw).logits[0, -1])
        decoder.forward(slots, [s[:cut] for s, cut in zip(seqs, split, strict=True)], [0, 0, 0])
        got = decoder.logits(decoder.forward(slots, [s[cut:] for s, cut in zip(seqs, split, strict=True)], split))
    for row, want in enumerate(expected):
        torch.testing.assert_close(got[row], want, atol=1e-4, rtol=1e-4)


def test_sixteen_interleaved_lanes_each_equal_a_solo_run(prototype: Model) -> None:
    """Lanes join at different steps, one leaves early; refills, SHIFT, speech and BREAK all occur."""
    n, leaver, leave_at = 16, 5, 20
    inputs = [conversation(k) for k in range(n)]
    joins = [2 * k for k in range(n)]
    expected = [run_solo(prototype, a) for a in inputs]
    host = BatchedTinyFd(prototype, capacity=n)
    assert isinstance(host, ModelHost)
    lanes: dict[int, Model] = {}
    got: list[list[list[str]]] = [[] for _ in range(n)]
    try:
        with ThreadPoolExecutor(max_workers=n) as pool:  # each lane steps on a thread of its own, as a worker would
            for tick in range(max(j + len(chunks(a)) for j, a in zip(joins, inputs, strict=True))):
                if tick == joins[leaver] + leave_at:
                    host.close(lanes.pop(leaver))
                for k in range(n):
                    if tick == joins[k]:
                        lanes[k] = host.open()
                steps = {k: pool.submit(lanes[k].backbone.step, inputs[k][STEP * (tick - joins[k]):][:STEP])
                         for k in lanes if tick - joins[k] < len(chunks(inputs[k]))}
                for k, step in steps.items():
                    got[k].append(kinds(step.result()))
        usage = host.usage()
    finally:
        host.shutdown()
    assert got[leaver] == expected[leaver][:leave_at]
    for k in range(n):
        if k != leaver:
            assert got[k] == expected[k], f"lane {k}"
    def kinds_of(lane: list[list[str]]) -> set[str]:
        return {token.rstrip("0123456789") for step in lane for token in step}

    assert any({"SHIFT", "AUDIO", "BREAK"} <= kinds_of(lane) for lane in expected)  # a reply cut by a barge-in
    # 16 threads submit each tick within microseconds and a batch takes milliseconds, so batches hold
    # several lanes; how many depends on thread timing, hence the low bar.
    assert usage["mean_batch"] > 1.5
    assert all(lane.backbone.refills > 3 for lane in lanes.values())


def test_concurrent_sessions_on_lanes_write_the_solo_output(prototype: Model, cfg: Config, tmp_path: Path) -> None:
    """Four DuplexSessions at once, each on a lane of a two-shard host: every output WAV is byte for
    byte the solo one."""
    inputs = []
    for k in range(4):
        path = tmp_path / f"in{k}.wav"
        sf.write(path, conversation(10 + k), 16_000, subtype="PCM_16")
        inputs.append(path)
    for k, path in enumerate(inputs):
        solo = Model(backbone=solo_backbone(prototype), vocoder=FrameBankVocoder(prototype.backbone.bank),
                     name=prototype.name)
        asyncio.run(play_offline(cfg, path, tmp_path / f"solo{k}.wav", model=solo))
    host = BatchedTinyFd(prototype, capacity=4, shards=2)  # two model threads, two lanes each
    lanes = [host.open() for _ in inputs]
    assert sorted(len(shard.lanes) for shard in host.shards) == [2, 2]

    async def together() -> None:
        await asyncio.gather(*(play_offline(cfg, path, tmp_path / f"lane{k}.wav", model=lane)
                               for k, (path, lane) in enumerate(zip(inputs, lanes, strict=True))))

    try:
        asyncio.run(together())
        batches = [shard.steps.batches for shard in host.shards]
    finally:
        host.shutdown()
    for k in range(len(inputs)):
        solo_bytes = (tmp_path / f"solo{k}.wav").read_bytes()
        assert np.abs(sf.read(tmp_path / f"solo{k}.wav")[0]).max() > 0.01  # the model did speak
        assert (tmp_path / f"lane{k}.wav").read_bytes() == solo_bytes, f"session {k}"
    # Both model threads served (whether two free-running sessions' steps meet in one batch is up to
    # thread timing; the sixteen-lane test above holds that lanes share forwards).
    assert all(n > 0 for n in batches), batches


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_lane_that_stops_sending_delays_no_one_and_is_counted_late(prototype: Model) -> None:
    clock = FakeClock()
    host = BatchedTinyFd(prototype, capacity=3, clock=clock)
    try:
        stalled, busy, other = (host.open() for _ in range(3))
        silence = np.zeros(STEP, np.float32)
        stalled.backbone.step(silence)  # then its client stops sending
        for _ in range(10):  # the others step on, one at a time: each is served without the stalled lane
            clock.now += 0.1  # well within a step period
            busy.backbone.step(silence)
            other.backbone.step(silence)
        assert [lane.backbone.counters.served for lane in (stalled, busy, other)] == [1, 10, 10]
        assert host.usage()["batches"] == 21 and host.usage()["late"] == 0
        stalled.backbone.step(silence)  # 1.0 s after its last step: late, six whole step periods skipped
        usage = host.usage()
    finally:
        host.shutdown()
    assert (stalled.backbone.counters.late, stalled.backbone.counters.skipped) == (1, 6)
    assert (usage["late"], usage["skipped"]) == (1, 6)
    assert busy.backbone.counters.late == other.backbone.counters.late == 0


def test_capacity_close_and_per_slot_reset(prototype: Model) -> None:
    host = BatchedTinyFd(prototype, capacity=2)
    try:
        a, b = host.open(), host.open()
        with pytest.raises(HostFull):
            host.open()
        host.close(a)
        assert host.usage()["used"] == 1
        with pytest.raises(LaneClosed):
            a.backbone.step(np.zeros(STEP, np.float32))
        a = host.open()
        assert a.backbone.slot == 0 and host.usage()["used"] == 2  # the freed slot is reused
        with pytest.raises(ValueError):
            a.backbone.step(np.zeros(100, np.float32))  # refused on its own thread: no batch ever sees it
        assert host.usage()["batches"] == 0

        x, y = conversation(3), conversation(4)
        half = len(chunks(y)) // 2
        got_b, got_a = [], []
        for k, chunk in enumerate(chunks(x)):
            if k == half:
                a.backbone.heard(0)
                a.backbone.reset()  # lane a starts over; lane b's context must not notice
                assert a.backbone.cache_positions == 0 and b.backbone.cache_positions > 0
            got_b.append(kinds(b.backbone.step(chunk)))
            if k < len(chunks(y)):
                got_a.append(kinds(a.backbone.step(chunks(y)[k] if k < half else chunks(y)[k - half])))
    finally:
        host.shutdown()
    assert got_b == run_solo(prototype, x)
    assert got_a[half:] == run_solo(prototype, y)[: len(got_a) - half]


def test_a_refill_runs_in_its_own_forward_after_the_others_are_answered(prototype: Model) -> None:
    host = BatchedTinyFd(prototype, capacity=3)
    try:
        lanes = [host.open().backbone for _ in range(3)]
        audio = conversation(7)
        for k in range(12):  # past the first fill: every lane in steady state
            host.run_batch([(lane, chunks(audio)[k], None) for lane in lanes])
        lanes[1].reset()  # its next step refills
        forwards: list[list[int]] = []
        answered: list[list[int]] = []
        decoder = lanes[0].shard.decoder
        forward = decoder.forward

        def spy(slots: list[int], embeds: list[torch.Tensor], starts: list[int]) -> torch.Tensor:
            forwards.append([int(e.shape[0]) for e in embeds])
            return forward(slots, embeds, starts)

        decoder.forward = spy  # type: ignore[method-assign]
        host.run_batch([(lane, chunks(audio)[12], None) for lane in lanes], lambda rows, _: answered.append(rows))
    finally:
        host.shutdown()
    assert answered == [[0, 2], [1]]
    assert forwards[0] in ([5, 5], [4, 4], [4, 5], [5, 4])  # the steady rows: pending tokens + user embedding
    assert forwards[1] == [2]  # the refill, alone (BOS + user embedding after a reset)


def run_lanes(prototype: Model, inputs: list[np.ndarray]) -> list[list[list[str]]]:
    """Each input on a lane of its own, all stepped at once every tick, on threads named lane*."""
    host = BatchedTinyFd(prototype, capacity=len(inputs))
    try:
        lanes = [host.open() for _ in inputs]
        got: list[list[list[str]]] = [[] for _ in inputs]
        with ThreadPoolExecutor(max_workers=len(inputs), thread_name_prefix="lane") as pool:
            for tick in range(max(len(chunks(a)) for a in inputs)):
                steps = {k: pool.submit(lane.backbone.step, inputs[k][STEP * tick:][:STEP])
                         for k, lane in enumerate(lanes) if tick < len(chunks(inputs[k]))}
                for k, step in steps.items():
                    got[k].append(kinds(step.result()))
    finally:
        host.shutdown()
    return got


def test_with_the_cue_model_lanes_equal_solo_runs_and_its_verdicts_run_on_the_lanes_threads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The cue network's verdicts (7 ms a window) were worked out on the model thread, one lane after
    another, holding every lane's step: capacity 48 -> 6 (docs/serve.md). A lane now works them out on
    its own thread before it queues its chunk; the tokens stay those of a solo run."""
    import threading

    from duplex.backbones import load_model
    from duplex.cue.runtime import CueModel

    cued = load_model(load_config(overrides={"tiny_fd": {**CONTEXT, "cues": True, "cue_words": False}}))
    assert cued.backbone.rule_settings.cues is not None
    threads: list[str] = []
    probs = CueModel.probs

    def counted(self: CueModel, window: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return probs(self, window)

    inputs = [conversation(k, questions=3) for k in range(4)]
    expected = [run_solo(cued, a) for a in inputs]
    solo_verdicts = len(threads)
    threads.clear()
    monkeypatch.setattr(CueModel, "probs", counted)
    assert run_lanes(cued, inputs) == expected
    assert solo_verdicts == 0  # (the solo runs above were not counted)
    assert len(threads) >= 8  # a verdict per silence after the user spoke, and per held piece
    assert [name for name in threads if not name.startswith("lane")] == []


def test_with_words_a_lane_waits_for_its_own_recogniser_on_its_own_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the recogniser of words a verdict waited for the lane's child process on the model thread,
    holding every lane's step (2 real-time conversations, docs/serve.md). The lane now waits for its
    own child before it queues its chunk; the model thread asks only for a held piece's forced
    choice, whose job it sends itself. The tokens stay those of a solo run."""
    import threading

    pytest.importorskip("pocketsphinx")
    from duplex.backbones import load_model
    from duplex.cue import words as W

    worded = load_model(load_config(overrides={"tiny_fd": {**CONTEXT, "cues": True, "cue_words": True}}))
    inputs = [conversation(k, questions=3) for k in (1, 2)]
    expected = [run_solo(worded, a) for a in inputs]
    last_job: dict[int, bytes] = {}
    trips: list[tuple[str, bytes]] = []  # (thread, the last job before the reply was asked for)
    send, wait = W._Recogniser.send, W._Recogniser.wait

    def sent(self: W._Recogniser, kind: bytes, payload: bytes = b"") -> None:
        if kind != b"R":
            last_job[id(self)] = kind
        else:
            trips.append((threading.current_thread().name, last_job.get(id(self), b"")))
        send(self, kind, payload)

    monkeypatch.setattr(W._Recogniser, "send", sent)
    monkeypatch.setattr(W._Recogniser, "wait", wait)
    assert run_lanes(worded, inputs) == expected
    on_lanes = [job for name, job in trips if name.startswith("lane")]
    on_model = [job for name, job in trips if not name.startswith("lane")]
    assert len(on_lanes) >= 4  # the openings of the questions, waited for where they are asked
    assert set(on_model) <= {b"P"}, on_model
