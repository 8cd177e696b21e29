"""Native mode: the streaming step equals a full forward pass, and refills keep memory flat."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from audio_io.format import STEP_SAMPLES  # noqa: E402
from duplex.backbones import load_model  # noqa: E402
from duplex.backbones.covo.features import HOP, MEL_PER_STEP, N_FFT, LogMel, encode_mel  # noqa: E402
from duplex.backbones.covo.native import POSITIONS_PER_STEP, CovoNativeBackbone  # noqa: E402
from duplex.tokens import Kind  # noqa: E402
from tests.covo_fixtures import covo_config, tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


def native(tiny: Path, **covo: object) -> CovoNativeBackbone:
    backbone = load_model(covo_config(tiny, "native", **covo)).backbone
    assert isinstance(backbone, CovoNativeBackbone)
    return backbone


def chunks(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(STEP_SAMPLES) / 16000
    return [(0.2 * np.sin(2 * np.pi * (150 + 40 * k) * t) + 0.05 * rng.standard_normal(STEP_SAMPLES))
            .astype(np.float32) for k in range(n)]


def sampled_positions(start: int, steps: int) -> list[int]:
    """Positions whose logits a step samples from: after the frame, then after each fed token."""
    return [start + POSITIONS_PER_STEP * k + j for k in range(steps) for j in (1, 2, 3, 4)]


@pytest.mark.parametrize("cache", ["static", "dynamic"])
def test_streaming_steps_equal_one_full_forward_pass(tiny: Path, cache: str) -> None:
    b = native(tiny, cache=cache)
    b.decoder.trace = []
    steps = 12
    for chunk in chunks(steps):
        tokens = b.step(chunk)
        assert len(tokens) == 4
    with torch.no_grad():
        full = b.decoder.llm(inputs_embeds=b.decoder.hist[: b.decoder.length][None]).logits[0]
    want = full[sampled_positions(b.prefix_len, steps)]
    got = torch.cat(b.decoder.trace)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_the_encoder_window_equals_encoding_the_last_steps_offline(tiny: Path) -> None:
    b = native(tiny, encoder_window_steps=4)
    audio = chunks(7, seed=3)
    for chunk in audio:
        b.encoder.push(chunk)
    with torch.no_grad():
        frame = b.encoder.encode()
        window = torch.from_numpy(np.concatenate(audio)[-(4 * STEP_SAMPLES + N_FFT - HOP):])
        mel = LogMel(128, torch.device("cpu"))(window, center=False)
        assert mel.shape[1] == 4 * MEL_PER_STEP
        model = b.encoder.model
        want = model.audio_adapter(encode_mel(model, mel[None]))[0, -1]
    torch.testing.assert_close(frame, want, rtol=1e-4, atol=1e-5)


def python_state(*objs: object) -> int:
    """Total length of every list/dict/deque/set held by these objects' attributes (one level down too)."""
    total, seen = 0, set()
    stack = [(o, 0) for o in objs]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        for value in vars(obj).values() if hasattr(obj, "__dict__") else ():
            if isinstance(value, (list, dict, deque, set)):
                total += len(value)
            elif depth < 1 and hasattr(value, "__dict__") and not isinstance(value, torch.nn.Module):
                stack.append((value, depth + 1))
    return total


def test_refill_keeps_memory_flat_and_the_cache_exact(tiny: Path) -> None:
    b = native(tiny, context_tokens=96, refill_keep_tokens=40)
    dec = b.decoder
    buffers = [(t.data_ptr(), t.numel()) for t in (dec.k, dec.v, dec.hist)]
    audio = chunks(8)
    for k in range(60):  # warm up: several refills already
        b.step(audio[k % 8])
    state = python_state(b, dec, b.vocab, dec.sampler, b.encoder)
    lengths = []
    for k in range(400):
        b.step(audio[k % 8])
        lengths.append(dec.length)
    assert b.refills >= 25
    assert max(lengths) <= dec.capacity
    assert [(t.data_ptr(), t.numel()) for t in (dec.k, dec.v, dec.hist)] == buffers
    assert python_state(b, dec, b.vocab, dec.sampler, b.encoder) <= state + 4  # (text held back: <= 4 ids)


@pytest.mark.parametrize("cache", ["static", "dynamic"])
def test_after_a_refill_steps_equal_a_full_forward_over_the_kept_history(tiny: Path, cache: str) -> None:
    b = native(tiny, cache=cache, context_tokens=96, refill_keep_tokens=40)
    dec = b.decoder
    audio = chunks(8)
    while b.refills == 0 or dec.room() >= POSITIONS_PER_STEP:
        b.step(audio[b.steps % 8])
    dec.trace = []
    b.step(audio[1])
    assert b.refills >= 2 and dec.length == b.prefix_len + b.keep + POSITIONS_PER_STEP
    with torch.no_grad():
        full = dec.llm(inputs_embeds=dec.hist[: dec.length][None]).logits[0]
    start = b.prefix_len + b.keep
    torch.testing.assert_close(torch.cat(dec.trace), full[[start + j for j in (1, 2, 3, 4)]], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_a_simulated_hour_stays_within_the_cache(tiny: Path) -> None:
    b = native(tiny, context_tokens=2048, refill_keep_tokens=1024)
    audio = chunks(8)
    ptr = b.decoder.k.data_ptr()
    for k in range(22_500):  # one hour of 160 ms steps
        b.step(audio[k % 8])
        assert b.decoder.length <= b.decoder.capacity
    assert b.refills >= 100 and b.decoder.k.data_ptr() == ptr


def test_an_unannounced_cut_makes_break_the_next_input(tiny: Path) -> None:
    b = native(tiny)
    b.step(chunks(1)[0])
    b._saw_break = False
    b.heard(3)
    assert b.pending.tolist() == [b.break_id]


def test_control_ids_map_to_control_tokens_and_speech_ids_to_units(tiny: Path) -> None:
    b = native(tiny)
    vocab = b.vocab
    assert vocab.token(vocab.id("<|SHIFT|>", "")).kind is Kind.SHIFT
    assert vocab.token(vocab.id("<|EOT|>", "")).kind is Kind.EOT
    unit = vocab.token(vocab.text_size + 7)
    assert unit.kind is Kind.AUDIO and unit.unit == 7
    assert vocab.speech_units == 64


@pytest.mark.slow
def test_a_compiled_step_gives_the_same_tokens_as_the_eager_one(tiny: Path) -> None:
    eager, compiled = native(tiny), native(tiny, optimise="compile")  # compiling takes minutes on a small CPU
    for chunk in chunks(12, seed=5):
        assert list(compiled.step(chunk)) == list(eager.step(chunk))
