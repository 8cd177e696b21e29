"""Backbones (the models the engine drives) and the factory that builds one from config.

The kinds are listed in `registry` (each registers beside its config section). Each is imported
only when chosen, so the core stays light: torch and transformers load for model backbones alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from duplex.backbones.base import TOKENS_PER_STEP, Backbone, Model, Vocoder
from duplex.backbones.registry import REGISTRY
from duplex.errors import ConfigError

if TYPE_CHECKING:  # a Config is passed in: duplex.config is loaded by then
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
    entry = REGISTRY.get(cfg.backbone)
    if entry is None:
        raise ConfigError(f"backbone = {cfg.backbone!r} is not available in this build")
    return entry.load(cfg, cfg.resolve)
