"""The covo_audio architecture has exactly the published checkpoint's parameter names and shapes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from duplex.backbones.covo.arch import AudioAdapter, CovoAudioModel, published_config  # noqa: E402


def published_7b_shapes() -> dict[str, tuple[int, ...]]:
    """Written out by hand from the released config: Qwen2-7B LLM, Whisper large-v3 encoder, adapter."""
    h, kv, ffn, vocab = 3584, 512, 18944, 168055
    shapes: dict[str, tuple[int, ...]] = {
        "llm.model.embed_tokens.weight": (vocab, h), "llm.model.norm.weight": (h,), "llm.lm_head.weight": (vocab, h)}
    for i in range(28):
        p = f"llm.model.layers.{i}."
        shapes |= {p + "self_attn.q_proj.weight": (h, h), p + "self_attn.q_proj.bias": (h,),
                   p + "self_attn.k_proj.weight": (kv, h), p + "self_attn.k_proj.bias": (kv,),
                   p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.v_proj.bias": (kv,),
                   p + "self_attn.o_proj.weight": (h, h),
                   p + "mlp.gate_proj.weight": (ffn, h), p + "mlp.up_proj.weight": (ffn, h),
                   p + "mlp.down_proj.weight": (h, ffn),
                   p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,)}
    d, effn = 1280, 5120
    shapes |= {"encoder.conv1.weight": (d, 128, 3), "encoder.conv1.bias": (d,),
               "encoder.conv2.weight": (d, d, 3), "encoder.conv2.bias": (d,),
               "encoder.embed_positions.weight": (1500, d),
               "encoder.layer_norm.weight": (d,), "encoder.layer_norm.bias": (d,)}
    for i in range(32):
        p = f"encoder.layers.{i}."
        shapes |= {p + "self_attn.k_proj.weight": (d, d),
                   p + "self_attn.v_proj.weight": (d, d), p + "self_attn.v_proj.bias": (d,),
                   p + "self_attn.q_proj.weight": (d, d), p + "self_attn.q_proj.bias": (d,),
                   p + "self_attn.out_proj.weight": (d, d), p + "self_attn.out_proj.bias": (d,),
                   p + "self_attn_layer_norm.weight": (d,), p + "self_attn_layer_norm.bias": (d,),
                   p + "fc1.weight": (effn, d), p + "fc1.bias": (effn,),
                   p + "fc2.weight": (d, effn), p + "fc2.bias": (d,),
                   p + "final_layer_norm.weight": (d,), p + "final_layer_norm.bias": (d,)}
    for i, out in enumerate((d, d, h)):
        p = f"audio_adapter.downsample_layers.{i}."
        shapes |= {p + "conv1d.weight": (d, d, 3), p + "conv1d.bias": (d,),
                   p + "linear1.weight": (2048, d), p + "linear1.bias": (2048,),
                   p + "linear2.weight": (out, 2048), p + "linear2.bias": (out,)}
    return shapes


@pytest.fixture(scope="module")
def meta_7b():
    with torch.device("meta"):
        return CovoAudioModel(published_config())


def test_7b_on_meta_has_exactly_the_published_names_and_shapes(meta_7b) -> None:
    got = {name: tuple(t.shape) for name, t in meta_7b.state_dict().items()}
    want = published_7b_shapes()
    assert sorted(set(got) - set(want)) == []
    assert sorted(set(want) - set(got)) == []
    assert {n: s for n, s in got.items() if want[n] != s} == {}


def test_7b_on_meta_allocates_nothing(meta_7b) -> None:
    assert all(p.is_meta for p in meta_7b.parameters())
    assert sum(p.numel() for p in meta_7b.parameters()) == pytest.approx(8.40e9, rel=0.01)


def test_adapter_takes_50hz_encoder_frames_to_6_25hz() -> None:
    adapter = AudioAdapter(16, 24, downsample=8)
    assert len(adapter.downsample_layers) == 3
    out = adapter(torch.zeros(1, 1500, 16))  # 30 s of Whisper frames
    assert out.shape == (1, 188, 24)
    assert adapter(torch.zeros(1, 8, 16)).shape == (1, 1, 24)  # one 160 ms step


def test_adapter_refuses_a_downsample_that_is_not_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        AudioAdapter(16, 24, downsample=6)
