"""Shared pieces for the tiny-fd tests: a small random-weight network and its frame bank."""

from __future__ import annotations

import numpy as np

from duplex.backbones.framebank import FrameBank

REPLIES = [(0, 30), (30, 25), (55, 20)]


def tiny_net(seed: int = 0):  # noqa: ANN201 - torch stays a local import
    import torch

    from duplex.backbones.tiny_fd.model import NetConfig, TinyFd

    torch.set_num_threads(1)  # a shared 2-core machine: spinning OpenMP workers make it slower, not faster
    torch.manual_seed(seed)
    return TinyFd(NetConfig(n_units=75, hidden=64, layers=2, heads=2, kv_heads=1, ffn=128, enc_width=32))


def tiny_bank(seed: int = 0) -> FrameBank:
    rng = np.random.default_rng(seed)
    bank = FrameBank(capacity=75)
    bank.add((rng.standard_normal(75 * 640) * 0.1).astype(np.float32))
    return bank


def speechy(seconds: float, seed: int = 0) -> np.ndarray:
    """Bursts of noise and silence: something for the encoder to react to."""
    rng = np.random.default_rng(seed)
    n = round(seconds * 16_000)
    env = np.repeat(rng.random(n // 1600 + 1) < 0.5, 1600)[:n]
    return (rng.standard_normal(n) * 0.1 * env).astype(np.float32)
