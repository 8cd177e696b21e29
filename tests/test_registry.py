"""One backbone registry: the config's choices come from it, load_model dispatches through it, and each
loader takes only its own config sections and a path resolver."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from duplex.backbones import load_model, registry
from duplex.backbones.registry import REGISTRY, BackboneEntry, register
from duplex.config import Config, PolicyConfig, load_config
from duplex.errors import ConfigError


def test_the_backbone_key_offers_exactly_the_registered_backbones() -> None:
    backbone = next(f for f in dataclasses.fields(Config) if f.name == "backbone")
    assert backbone.metadata["choices"] == registry.choices() == ("covo", "policy", "tiny-fd")
    assert all(REGISTRY[name].doc in backbone.metadata["doc"] for name in registry.choices())
    with pytest.raises(ConfigError, match="backbone = 'gpt' is not one of covo, policy, tiny-fd"):
        load_config(sets=["backbone=gpt"])


@pytest.mark.parametrize("name", ["covo", "policy", "tiny-fd"])
def test_loaders_take_their_sections_and_a_resolver_not_the_root_config(name: str) -> None:
    entry = REGISTRY[name]
    module, _, func = entry.loader.partition(":")
    params = list(inspect.signature(getattr(importlib.import_module(module), func)).parameters.values())
    assert [p.name for p in params if p.kind is p.KEYWORD_ONLY] == ["resolve"]
    positional = [p for p in params if p.kind is not p.KEYWORD_ONLY]
    assert len(positional) == len(entry.sections) and entry.sections[0] == name.replace("-", "_")
    assert all(str(p.annotation) != "Config" for p in params)  # never the root Config
    assert all(hasattr(Config(), s) for s in entry.sections)


def fake_loader(policy: PolicyConfig, *, resolve: registry.Resolver) -> object:
    return ("fake", policy, resolve("reply.wav"))


def test_load_model_dispatches_through_the_registry(tmp_path: Path) -> None:
    entry = register(BackboneEntry("fake", "a test double", f"{__name__}:fake_loader", ("policy",)))
    try:
        cfg = dataclasses.replace(Config(), backbone="fake", base_dir=str(tmp_path))
        assert load_model(cfg) == ("fake", cfg.policy, tmp_path / "reply.wav")
        with pytest.raises(ValueError, match="already registered"):
            register(dataclasses.replace(entry, loader="elsewhere:load"))
        assert register(entry) is entry  # registering the same entry again is harmless
    finally:
        REGISTRY.pop("fake")
    with pytest.raises(ConfigError, match="backbone = 'fake' is not available"):
        load_model(dataclasses.replace(Config(), backbone="fake"))


@pytest.mark.parametrize("first", ["duplex.backbones.covo.config", "duplex.backbones.tiny_fd.config",
                                   "duplex.backbones.covo", "duplex.config"])
def test_any_import_order_works_in_a_fresh_process(first: str) -> None:
    code = (f"import {first}\nfrom duplex.config import Config, load_config\n"
            "assert load_config(sets=['backbone=covo', 'covo.mode=native']).covo.mode == 'native'\n"
            "import sys; assert 'torch' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
