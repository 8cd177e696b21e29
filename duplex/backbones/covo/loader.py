"""Checkpoint folder -> covo_audio model and tokenizer, from local files only.

A checkpoint folder is what the Hugging Face CLI downloads for Covo-Audio-Chat: `config.json`
(model_type covo_audio, llm_config, encoder_config, audio_token_index, adapter_downsample), one
or more `*.safetensors` (optionally with `model.safetensors.index.json`) and the Qwen2 tokenizer
files, of which `tokenizer.json` is the one read here. Nothing here touches the network.

Every way a folder can be wrong ends in one CheckpointError naming the file: a missing file, a
config of another model_type, a tensor whose shape disagrees with config.json, a safetensors file
cut short (checked from its header before any tensor is read) or missing core tensors. The release
loads with `strict=False`, which hides a mismatch; here every tensor the model lacks and every
tensor the files hold that the model does not know is named: a missing `llm.*`, `encoder.*` or
`audio_adapter.*` tensor is an error, a known-optional one (Whisper's fixed sinusoidal position
table, which is recomputed) and unexpected ones are warnings listing them. The model is
built on the meta device and the tensors are assigned straight from the files, converted to the
target dtype, so a 7B checkpoint never exists twice in memory.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from duplex.backbones.covo.arch import MODEL_TYPE, CovoAudioModel
from duplex.backbones.files import read_json_object
from duplex.errors import CheckpointError, one_line

log = logging.getLogger(__name__)
INDEX = "model.safetensors.index.json"
CORE = ("llm.", "encoder.", "audio_adapter.")
# Tensors a checkpoint may leave out because they are a fixed function of the config: name -> filler.
OPTIONAL = {"encoder.embed_positions.weight": "sinusoids"}
_DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


@dataclass(slots=True)
class Checkpoint:
    folder: Path
    config: dict[str, Any]
    model: CovoAudioModel
    tokenizer: Any  # tokenizers.Tokenizer
    tokenizer_path: Path


def load_checkpoint(folder: Path, *, device: torch.device, dtype: torch.dtype) -> Checkpoint:
    """Read and check everything in `folder`; return the model on `device` in `dtype`."""
    folder = Path(os.path.normpath(folder))  # messages name "checkpoints/x", not "examples/../checkpoints/x"
    if not folder.is_dir():
        raise CheckpointError(folder, "no such checkpoint folder (checkpoints/README.md says how to fetch one)")
    config = read_config(folder / "config.json")
    tokenizer, tok_path = load_tokenizer(folder)
    files = weight_files(folder)
    headers = {f: read_header(f) for f in files}
    with torch.device("meta"):
        try:
            model = CovoAudioModel(config)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(folder / "config.json", f"cannot build the model: {one_line(exc)}") from exc
    expected = {name: tuple(p.shape) for name, p in model.state_dict().items()}
    for path, header in headers.items():
        for name, (_, shape) in header.items():
            if name in expected and shape != expected[name]:
                raise CheckpointError(path, f"tensor {name} has shape {list(shape)}, "
                                            f"config.json implies {list(expected[name])}")
    loaded: set[str] = set()
    for path, header in headers.items():
        wanted = [n for n in header if n in expected]
        _assign(model, path, wanted, device, dtype)
        loaded.update(wanted)
    unexpected = sorted({n for h in headers.values() for n in h} - set(expected))
    if unexpected:
        log.warning("covo: %s: %d tensors the model does not use, ignored: %s", folder, len(unexpected),
                    named(unexpected))
    missing = sorted(set(expected) - loaded)
    optional = [n for n in missing if n in OPTIONAL]
    core = [n for n in missing if n not in OPTIONAL]
    if core:
        where = folder / INDEX if (folder / INDEX).exists() else (files[0] if len(files) == 1 else folder)
        parts = ", ".join(p.rstrip(".") for p in CORE if any(n.startswith(p) for n in core)) or "other"
        raise CheckpointError(where, f"missing {len(core)} {parts} tensors: {named(core)}")
    for name in optional:
        log.warning("covo: %s: no %s in the checkpoint, computed from config.json (%s)", folder, name, OPTIONAL[name])
        _fill_optional(model, name, device, dtype)
    _rebuild_buffers(model, device)
    model.eval().requires_grad_(False)
    return Checkpoint(folder, config, model, tokenizer, tok_path)


def named(names: list[str], limit: int = 5) -> str:
    """'a, b, c and 7 more': tensor names for a one-line message."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _fill_optional(model: CovoAudioModel, name: str, device: torch.device, dtype: torch.dtype) -> None:
    """Whisper's encoder positions: the fixed sinusoid table it is initialised with (and never trains)."""
    param = model.get_parameter(name)
    length, channels = param.shape
    half = channels // 2
    inv = torch.exp(-math.log(10000) / (half - 1) * torch.arange(half, dtype=torch.float32))
    scaled = torch.arange(length, dtype=torch.float32)[:, None] * inv[None]
    table = torch.cat([scaled.sin(), scaled.cos()], dim=1).to(device, dtype)
    module_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(module_name), attr, torch.nn.Parameter(table, requires_grad=False))


def read_config(path: Path) -> dict[str, Any]:
    config = read_json_object(path, "a covo_audio checkpoint needs config.json")
    if config.get("model_type") != MODEL_TYPE:
        raise CheckpointError(path, f"model_type is {config.get('model_type')!r}, expected {MODEL_TYPE!r}")
    for key in ("llm_config", "encoder_config"):
        if not isinstance(config.get(key), dict):
            raise CheckpointError(path, f"has no {key} object")
    return config


def load_tokenizer(folder: Path) -> tuple[Any, Path]:
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.exists():
        raise CheckpointError(path, "missing (the Qwen2 tokenizer of the checkpoint)")
    try:
        return Tokenizer.from_file(str(path)), path
    except Exception as exc:  # tokenizers raises a bare Exception on bad files
        raise CheckpointError(path, f"not a tokenizers file ({one_line(exc)})") from exc


def weight_files(folder: Path) -> list[Path]:
    index = folder / INDEX
    if index.exists():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(index, f"not a safetensors index ({one_line(exc)})") from exc
        files = [folder / name for name in sorted(set(weight_map.values()))]
        for f in files:
            if not f.exists():
                raise CheckpointError(f, f"missing (listed in {INDEX})")
        return files
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise CheckpointError(folder / "model.safetensors", "missing: no *.safetensors weight files in the folder")
    return files


def read_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor names -> (dtype, shape), after checking the file holds all the bytes it declares."""
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(path, f"truncated: {size} bytes, not even a safetensors header")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                raise CheckpointError(path, f"truncated: header declares {n} bytes, file has {size}")
            raw = json.loads(f.read(n))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"not a safetensors file ({one_line(exc)})") from exc
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    end = 0
    for name, info in raw.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, stop) = info["dtype"], tuple(int(d) for d in info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(path, f"bad header entry for {name}") from exc
        count = 1
        for d in shape:
            count *= d
        if stop - begin != count * _DTYPE_SIZES.get(dtype, 0) and dtype in _DTYPE_SIZES:
            raise CheckpointError(path, f"bad header: {name} has {stop - begin} bytes for shape {list(shape)}")
        out[name] = (dtype, shape)
        end = max(end, stop)
    if 8 + n + end > size:
        raise CheckpointError(path, f"truncated: {size} bytes, the header promises {8 + n + end}")
    return out


def _assign(model: torch.nn.Module, path: Path, names: list[str], device: torch.device, dtype: torch.dtype) -> None:
    from safetensors import SafetensorError, safe_open

    state: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            for name in names:
                t = f.get_tensor(name)
                state[name] = t.to(dtype) if t.is_floating_point() else t
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(path, f"cannot read tensors ({one_line(exc)})") from exc
    model.load_state_dict(state, strict=False, assign=True)


def _rebuild_buffers(model: CovoAudioModel, device: torch.device) -> None:
    """Non-persistent buffers (rotary inv_freq) are not in checkpoints: compute them on `device`."""
    rotary = model.llm.model.rotary_emb
    model.llm.model.rotary_emb = type(rotary)(model.llm.config).to(device)
    left = [n for n, b in model.named_buffers() if b.is_meta]
    if left:
        raise RuntimeError(f"buffers left on the meta device: {left}")
