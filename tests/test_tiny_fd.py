"""tiny-fd: streaming front end, KV-cache inference equal to the training forward, context refill,
the grammar, checkpoint errors, and a smoke training run that loads and converses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from duplex.backbones.tiny_fd import vocab as V  # noqa: E402
from duplex.backbones.tiny_fd.runtime import TinyFdBackbone  # noqa: E402
from duplex.errors import CheckpointError  # noqa: E402
from tests.tiny_fd_helpers import REPLIES, speechy, tiny_bank, tiny_net  # noqa: E402


def test_mel_stream_equals_one_shot() -> None:
    from duplex.backbones.tiny_fd.features import LogMel, MelStream

    mel = LogMel()
    audio = torch.from_numpy(speechy(2.56))[None]
    stream = MelStream(mel)
    chunked = torch.cat([stream(audio[:, i: i + 2560]) for i in range(0, audio.shape[1], 2560)], dim=2)
    assert chunked.shape == (1, 40, 256)
    torch.testing.assert_close(chunked, mel.full(audio), atol=1e-4, rtol=1e-4)


def test_encoder_streaming_equals_one_shot() -> None:
    net = tiny_net()
    x = torch.randn(1, 80, 16 * 20)
    with torch.no_grad():
        whole, _ = net.encoder(x)
        states, parts = None, []
        for i in range(20):
            out, states = net.encoder(x[..., 16 * i: 16 * (i + 1)], states)
            parts.append(out)
    assert whole.shape == (1, 20, 64)
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, atol=1e-5, rtol=1e-4)


def test_grammar_completes_steps() -> None:
    floor = V.Floor(REPLIES)
    assert floor.allowed_first() == [V.THINK, V.SHIFT]
    assert floor.complete(V.THINK) == [V.THINK] * 4
    step = floor.complete(V.SHIFT, V.unit_id(55))
    assert step == [V.SHIFT, V.unit_id(55), V.unit_id(56), V.unit_id(57)]
    assert floor.allowed_first() == [V.CONT, V.THINK, V.BREAK]
    assert floor.complete(V.THINK) == [V.THINK] * 4  # a held beat keeps the reply's place
    assert floor.complete(V.CONT)[0] == V.unit_id(58)
    while floor.speaking and floor.decision() == V.SPEAK_DECISION:
        last = floor.complete(V.CONT)
    assert V.EOT in last or floor.decision() == V.FORCED
    floor = V.Floor(REPLIES)
    floor.complete(V.SHIFT, V.unit_id(0))
    assert floor.complete(V.BREAK) == [V.BREAK] + [V.THINK] * 3
    assert not floor.speaking


def _run(backbone: TinyFdBackbone, audio: np.ndarray) -> list[list[int]]:
    steps = []
    for i in range(0, audio.size - 2559, 2560):
        backbone.step(audio[i: i + 2560])
        steps.append(backbone.history[-1][1])
    return steps


def test_kv_cache_inference_matches_training_forward() -> None:
    """Every streamed decision equals the argmax of the one-shot (training) forward on the same inputs."""
    net, bank = tiny_net(1), tiny_bank()
    with torch.no_grad():  # bias the random net towards SHIFT so that replies (and the reference track) happen
        net.llm.lm_head.weight[V.SHIFT] += 0.05 * net.llm.lm_head.weight[V.SHIFT].sign()
    backbone = TinyFdBackbone(net, REPLIES, bank, context_steps=64, window_steps=8)
    mic = speechy(6.4, seed=2)
    tokens = _run(backbone, mic)
    assert backbone.refills == 1  # only the initial fill
    ref = np.zeros_like(mic)
    for k, step in enumerate(tokens[:-1]):
        units = [t - V.UNIT0 for t in step if t >= V.UNIT0]
        for j, u in enumerate(units):
            ref[2560 * (k + 1) + 640 * j: 2560 * (k + 1) + 640 * (j + 1)] = bank.frame(u)
    with torch.no_grad():
        hidden = net(torch.from_numpy(mic)[None], torch.from_numpy(ref)[None], torch.tensor([tokens]))
        logits = net.logits(hidden[0, 1::5])
    floor = V.Floor(REPLIES)
    for k, step in enumerate(tokens):
        allowed = floor.allowed_first()
        expected = allowed[int(torch.argmax(logits[k, allowed]))]
        got = V.CONT if step[0] >= V.UNIT0 else step[0]
        assert got == expected, f"step {k}"
        floor.complete(expected, step[1] if expected == V.SHIFT else None)


def test_context_refill_keeps_memory_flat() -> None:
    backbone = TinyFdBackbone(tiny_net(), REPLIES, tiny_bank(), context_steps=10, window_steps=4)
    audio = speechy(0.16 * 40, seed=3)
    sizes = []
    for _ in range(3):
        _run(backbone, audio)
        assert backbone.cache_positions <= 1 + 5 * 10
        sizes.append(_cache_bytes(backbone.cache))
    assert backbone.refills >= 15
    assert max(sizes) <= 1 + 5 * 10 * 2 * 2 * 32 * 4 * 2  # positions x (k, v) x layers x kv width x float32
    assert len(backbone.history) == 4


def _cache_bytes(cache: object) -> int:
    tensors = [t for t in vars(cache).values() if isinstance(t, torch.Tensor)]
    for layer in getattr(cache, "layers", []):
        tensors += [t for t in vars(layer).values() if isinstance(t, torch.Tensor)]
    assert tensors, "no cache tensors found"
    return sum(t.numel() * t.element_size() for t in tensors)


def test_step_returns_four_tokens_and_reset() -> None:
    backbone = TinyFdBackbone(tiny_net(), REPLIES, tiny_bank(), context_steps=16, window_steps=4)
    tokens = backbone.step(np.zeros(2560, np.float32))
    assert len(tokens) == 4
    backbone.reset()
    assert backbone.cache is None and not backbone.history


@pytest.fixture(scope="module")
def smoke_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from duplex.backbones.tiny_fd.train import main

    out = tmp_path_factory.mktemp("tiny-fd")
    cache = Path(__file__).resolve().parent.parent / ".pytest_cache" / "tiny-fd-speech"
    main(["--smoke", "--steps", "200", "--out", str(out), "--cache", str(cache), "--log-every", "1000"])
    return out


def test_smoke_training_writes_a_loadable_checkpoint(smoke_checkpoint: Path) -> None:
    from duplex.backbones.tiny_fd.loader import load_folder

    meta = json.loads((smoke_checkpoint / "config.json").read_text())
    assert meta["train"]["steps"] == 200
    assert np.isfinite(meta["train"]["final_loss"])
    model = load_folder(smoke_checkpoint, context_steps=12, window_steps=4)
    for _ in range(30):
        assert len(model.backbone.step(np.zeros(2560, np.float32))) == 4
    audio = model.vocoder.decode([0, 1, 2])
    assert audio.shape == (1920,) and np.abs(audio).max() > 0.01


@pytest.mark.parametrize("victim", ["config.json", "model.safetensors", "units.safetensors"])
@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_checkpoint_errors_name_the_file(smoke_checkpoint: Path, tmp_path: Path, victim: str, damage: str) -> None:
    from duplex.backbones.tiny_fd.loader import load_folder

    folder = tmp_path / "ckpt"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "units.safetensors"):
        (folder / name).write_bytes((smoke_checkpoint / name).read_bytes())
    if damage == "missing":
        (folder / victim).unlink()
    else:
        data = (folder / victim).read_bytes()
        (folder / victim).write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError) as info:
        load_folder(folder)
    message = str(info.value)
    assert victim in message and "\n" not in message


@pytest.mark.parametrize("what", ["replies", "frames"])
def test_inconsistent_checkpoints_are_refused_naming_the_file(smoke_checkpoint: Path, tmp_path: Path,
                                                                what: str) -> None:
    """Well-formed files that do not fit together: a reply beyond the units, frames of the wrong length."""
    import json

    from safetensors.numpy import load_file, save_file

    from duplex.backbones.tiny_fd.loader import load_folder

    folder = tmp_path / "ckpt"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "units.safetensors"):
        (folder / name).write_bytes((smoke_checkpoint / name).read_bytes())
    if what == "replies":
        meta = json.loads((folder / "config.json").read_text())
        meta["replies"][0] = [meta["net"]["n_units"] - 1, 10]
        (folder / "config.json").write_text(json.dumps(meta))
        victim = "config.json"
    else:
        frames = load_file(str(folder / "units.safetensors"))["frames"]
        save_file({"frames": frames[:, :320].copy()}, str(folder / "units.safetensors"))
        victim = "units.safetensors"
    with pytest.raises(CheckpointError, match=victim):
        load_folder(folder)


def test_missing_checkpoint_folder(tmp_path: Path) -> None:
    from duplex.config import load_config

    cfg = load_config(overrides={"backbone": "tiny-fd", "tiny_fd": {"checkpoint": str(tmp_path / "nope")}})
    from duplex.backbones import load_model

    with pytest.raises(CheckpointError, match="nope"):
        load_model(cfg)


def test_decision_thresholds() -> None:
    backbone = TinyFdBackbone(tiny_net(), REPLIES, tiny_bank(), break_threshold=0.7, shift_threshold=0.5)
    logits = torch.full((80,), -10.0)
    logits[V.BREAK], logits[V.THINK], logits[V.CONT] = 1.0, 0.5, -1.0  # p(BREAK) ~ 0.57: only a hold
    assert backbone._decide(logits, [V.CONT, V.THINK, V.BREAK]) == V.THINK
    logits[V.BREAK] = 3.0  # p(BREAK) ~ 0.9
    assert backbone._decide(logits, [V.CONT, V.THINK, V.BREAK]) == V.BREAK
    logits[V.SHIFT], logits[V.THINK] = 0.2, 0.0
    assert backbone._decide(logits, [V.THINK, V.SHIFT]) == V.SHIFT


def test_dialogue_targets_follow_the_grammar() -> None:
    """Executed tokens and the oracle's labels are both legal; the oracle never takes the turn while
    the user is audible; every kind of decision occurs."""
    from types import SimpleNamespace

    from duplex.backbones.tiny_fd.dialogue import Synth

    rng = np.random.default_rng(0)

    def clips(seconds: float, n: int) -> list[np.ndarray]:
        return [(rng.standard_normal(int(seconds * 16_000)) * 0.1).astype(np.float32) for _ in range(n)]

    pool = SimpleNamespace(voices=[{"question": clips(1.6, 3), "statement": clips(1.5, 2), "sentence": clips(1.2, 2),
                                    "fragment": clips(0.8, 3), "flat": clips(0.8, 2), "barge": clips(1.4, 2),
                                    "hesitation": clips(0.3, 2), "backchannel": clips(0.4, 2)}])
    bank = tiny_bank()
    frames = np.stack([bank.frame(u) for u in range(75)])
    synth = Synth(pool, frames, REPLIES)  # type: ignore[arg-type]
    shifts = breaks = holds = late = 0
    for seed in range(30):
        d = synth.dialogue(80, np.random.default_rng(seed))
        assert d.mic.size == d.ref.size == 80 * 2560 and d.tokens.shape == (80, 4)
        floor = V.Floor(REPLIES)
        for k in range(80):
            first = int(d.tokens[k, 0])
            assert int(d.decision[k]) == floor.decision()
            allowed = floor.allowed_first()
            assert int(d.target[k]) in allowed
            choice = V.CONT if first >= V.UNIT0 else first
            assert choice in allowed
            if int(d.target[k]) == V.SHIFT:  # never while the user is audible (clean mic: no echo yet)
                assert np.abs(d.mic[k * 2560 + 2400: (k + 1) * 2560]).max() < 0.5
            assert floor.complete(choice, int(d.tokens[k, 1]) if first == V.SHIFT else None) == list(d.tokens[k])
            shifts += first == V.SHIFT
            breaks += int(d.target[k]) == V.BREAK
            holds += int(d.target[k]) == V.THINK and int(d.decision[k]) == V.SPEAK_DECISION
            late += int(d.target[k]) != choice
        assert np.abs(d.ref).max() > 0 or V.SHIFT not in d.tokens[:, 0]
    assert shifts >= 20 and breaks >= 3 and holds >= 3 and late >= 1


def test_a_context_longer_than_the_model_knows_is_refused(smoke_checkpoint: Path) -> None:
    from duplex.backbones.tiny_fd.loader import load_folder
    from duplex.errors import ConfigError

    with pytest.raises(ConfigError, match="tiny_fd.context_steps = 150 needs 751 positions"):
        load_folder(smoke_checkpoint, context_steps=150)


def test_the_default_hears_cues_and_words_and_cues_false_turns_both_off() -> None:
    """Round 10 made the cue model and the recogniser of words the default (docs/tiny-fd.md): the
    network's own timing started in 52 of 60 held-out paused turns. `cues: false` alone is the old
    default, not a config error about the words it no longer feeds."""
    import dataclasses

    from duplex.backbones.tiny_fd.loader import rule_settings
    from duplex.config import load_config

    default = load_config(None).tiny_fd
    rules = rule_settings(default)
    assert rules.cues is not None and rules.cues.words
    assert rule_settings(dataclasses.replace(default, cues=False)).cues is None
    network = load_config(Path(__file__).resolve().parents[1] / "examples" / "tiny-fd-network.yaml").tiny_fd
    assert (network.cues, network.cue_words) == (False, False)
