"""Checkpoint folder -> covo_audio model and tokenizer, from local files only.

A checkpoint folder is what the Hugging Face CLI downloads for Covo-Audio-Chat: `config.json`
(model_type covo_audio, llm_config, encoder_config, audio_token_index, adapter_downsample), one
or more `*.safetensors` (optionally with `model.safetensors.index.json`) and the Qwen2 tokenizer
files, of which `tokenizer.json` is the one read here. Nothing here touches the network.

Every way a folder can be wrong ends in one CheckpointError naming the file: a missing file, a
config of another model_type, a tensor whose shape disagrees with config.json, a safetensors file
cut short (checked from its header before any tensor is read) or missing tensors. The model is
built on the meta device and the tensors are assigned straight from the files, converted to the
target dtype, so a 7B checkpoint never exists twice in memory.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from duplex.backbones.covo.arch import MODEL_TYPE, CovoAudioModel
from duplex.backbones.files import read_json_object
from duplex.errors import CheckpointError, one_line

INDEX = "model.safetensors.index.json"
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
    missing = sorted(set(expected) - loaded)
    if missing:
        where = folder / INDEX if (folder / INDEX).exists() else (files[0] if len(files) == 1 else folder)
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise CheckpointError(where, f"missing {len(missing)} tensors: {', '.join(missing[:3])}{more}")
    _rebuild_buffers(model, device)
    model.eval().requires_grad_(False)
    return Checkpoint(folder, config, model, tokenizer, tok_path)


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
