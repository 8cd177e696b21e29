"""The `covo` backbone: our implementation of the Covo-Audio architecture on the duplex protocol.

Importing this package stays cheap (no torch); `load_covo` pulls in torch and transformers.

    config.py     the `covo:` config section (no torch)
    arch.py       the covo_audio model: Qwen2 LLM + Whisper encoder + audio adapter (published names)
    loader.py     checkpoint folder -> model + tokenizer, with one-line CheckpointErrors
    features.py   log-mel features and the streaming encoder window
    decoder.py    static-KV-cache decode (CUDA graphs / torch.compile) and the transformers baseline
    vocab.py      token ids <-> runtime tokens, prompts
    native.py     native full-duplex mode: one user frame + four tokens per step
    turn.py       turn mode: a floor policy (policy.floor) around the half-duplex chat model
    vocoder.py    adapter to a local token2wav installation; silence when none is configured
    factory.py    build the Model from config
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from duplex.backbones.base import Model
    from duplex.backbones.covo.config import CovoConfig
    from duplex.backbones.registry import Resolver
    from duplex.backbones.tiny_fd.config import TinyFdConfig
    from duplex.config import PolicyConfig

__all__ = ["load_covo"]


def load_covo(covo: CovoConfig, policy: PolicyConfig, tiny_fd: TinyFdConfig | None = None, *,
              resolve: Resolver) -> Model:
    """Build the covo backbone and its vocoder from the `covo:` section (turn mode: and `policy:`, whose
    `floor` may be tiny-fd, configured by `tiny_fd:`); imports torch."""
    from duplex.backbones import model_imports
    from duplex.backbones.covo.factory import build_model

    model_imports.ensure()  # sessions that load together must not race on transformers' lazy names
    return build_model(covo, policy, tiny_fd, resolve)
