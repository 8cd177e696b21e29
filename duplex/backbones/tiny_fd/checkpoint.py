"""tiny-fd's checkpoint folder: config.json, model.safetensors (weights), units.safetensors (vocoder).

The vocoder data is the repertoire's 40 ms frames as int16; a unit id indexes a frame, as in the
frame-bank vocoder. A missing or damaged file ends with one line naming it (CheckpointError).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from audio_io.format import UNIT_SAMPLES
from duplex.backbones.files import read_json_object
from duplex.errors import CheckpointError
from duplex.fields import show

FILES = ("config.json", "model.safetensors", "units.safetensors")


def save(folder: Path, model: Any, frames: np.ndarray, meta: dict[str, Any]) -> None:
    from safetensors.numpy import save_file
    from safetensors.torch import save_model

    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, str(folder / "model.safetensors.partial"))
    pcm = np.clip(np.round(frames * 32767), -32768, 32767).astype(np.int16)
    save_file({"frames": pcm}, str(folder / "units.safetensors.partial"))
    (folder / "config.json.partial").write_text(json.dumps(meta, indent=1) + "\n")
    for name in FILES:
        (folder / f"{name}.partial").replace(folder / name)


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    meta = read_json_object(path, "train one: duplex-train-tiny")
    if "net" not in meta or "replies" not in meta:
        raise CheckpointError(path, "corrupt (not a tiny-fd config)")
    n_units = check_net(path, meta["net"])["n_units"]
    replies = meta["replies"]
    if not (isinstance(replies, list) and replies and all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) for x in r)
            and r[0] >= 0 and r[1] > 0 and r[0] + r[1] <= n_units for r in replies)):
        raise CheckpointError(path, f"corrupt (replies must be [first unit, length] pairs within {n_units} units)")
    return meta


# The network shape config.json may hold: (default, lowest, highest), defaults as in model.NetConfig
# (a test keeps them equal). Checked before anything is built, so a damaged or hand-edited file is
# one line naming the key, not a traceback from torch or an allocation without limit.
NET_FIELDS: dict[str, tuple[int | None, int, int]] = {
    "n_units": (None, 1, 65_536), "hidden": (160, 8, 4096), "layers": (3, 1, 64), "heads": (4, 1, 64),
    "kv_heads": (2, 1, 64), "ffn": (432, 1, 65_536), "enc_width": (96, 1, 4096), "max_positions": (512, 16, 65_536),
}


def check_net(path: Path, net: object) -> dict[str, int]:
    """config.json's `net` object validated against NET_FIELDS; the full shape with defaults filled in."""
    if not isinstance(net, dict):
        raise CheckpointError(path, "corrupt (net must be a JSON object)")
    shape: dict[str, int] = {}
    for key, (default, lo, hi) in NET_FIELDS.items():
        value = net.get(key, default)
        if value is None:
            raise CheckpointError(path, f"net.{key} is missing")
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise CheckpointError(path, f"net.{key} = {show(value)} is not a whole number in [{lo}, {hi}]")
        shape[key] = value
    unknown = sorted(str(k) for k in net if k not in NET_FIELDS)
    if unknown:
        raise CheckpointError(path, f"net.{unknown[0][:40]}: unknown key")
    if shape["hidden"] % (2 * shape["heads"]):
        raise CheckpointError(path, f"net.hidden = {shape['hidden']} is not a multiple of 2 x net.heads "
                                    f"({shape['heads']})")
    if shape["kv_heads"] > shape["heads"] or shape["heads"] % shape["kv_heads"]:
        raise CheckpointError(path, f"net.kv_heads = {shape['kv_heads']} does not divide net.heads = {shape['heads']}")
    return shape


def read_frames(folder: Path, n_units: int) -> np.ndarray:
    from safetensors.numpy import load_file

    path = folder / "units.safetensors"
    if not path.exists():
        raise CheckpointError(path, "missing")
    try:
        pcm = load_file(str(path))["frames"]
    except Exception as exc:  # safetensors raises several kinds on a damaged file
        raise CheckpointError(path, f"corrupt ({exc.__class__.__name__})") from exc
    if pcm.shape != (n_units, UNIT_SAMPLES):
        raise CheckpointError(path, f"corrupt (frames {pcm.shape}, expected ({n_units}, {UNIT_SAMPLES}))")
    return pcm.astype(np.float32) / 32767.0


def load_weights(folder: Path, model: Any) -> None:
    from safetensors.torch import load_model

    path = folder / "model.safetensors"
    if not path.exists():
        raise CheckpointError(path, "missing")
    try:
        load_model(model, str(path))
    except Exception as exc:  # header errors, truncation, shape or key mismatches
        raise CheckpointError(path, f"corrupt ({exc.__class__.__name__})") from exc
