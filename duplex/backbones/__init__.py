"""Backbones (the models the engine drives) and the factory that builds one from config.

Each kind is imported only when chosen, so the core stays light: torch and transformers load for
model backbones alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from duplex.backbones.base import TOKENS_PER_STEP, Backbone, Model, Vocoder
from duplex.errors import ConfigError

if TYPE_CHECKING:  # duplex.config imports duplex.backbones.covo.config: no cycle at run time
    from duplex.config import Config

__all__ = ["TOKENS_PER_STEP", "Backbone", "Model", "Vocoder", "load_model"]


def load_model(cfg: Config) -> Model:
    """The backbone the config names; a missing model dependency is one line saying what to install."""
    try:
        return _load(cfg)
    except ModuleNotFoundError as exc:
        if exc.name not in _MODEL_DEPENDENCIES:
            raise
        raise ConfigError(
            f"backbone = {cfg.backbone!r} needs {exc.name}: install the CPU build of torch first "
            f"(pip install torch --index-url https://download.pytorch.org/whl/cpu), then pip install 'duplex[model]'; "
            f"or run without a model: --set backbone=policy"
        ) from exc


_MODEL_DEPENDENCIES = {"torch", "transformers", "safetensors", "tokenizers"}


def _load(cfg: Config) -> Model:
    base = Path(cfg.base_dir)
    if cfg.backbone == "policy":
        from duplex.backbones.policy import load_policy

        return load_policy(cfg.policy, base, cfg.tiny_fd, cfg.resolve)
    if cfg.backbone == "tiny-fd":
        from duplex.backbones.tiny_fd.loader import load_tiny_fd

        return load_tiny_fd(cfg)
    if cfg.backbone == "covo":
        from duplex.backbones.covo import load_covo

        return load_covo(cfg)
    raise ConfigError(f"backbone = {cfg.backbone!r} is not available in this build")
