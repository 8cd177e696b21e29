"""Our token2wav: the release's shapes and length arithmetic, streaming that matches one decode, weights loading."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from duplex.backbones.covo.t2w_model import Token2Wav, load_release_weights, tiny_token2wav_config  # noqa: E402
from duplex.backbones.covo.t2w_stream import StreamingToken2Wav, StreamSettings, Synth, VoicePrompt  # noqa: E402
from duplex.errors import CheckpointError  # noqa: E402

CPU = torch.device("cpu")
PROMPT = 24  # voice-prompt units: the release's 291 would only make the tests slower


@pytest.fixture(scope="module")
def model() -> Token2Wav:
    torch.manual_seed(0)
    return Token2Wav(tiny_token2wav_config())


def synth(model: Token2Wav, **settings: object) -> Synth:
    prompt = VoicePrompt.random(model, PROMPT)
    return Synth(model, prompt, replace(StreamSettings(steps=4), **settings), device=CPU, dtype=torch.float32)


def units(n: int, seed: int = 0) -> list[int]:
    return [int(u) for u in np.random.default_rng(seed).integers(0, 16_384, n)]


def test_release_arithmetic_m_units_give_m_x_960_minus_720_samples(model: Token2Wav) -> None:
    assert model.unit_samples == 960 and model.sample_rate == 24_000
    assert VoicePrompt.random(model).latent.shape[0] == 1167  # 291 units -> 1164 frames, the latent has 1167
    s = synth(model)
    for m in (1, 5, 12):
        assert s(units(m), 0).shape == (m * 960 - 720,)


def stream(s: Synth, us: list[int], ahead: int, steps: list[int]) -> tuple[np.ndarray, StreamingToken2Wav]:
    asked = 0
    voc = StreamingToken2Wav(s, ahead=lambda: (us[asked: asked + ahead], asked + ahead >= len(us)))
    voc.reset()
    s.turn, s._noise = 0, {}
    out = []
    for n in steps:
        chunk = us[asked: asked + n]
        asked += len(chunk)
        out.append(voc.decode(chunk))
        assert out[-1].size == len(chunk) * 960 - (720 if len(out) == 1 else 0)  # exactly the units asked for
    return np.concatenate(out), voc


def test_streamed_audio_matches_one_decode_with_growing_chunks_and_no_gap(model: Token2Wav) -> None:
    s = synth(model)
    us = units(31)
    whole = s(us, 0)
    audio, voc = stream(s, us, ahead=12, steps=[3, 4, 4, 4, 4, 4, 4, 4])
    assert [n for _, n in voc.chunks] == [3, 6, 12, 10]  # first small, then doubling, the rest at the end
    assert audio.size == whole.size == 31 * 960 - 720
    err = audio - whole
    assert 10 * np.log10(np.sum(whole**2) / np.sum(err**2)) > 25  # same noise per turn: seams are small
    frames = np.abs(audio[: audio.size // 240 * 240]).reshape(-1, 240).max(axis=1)
    assert frames.min() > 0  # no 10 ms of inserted silence anywhere


def test_without_units_ahead_each_step_is_decoded_as_asked(model: Token2Wav) -> None:
    s = synth(model)
    us = units(11)
    _, voc = stream(s, us, ahead=0, steps=[3, 4, 4])
    assert [n for _, n in voc.chunks] == [3, 4, 4]


def test_a_new_turn_draws_new_noise_and_drops_the_context(model: Token2Wav) -> None:
    s = synth(model)
    voc = StreamingToken2Wav(s)
    a = voc.decode(units(4))
    voc.reset()
    assert voc.done == 0 and voc.asked == 0
    b = voc.decode(units(4))
    assert a.shape == b.shape and not np.allclose(a, b)


def test_left_context_of_zero_is_refused(model: Token2Wav) -> None:
    with pytest.raises(ValueError, match="left_context"):
        StreamingToken2Wav(synth(model, left_context=0))


def release_layout(model: Token2Wav) -> dict[str, torch.Tensor]:
    """Our state dict as the release saves it: weight norm as g/v pairs on the vocoder's convolutions, filters."""
    state = {}
    for k, v in model.state_dict().items():
        if k.startswith("wavegan.ups.") and k.endswith(".weight"):
            norm = v.flatten(1).norm(dim=1).view(-1, 1, 1)
            state[k[:-6] + "weight_g"], state[k[:-6] + "weight_v"] = norm, v * 3.0
        else:
            state[k] = v.clone()
    state["wavegan.activation_post.upsample.filter"] = torch.zeros(1, 1, 12)
    state["token2latent.training_only.weight"] = torch.zeros(2)
    return {"module." + k: v for k, v in state.items()}


def test_release_weights_load_with_weight_norm_folded_and_extras_named(model: Token2Wav, tmp_path: Path) -> None:
    torch.save(release_layout(model), tmp_path / "model.pt")
    fresh = Token2Wav(tiny_token2wav_config())
    ignored = load_release_weights(fresh, tmp_path / "model.pt")
    assert ignored == ["token2latent.training_only.weight"]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v)


def test_missing_token2wav_tensors_are_named(model: Token2Wav, tmp_path: Path) -> None:
    state = release_layout(model)
    del state["module.token2latent.blocks.1.attn.q_proj.weight"]
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="missing 1 token2wav tensors: token2latent.blocks.1.attn.q_proj.weight"):
        load_release_weights(Token2Wav(tiny_token2wav_config()), tmp_path / "model.pt")


def release_checkout(model: Token2Wav, root: Path) -> dict[str, str]:
    """A Covo-Audio checkout as the stream engine reads it: token2wav/config.json, model.pt, the prompt folder."""
    import json

    (root / "token2wav" / "prompt").mkdir(parents=True)
    (root / "token2wav" / "config.json").write_text(json.dumps(tiny_token2wav_config()))
    torch.save(release_layout(model), root / "model.pt")
    prompt = VoicePrompt.random(model, 8)
    np.save(root / "token2wav" / "prompt" / "prompt_token.npy", prompt.tokens.numpy()[None])
    np.save(root / "token2wav" / "prompt" / "prompt_latent.npy", prompt.latent.numpy()[None])
    np.save(root / "token2wav" / "prompt" / "speaker_embed.npy", prompt.speaker.numpy())
    return {"vocoder_repo": str(root), "vocoder_checkpoint": str(root / "model.pt"), "vocoder_engine": "stream",
            "vocoder_ode_points": 3}


def test_the_stream_engine_loads_a_checkout_and_decodes_ahead_of_the_speaker(
        model: Token2Wav, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    pytest.importorskip("transformers")
    from duplex.backbones import load_model
    from tests.covo_fixtures import covo_config, tiny_checkpoint
    from tests.test_covo_turn import utterance

    keys = release_checkout(model, tmp_path / "Covo-Audio")
    loaded = load_model(covo_config(tiny_checkpoint(tmp_path_factory), "turn", interleave="0,1", **keys))
    voc = loaded.vocoder
    assert isinstance(voc, StreamingToken2Wav) and voc.synth.tokens.numel() == 8
    chat = loaded.backbone.chat
    chat.start_reply(utterance(1.0))
    units = chat.next_units(3)
    ahead, ended = voc.ahead()
    assert ahead == list(chat.reply.ready) and not ended
    audio = voc.decode(units)
    assert audio.size == 3 * 960 - 720 and np.abs(audio).max() > 0
    assert voc.chunks[0] == (0, 3)


def test_background_decoding_gives_the_same_lengths_and_close_audio(model: Token2Wav) -> None:
    s = synth(model)
    us = units(23)
    whole = s(us, 0)
    asked = 0
    voc = StreamingToken2Wav(s, ahead=lambda: (us[asked: asked + 12], asked + 12 >= len(us)), background=True)
    voc.reset()
    s.turn, s._noise = 0, {}
    out = []
    for n in [3, 4, 4, 4, 4, 4]:
        chunk = us[asked: asked + n]
        asked += len(chunk)
        out.append(voc.decode(chunk))
    audio = np.concatenate(out)
    assert audio.size == whole.size and voc.background_chunks >= 1
    assert 10 * np.log10(np.sum(whole**2) / np.sum((audio - whole) ** 2)) > 25


def test_the_next_reply_starts_a_new_turn_once_the_last_was_all_spoken(model: Token2Wav) -> None:
    s = synth(model)
    state = {"left": [], "ended": False}
    voc = StreamingToken2Wav(s, ahead=lambda: (state["left"], state["ended"]))
    state["left"] = units(2, 1)
    voc.decode(units(3))
    state["left"], state["ended"] = [], True
    voc.decode(units(2, 1))  # the reply's last units
    turn = s.turn
    state["ended"] = False
    first = voc.decode(units(3, 2))  # the next reply: a new turn, a small first chunk, the release's 30 ms lag
    assert s.turn == turn + 1 and voc.chunks == [(0, 3)] and first.size == 3 * 960 - 720
