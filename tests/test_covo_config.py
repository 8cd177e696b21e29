"""The covo config section: validated like every other, and importing it never imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from duplex.config import dump_yaml, load_config
from duplex.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_importing_duplex_its_config_and_cli_does_not_import_torch() -> None:
    code = ("import sys, duplex, duplex.config, duplex.cli, duplex.backbones, duplex.backbones.covo\n"
            "from duplex.config import load_config; load_config(None, overrides={'backbone': 'covo'})\n"
            "print(sorted(m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_covo_keys_are_checked_and_shown_with_their_docs() -> None:
    cfg = load_config(None, overrides={"backbone": "covo", "covo": {"mode": "native", "context_tokens": 2048}})
    assert cfg.covo.mode == "native" and cfg.covo.context_tokens == 2048
    with pytest.raises(ConfigError, match="covo.mode = 'half' is not one of turn, native"):
        load_config(None, overrides={"covo": {"mode": "half"}})
    with pytest.raises(ConfigError, match="unknown key 'covo.chekpoint'"):
        load_config(None, overrides={"covo": {"chekpoint": "x"}})
    assert "  encoder_window_steps: 16  # native: audio re-encoded each step" in dump_yaml(cfg)


@pytest.mark.parametrize("name", ["covo-audio-chat.yaml", "covo-native.yaml"])
def test_example_configs_load(name: str) -> None:
    cfg = load_config(EXAMPLES / name)
    assert cfg.backbone == "covo"
    assert cfg.resolve(cfg.covo.checkpoint).parts[-2:-1] == ("checkpoints",)


def test_impossible_device_settings_name_the_key() -> None:
    pytest.importorskip("torch")
    from duplex.backbones.covo.factory import parse_interleave, runtime

    cfg = load_config(None, overrides={"covo": {"device": "cpu", "optimise": "graphs"}})
    with pytest.raises(ConfigError, match="covo.optimise = graphs needs a CUDA device"):
        runtime(cfg.covo)
    assert parse_interleave("5,15") == (5, 15) and parse_interleave("") is None
    with pytest.raises(ConfigError, match="covo.interleave"):
        parse_interleave("five")
