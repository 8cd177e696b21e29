"""Helpers for the covo tests: a tiny checkpoint in the published layout, configs, a token2wav stand-in.

The checkpoint is written once per test session (random weights, a byte-level BPE tokenizer with
the checkpoint's special tokens) and copied by tests that damage it.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from duplex.config import Config, load_config

_CACHE: dict[str, Path] = {}

SMALL = {"system_prompt": "You are Covo.", "context_tokens": 512, "refill_keep_tokens": 200,
         "max_reply_tokens": 120, "encoder_window_steps": 8, "cpu_threads": 1}


def tiny_checkpoint(factory: pytest.TempPathFactory) -> Path:
    """The session's tiny covo_audio checkpoint folder (do not modify; copy it)."""
    if "tiny" not in _CACHE:
        from duplex.backbones.covo.tiny import write_tiny_checkpoint

        folder = factory.mktemp("covo") / "tiny-covo"
        write_tiny_checkpoint(folder)
        _CACHE["tiny"] = folder
    return _CACHE["tiny"]


def copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def covo_config(checkpoint: Path, mode: str = "turn", **covo: Any) -> Config:
    """Config for the covo backbone on the tiny checkpoint (CPU, small context)."""
    section = {**SMALL, "checkpoint": str(checkpoint), "mode": mode, "device": "cpu", **covo}
    return load_config(None, overrides={"backbone": "covo", "covo": section})


STANDIN_DECODE = '''
"""Stand-in for Covo-Audio's token2wav/decode.py: same functions, same call signature, same lengths.

The release decodes [291 prompt tokens, *llm_tokens] through a x4 upsampler (4 latent frames per
token, 240 samples per frame at 24 kHz) and cuts the output at the prompt latent's 1167 frames,
not at 4 x 291 = 1164: M units give 4M - 3 frames, M x 960 - 720 samples, and the kept part ends
with the last unit. This stand-in does the same arithmetic on a signal whose every unit is a
tone of its own (phase from the unit's own start), so a caller's shift or padding shows.
"""
import json
import math

import numpy as np

CALLS = []
PROMPT_TOKENS = 291
PROMPT_LATENT_FRAMES = 1167
UPSAMPLE = 4
HOP = 240


class _Cfg:
    class data:
        class audio:
            sample_rate = 24000
            hop_size = 480


def init_model(args, decode_device):
    json.load(open(args.decode_model_config))
    open(args.decode_load_path, "rb").read()
    return {"device": decode_device}, _Cfg()


def unit_audio(tok):
    t = np.arange(UPSAMPLE * HOP) / 24000.0
    return 0.3 * np.sin(2 * math.pi * (200 + 10 * (tok % 50)) * t)


def decode(llm_tokens, prompt_dir, model, config):
    CALLS.append(list(llm_tokens))
    tokens = [0] * PROMPT_TOKENS + list(llm_tokens)
    full = np.concatenate([unit_audio(tok) for tok in tokens])  # 4 x 240 samples per token
    wav = full[PROMPT_LATENT_FRAMES * HOP:]
    return {"wav": wav.astype(np.float32), "sample_rate": 24000}
'''


def token2wav_standin(root: Path) -> dict[str, str]:
    """A fake Covo-Audio clone with token2wav/decode.py; returns the covo.vocoder_* config keys."""
    pkg = root / "token2wav"
    (pkg / "prompt").mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "decode.py").write_text(textwrap.dedent(STANDIN_DECODE))
    (pkg / "config.json").write_text('{"data": {"audio": {"sample_rate": 24000, "hop_size": 480}}}')
    weights = root / "ckpt" / "model.pt"
    weights.parent.mkdir(exist_ok=True)
    weights.write_bytes(b"stand-in")
    return {"vocoder_repo": str(root), "vocoder_checkpoint": str(weights), "vocoder_engine": "release"}
