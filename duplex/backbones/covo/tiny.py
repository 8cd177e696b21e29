"""Write a tiny random covo_audio checkpoint in the published layout (tests, CPU benchmark).

Same files as the released model: config.json (model_type covo_audio), two safetensors shards with
their index, and Qwen2-style tokenizer files (tokenizer.json, vocab.json, merges.txt,
tokenizer_config.json) whose special tokens include the audio markers and the control tokens.
The tokenizer is a byte-level BPE trained here on a few sentences: no hub access.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begofcAUDIO|>", "<|cAUDIO|>", "<|endofcAUDIO|>",
                  "<|THINK|>", "<|SHIFT|>", "<|BREAK|>", "<|EOT|>")
_CORPUS = [
    "You are Covo, a helpful voice assistant. Listen to the user and reply in speech.",
    "What is the weather like in Paris today? It is sunny and warm.",
    "Hello, how can I help you? Please tell me more about it.",
    "system user assistant",
]


def build_tokenizer(vocab_size: int = 320) -> Any:
    """A byte-level BPE with the checkpoint's special tokens (tokenizers.Tokenizer)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS, trainer)
    return tok


def write_tiny_checkpoint(folder: Path, *, speech_units: int = 64, seed: int = 0,
                          max_source_positions: int = 128) -> dict[str, Any]:
    """Create `folder` with a random tiny model; return its config.json mapping."""
    import torch
    from safetensors.torch import save_file

    from duplex.backbones.covo.arch import CovoAudioModel, tiny_config

    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    tok.save(str(folder / "tokenizer.json"))
    tok.model.save(str(folder))  # vocab.json + merges.txt
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "Qwen2Tokenizer", "model_max_length": 32768, "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>", "additional_special_tokens": list(SPECIAL_TOKENS[3:]),
    }, indent=2))
    config = tiny_config(tok.get_vocab_size(with_added_tokens=True), speech_units,
                         max_source_positions=max_source_positions)
    config["audio_token_index"] = tok.get_vocab_size(with_added_tokens=True)  # the speech offset, as released
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    torch.manual_seed(seed)
    model = CovoAudioModel(config)
    with torch.no_grad():  # a wider spread than the default init, so random replies vary
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() >= 2:
                p.normal_(0.0, 0.08)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    shards = {"model-00001-of-00002.safetensors": {k: v for k, v in state.items() if k.startswith("llm.")},
              "model-00002-of-00002.safetensors": {k: v for k, v in state.items() if not k.startswith("llm.")}}
    weight_map = {}
    for name, tensors in shards.items():
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, name))
    total = sum(v.numel() * v.element_size() for v in state.values())
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return config
