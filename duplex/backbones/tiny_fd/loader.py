"""Build the tiny-fd Model (backbone + frame-bank vocoder) from a checkpoint folder.

`tiny_fd.checkpoint: ''` means the checkpoint shipped in the repository (checkpoints/tiny-fd), so
the built-in model works from any working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from audio_io.format import steps_covering
from duplex.backbones.base import Model
from duplex.backbones.tiny_fd.checkpoint import load_weights, read_config, read_frames
from duplex.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from duplex.backbones.registry import Resolver
    from duplex.backbones.tiny_fd.barge_in import RuleSettings
    from duplex.backbones.tiny_fd.config import TinyFdConfig

SHIPPED = Path(__file__).resolve().parents[3] / "checkpoints" / "tiny-fd"


def checkpoint_dir(t: TinyFdConfig, resolve: Resolver) -> Path:
    return resolve(t.checkpoint) if t.checkpoint else SHIPPED


def load_tiny_fd(t: TinyFdConfig, *, resolve: Resolver) -> Model:
    """The tiny-fd model from the `tiny_fd:` section (paths resolved against the config file)."""
    return load_folder(checkpoint_dir(t, resolve), context_steps=t.context_steps, window_steps=t.window_steps,
                       threads=t.threads, shift_threshold=t.shift_threshold, break_threshold=t.break_threshold,
                       rules=rule_settings(t, resolve))


def rule_settings(t: TinyFdConfig, resolve: Resolver = Path) -> RuleSettings:
    """The barge-in rules' settings from the `tiny_fd:` section (the cue model loaded when it is on)."""
    from duplex.audio_setup import detector
    from duplex.backbones.tiny_fd.barge_in import RuleSettings
    from duplex.backbones.tiny_fd.user_voice import USER_VOICE_AGGRESSIVENESS
    from duplex.cue.runtime import load_cue_model

    detector(t.vad, USER_VOICE_AGGRESSIVENESS, "tiny_fd")  # a detector that cannot be had is a config error now
    # the words feed the cue model: both are on by default, and `cues: false` alone turns both off
    cues = load_cue_model(t.cue_checkpoint, t.cue_words, resolve, "tiny_fd.cue_checkpoint") if t.cues else None
    return RuleSettings(turn_quiet_steps=steps_covering(t.turn_silence_s), cues=cues,
                        unfinished_quiet_steps=steps_covering(t.unfinished_silence_s), vad=t.vad)


def load_folder(folder: Path, *, context_steps: int = 48, window_steps: int = 16, threads: int = 1,
                shift_threshold: float = 0.5, break_threshold: float = 0.5, rules: RuleSettings | None = None) -> Model:
    """`rules`: None = the barge-in rules without the cue model (tests and benchmarks of the network)."""
    if not folder.is_dir():
        raise CheckpointError(folder, "no such checkpoint folder")
    meta = read_config(folder)
    from duplex.backbones import model_imports

    model_imports.ensure()  # sessions that load together must not race on transformers' lazy names
    import torch

    from duplex.backbones.framebank import FrameBank, FrameBankVocoder
    from duplex.backbones.tiny_fd.barge_in import NO_CUES
    from duplex.backbones.tiny_fd.model import SLOTS, NetConfig, TinyFd
    from duplex.backbones.tiny_fd.runtime import TinyFdBackbone

    if threads:
        torch.set_num_threads(threads)
    try:
        net_cfg = NetConfig(**meta["net"])
    except TypeError as exc:
        raise CheckpointError(folder / "config.json", f"corrupt ({exc})") from exc
    if 1 + SLOTS * context_steps > net_cfg.max_positions:
        raise ConfigError(f"tiny_fd.context_steps = {context_steps} needs {1 + SLOTS * context_steps} positions; "
                          f"{folder / 'config.json'} allows {net_cfg.max_positions}")
    net = TinyFd(net_cfg)
    load_weights(folder, net)
    frames = read_frames(folder, net_cfg.n_units)
    bank = FrameBank(capacity=net_cfg.n_units)
    bank.add(frames.reshape(-1))
    backbone = TinyFdBackbone(net, meta["replies"], bank, context_steps=context_steps, window_steps=window_steps,
                              shift_threshold=shift_threshold, break_threshold=break_threshold,
                              rules=rules or NO_CUES)
    return Model(backbone=backbone, vocoder=FrameBankVocoder(bank), name=f"tiny-fd/{folder.name}")
