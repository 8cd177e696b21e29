"""BatchedCovo (native mode): a conversation served among others equals the same conversation alone."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from audio_io.format import STEP_SAMPLES  # noqa: E402
from duplex.backbones import load_model  # noqa: E402
from duplex.backbones.base import Model  # noqa: E402
from duplex.backbones.covo.batched import BatchedCovo  # noqa: E402
from duplex.tokens import Token  # noqa: E402
from tests.covo_fixtures import covo_config, tiny_checkpoint  # noqa: E402

SETTINGS = {"context_tokens": 96, "refill_keep_tokens": 40}  # a refill every dozen steps


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


def native_model(tiny: Path) -> Model:
    return load_model(covo_config(tiny, "native", **SETTINGS))


def chunks(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(STEP_SAMPLES) / 16000
    pitch = rng.uniform(100, 300)
    return [(rng.uniform(0.0, 0.3) * np.sin(2 * np.pi * (pitch + 30 * k) * t)
             + 0.05 * rng.standard_normal(STEP_SAMPLES)).astype(np.float32) for k in range(n)]


def test_four_interleaved_lanes_each_equal_a_solo_run(tiny: Path) -> None:
    n, steps = 4, 30
    inputs = [chunks(steps, seed=k) for k in range(n)]
    expected: list[list[Token]] = []
    for audio in inputs:
        solo = native_model(tiny).backbone
        expected.append([t for chunk in audio for t in solo.step(chunk)])
        assert solo.refills >= 2
    host = BatchedCovo(native_model(tiny), capacity=n)
    joins = [0, 1, 3, 6]
    got: list[list[Token]] = [[] for _ in range(n)]
    lanes: dict[int, Model] = {}
    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            for tick in range(joins[-1] + steps):
                for k in range(n):
                    if tick == joins[k]:
                        lanes[k] = host.open()
                pending = {k: pool.submit(lanes[k].backbone.step, inputs[k][tick - joins[k]])
                           for k in lanes if tick - joins[k] < steps}
                for k, step in pending.items():
                    got[k] += step.result()
        usage = host.usage()
    finally:
        host.shutdown()
    for k in range(n):
        assert got[k] == expected[k], f"lane {k}"
    assert all(lane.backbone.refills >= 2 for lane in lanes.values())
    assert usage["mean_batch"] > 1
    assert len({tuple(e) for e in expected}) == n  # the inputs did lead to different conversations


def test_reset_and_an_unannounced_cut_act_on_their_lane_only(tiny: Path) -> None:
    audio = chunks(16, seed=7)
    solo = native_model(tiny).backbone
    want = [list(solo.step(c)) for c in audio]
    solo.reset()
    solo.step(audio[0])
    solo.heard(0)
    cut = [list(solo.step(c)) for c in audio[1:4]]
    host = BatchedCovo(native_model(tiny), capacity=2)
    try:
        a, b = host.open().backbone, host.open().backbone
        got_b = []
        for k, chunk in enumerate(audio):
            if k == 8:
                a.reset()
                a.step(audio[0])
                a.heard(0)  # the next input of lane a is BREAK; lane b goes on as if alone
                got_a = [list(a.step(c)) for c in audio[1:4]]
            else:
                a.step(chunk)
            got_b.append(list(b.step(chunk)))
    finally:
        host.shutdown()
    assert got_b == want
    assert got_a == cut


TURN = {"sampling": "greedy", "interleave": "1,3", "context_tokens": 128, "max_reply_tokens": 24}


def _spoken_parts(k: int) -> list[np.ndarray]:
    """Two questions, each followed by enough silence for the floor to take the turn."""
    from audio_io.wav import load_mono16k

    clips = Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "clips"
    names = ["weather", "train", "table", "stop"]
    parts = []
    for j in range(2):
        parts += [load_mono16k(clips / f"{names[(k + j) % 4]}.wav"), np.zeros(int((1.6 + 0.3 * k) * 16000), np.float32)]
    return parts


def spoken(k: int) -> list[np.ndarray]:
    """`_spoken_parts` in steps."""
    audio = np.concatenate(_spoken_parts(k))
    return [audio[i: i + STEP_SAMPLES] for i in range(0, audio.size - STEP_SAMPLES + 1, STEP_SAMPLES)]


def test_turn_mode_lanes_each_equal_a_solo_run(tiny: Path) -> None:
    from duplex.backbones.covo.batched_turn import BatchedCovoTurn
    from duplex.backbones.covo.factory import COVO_FLOOR
    from duplex.backbones.floor import make_floor
    from duplex.tokens import Kind

    n = 3
    inputs = [spoken(k) for k in range(n)]
    expected, shifted = [], []
    for audio in inputs:
        solo = load_model(covo_config(tiny, "turn", **TURN)).backbone
        steps = [solo.step(chunk) for chunk in audio]
        expected.append([t for step in steps for t in step])
        shifted.append([i * STEP_SAMPLES / 16000 for i, step in enumerate(steps) if any(t.kind is Kind.SHIFT
                                                                                         for t in step)])
    cfg = covo_config(tiny, "turn", **TURN)
    host = BatchedCovoTurn(load_model(cfg), capacity=n, new_floor=lambda: make_floor(  # as duplex-serve makes it
        cfg.policy, tiny_fd=cfg.tiny_fd, resolve=cfg.resolve, threads=0, auto=COVO_FLOOR))
    lanes = [host.open() for _ in range(n)]
    got: list[list[Token]] = [[] for _ in range(n)]
    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            for tick in range(max(len(a) for a in inputs)):
                pending = {k: pool.submit(lanes[k].backbone.step, inputs[k][tick])
                           for k in range(n) if tick < len(inputs[k])}
                for k, step in pending.items():
                    got[k] += step.result()
        usage = host.usage()
        refills = [lane.backbone.chat.refills for lane in lanes]
    finally:
        host.shutdown()
    for k in range(n):
        assert got[k] == expected[k], f"lane {k}"
    kinds = {t.kind for lane in expected for t in lane}
    assert {Kind.SHIFT, Kind.AUDIO, Kind.TEXT} <= kinds
    # both of the first lane's questions are answered in the silence after them (a SHIFT between a
    # question's end and the next one's start; the tiny model's replies end early, and the floor may
    # take the turn once more in that silence)
    ends = np.cumsum([c.size for c in _spoken_parts(0)]) / 16000
    for question_end, next_start in ((ends[0], ends[1]), (ends[2], ends[3])):
        assert any(question_end < t < next_start for t in shifted[0]), (question_end, shifted[0])
    assert max(refills) >= 1
    # Every decoder call went through the host's one service; whether two conversations' calls meet in
    # one forward is thread timing here (a turn-mode lane calls its decoder only when it prefills or
    # speaks; CI saw mean batch 1.0), so it is not asserted: the native test above holds sharing.
    assert usage["steps"] >= usage["batches"] > 0


def test_duplex_serve_gives_each_covo_mode_its_batched_host(tiny: Path) -> None:
    from duplex.backbones.covo.batched_turn import BatchedCovoTurn
    from duplex.config import Config
    from duplex.errors import ConfigError
    from duplex.serve.host import SeparateModels, make_host

    for mode, settings, kind in (("native", SETTINGS, BatchedCovo), ("turn", TURN, BatchedCovoTurn)):
        cfg = covo_config(tiny, mode, **settings)
        host = make_host(load_model(cfg), cfg, capacity=2)
        assert isinstance(host, kind)
        lane = host.open()
        try:
            assert len(lane.backbone.step(chunks(1, seed=5)[0])) == 4
        finally:
            host.close(lane)
            host.shutdown()
        assert isinstance(make_host(load_model(cfg), cfg, capacity=2, batched=False), SeparateModels)
    policy = Config(backbone="policy")
    assert isinstance(make_host(load_model(policy), policy, capacity=2), SeparateModels)
    with pytest.raises(ConfigError, match="backbone 'policy' has no batched host"):
        make_host(load_model(policy), policy, capacity=2, batched=True)
