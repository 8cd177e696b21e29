"""The covo_audio architecture, with the parameter names of the published checkpoint.

    llm            transformers Qwen2ForCausalLM      (7B: hidden 3584, 28 layers, vocab 168055)
    encoder        transformers WhisperEncoder        (large-v3: 128 mel bins, d_model 1280, 32 layers)
    audio_adapter  three stride-2 DownsampleLayers    (50 Hz -> 6.25 Hz, 1280 -> LLM width)

Each DownsampleLayer is Conv1d(k=3, s=2, p=1), ReLU, Linear(-> 2048), ReLU, Linear; the first ones
keep the encoder width, the last projects to the LLM width. The names (`llm.*`, `encoder.*`,
`audio_adapter.downsample_layers.{i}.conv1d|linear1|linear2.*`) are what lets a checkpoint folder
load with no renaming. The model is a plain nn.Module: the runtime never trains it and drives
the LLM through its own decode path (decoder.py), so nothing of PreTrainedModel is needed.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

ADAPTER_HIDDEN = 2048
MODEL_TYPE = "covo_audio"


class DownsampleLayer(nn.Module):
    """Halve the frame rate: (B, T, C_in) -> (B, ceil(T/2), C_out)."""

    def __init__(self, input_dim: int, output_dim: int, hidden_dim: int = ADAPTER_HIDDEN) -> None:
        super().__init__()
        self.conv1d = nn.Conv1d(input_dim, input_dim, kernel_size=3, stride=2, padding=1)
        self.linear1 = nn.Linear(input_dim, hidden_dim)
        self.linear2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1d(x.transpose(1, 2)).transpose(1, 2)
        return self.linear2(torch.relu(self.linear1(torch.relu(x))))


class AudioAdapter(nn.Module):
    """log2(downsample) DownsampleLayers; only the last changes the width."""

    def __init__(self, input_dim: int, output_dim: int, downsample: int = 8) -> None:
        super().__init__()
        if downsample < 2 or downsample & (downsample - 1):
            raise ValueError(f"adapter_downsample must be a power of two >= 2, got {downsample}")
        n = downsample.bit_length() - 1
        dims = [input_dim] * n + [output_dim]
        self.downsample_layers = nn.ModuleList(DownsampleLayer(dims[i], dims[i + 1]) for i in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.downsample_layers:
            x = layer(x)
        return x


class CovoAudioModel(nn.Module):
    """The three parts of a covo_audio checkpoint, under their published names."""

    def __init__(self, config: dict[str, Any]) -> None:
        from transformers import Qwen2ForCausalLM
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        super().__init__()
        llm_config, encoder_config = hf_configs(config)
        self.audio_token_index = int(config.get("audio_token_index", -1))
        self.llm = Qwen2ForCausalLM(llm_config)
        self.encoder = WhisperEncoder(encoder_config)
        self.audio_adapter = AudioAdapter(encoder_config.d_model, llm_config.hidden_size,
                                          int(config.get("adapter_downsample", 8)))

    @property
    def hidden_size(self) -> int:
        return int(self.llm.config.hidden_size)

    @property
    def vocab_size(self) -> int:
        return int(self.llm.config.vocab_size)


def hf_configs(config: dict[str, Any]) -> tuple[Any, Any]:
    """(Qwen2Config, WhisperConfig) from a covo_audio config.json mapping."""
    from transformers import Qwen2Config, WhisperConfig

    llm = dict(config["llm_config"])
    enc = dict(config["encoder_config"])
    for sub in (llm, enc):
        for key in ("_name_or_path", "architectures", "torch_dtype", "dtype", "model_type", "transformers_version"):
            sub.pop(key, None)
    llm.setdefault("tie_word_embeddings", False)
    llm_config = Qwen2Config(**llm)
    encoder_config = WhisperConfig(**enc)
    for c in (llm_config, encoder_config):
        c._attn_implementation = "sdpa"
    return llm_config, encoder_config


_QWEN2_7B: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 3584,
    "initializer_range": 0.02, "intermediate_size": 18944, "max_position_embeddings": 131072,
    "max_window_layers": 28, "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000.0, "sliding_window": 131072,
    "tie_word_embeddings": False, "use_cache": True, "use_sliding_window": False, "vocab_size": 168055,
}

_WHISPER_LARGE_V3_ENCODER: dict[str, Any] = {
    "_name_or_path": "openai/whisper-large-v3", "model_type": "whisper", "activation_function": "gelu",
    "activation_dropout": 0.0, "attention_dropout": 0.0, "dropout": 0.0, "d_model": 1280,
    "encoder_attention_heads": 20, "encoder_ffn_dim": 5120, "encoder_layers": 32, "encoder_layerdrop": 0.0,
    "decoder_attention_heads": 20, "decoder_ffn_dim": 5120, "decoder_layers": 32, "num_hidden_layers": 32,
    "max_source_positions": 1500, "max_target_positions": 448, "num_mel_bins": 128, "scale_embedding": False,
    "vocab_size": 51866,
}


def published_config() -> dict[str, Any]:
    """config.json of the released Covo-Audio-Chat (7B), as our loader reads it."""
    return {
        "architectures": ["CovoAudioForCausalLM"],
        "model_type": MODEL_TYPE,
        "llm_config": copy.deepcopy(_QWEN2_7B),
        "encoder_config": copy.deepcopy(_WHISPER_LARGE_V3_ENCODER),
        "audio_token_index": 151671,  # the speech offset: len(tokenizer), as the release's config says
        "adapter_downsample": 8,
        "dtype": "bfloat16",
    }


def tiny_config(text_vocab: int, speech_units: int = 64, *, max_source_positions: int = 128) -> dict[str, Any]:
    """The same architecture at toy size, for tests and the CPU benchmark (random weights)."""
    cfg = published_config()
    cfg["llm_config"].update(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                             num_hidden_layers=2, max_window_layers=2, vocab_size=text_vocab + speech_units,
                             max_position_embeddings=8192, sliding_window=8192, bos_token_id=0, eos_token_id=0)
    cfg["encoder_config"].update(d_model=64, encoder_attention_heads=4, encoder_ffn_dim=128, encoder_layers=2,
                                 decoder_attention_heads=4, decoder_ffn_dim=128, decoder_layers=2,
                                 num_hidden_layers=2, max_source_positions=max_source_positions)
    cfg["dtype"] = "float32"
    return cfg
