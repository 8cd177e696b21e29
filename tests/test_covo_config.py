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


def test_an_incompatible_transformers_or_torchaudio_is_refused_in_one_line_naming_the_version() -> None:
    from duplex.backbones.covo.deps import check_versions

    check_versions({"transformers": "5.24.0", "torch": "2.8.0+cu128", "torchaudio": "2.8.0+cu128"})
    check_versions({"transformers": "5.0.0rc2", "torch": "2.13.0+cpu", "torchaudio": None})
    with pytest.raises(ConfigError, match=r"transformers >= 5.0, found transformers 4.57.1: pip install") as info:
        check_versions({"transformers": "4.57.1", "torch": "2.8.0", "torchaudio": None})
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="not installed"):
        check_versions({"transformers": None})
    with pytest.raises(ConfigError, match=r"torchaudio 2.8.0 does not belong to torch 2.13.0\+cpu"):
        check_versions({"transformers": "5.24.0", "torch": "2.13.0+cpu", "torchaudio": "2.8.0"})


def test_the_installed_versions_pass_the_check() -> None:
    pytest.importorskip("transformers")
    from duplex.backbones.covo.deps import check_versions

    check_versions()
