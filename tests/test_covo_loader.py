"""A checkpoint folder in the published layout loads; every way it can be broken is one line naming the file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from safetensors.torch import load_file, save_file  # noqa: E402

from duplex.backbones.covo.loader import load_checkpoint  # noqa: E402
from duplex.errors import CheckpointError  # noqa: E402
from tests.covo_fixtures import copy_checkpoint, tiny_checkpoint  # noqa: E402

CPU = torch.device("cpu")
LLM_SHARD = "model-00001-of-00002.safetensors"
OTHER_SHARD = "model-00002-of-00002.safetensors"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


def test_tiny_checkpoint_loads_with_every_tensor_from_the_files(tiny: Path) -> None:
    ckpt = load_checkpoint(tiny, device=CPU, dtype=torch.float32)
    saved = load_file(str(tiny / LLM_SHARD)) | load_file(str(tiny / OTHER_SHARD))
    state = ckpt.model.state_dict()
    assert set(saved) == set(state)
    assert all(torch.equal(saved[k], state[k]) for k in saved)
    assert ckpt.tokenizer.get_vocab_size(with_added_tokens=True) == ckpt.config["audio_token_index"]


def _drop(d: Path, shard: str, *names: str) -> None:
    tensors = load_file(str(d / shard))
    for name in names:
        del tensors[name]
    save_file(tensors, str(d / shard))


def test_missing_core_tensors_are_named_and_refused(tiny: Path, tmp_path: Path) -> None:
    folder = copy_checkpoint(tiny, tmp_path / "ckpt")
    _drop(folder, OTHER_SHARD, "encoder.layer_norm.bias", "audio_adapter.downsample_layers.0.conv1d.bias")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(folder, device=CPU, dtype=torch.float32)
    message = str(info.value)
    assert "missing 2 encoder, audio_adapter tensors" in message
    assert "audio_adapter.downsample_layers.0.conv1d.bias" in message and "encoder.layer_norm.bias" in message


def test_optional_missing_and_unexpected_tensors_are_warned_by_name(tiny: Path, tmp_path: Path, caplog) -> None:
    folder = copy_checkpoint(tiny, tmp_path / "ckpt")
    saved = load_file(str(folder / OTHER_SHARD))["encoder.embed_positions.weight"]
    _drop(folder, OTHER_SHARD, "encoder.embed_positions.weight")
    tensors = load_file(str(folder / LLM_SHARD))
    tensors["llm.extra_head.weight"] = torch.zeros(2, 2)
    save_file(tensors, str(folder / LLM_SHARD))
    with caplog.at_level("WARNING"):
        ckpt = load_checkpoint(folder, device=CPU, dtype=torch.float32)
    assert "encoder.embed_positions.weight" in caplog.text and "llm.extra_head.weight" in caplog.text
    from transformers.models.whisper.modeling_whisper import sinusoids

    table = ckpt.model.encoder.embed_positions.weight
    torch.testing.assert_close(table, sinusoids(*table.shape))
    assert saved.shape == table.shape


def test_every_id_comes_from_the_checkpoint(tiny: Path, tmp_path: Path) -> None:
    from duplex.backbones.covo.vocab import checkpoint_vocab

    ckpt = load_checkpoint(tiny, device=CPU, dtype=torch.float32)
    vocab = checkpoint_vocab(ckpt)
    assert vocab.text_size == ckpt.config["audio_token_index"]
    assert vocab.audio_frame == ckpt.tokenizer.token_to_id("<|cAUDIO|>")
    folder = copy_checkpoint(tiny, tmp_path / "ckpt")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["audio_token_index"] += 5
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="config.json: audio_token_index is .* must agree"):
        checkpoint_vocab(load_checkpoint(folder, device=CPU, dtype=torch.float32))


def test_weights_are_converted_to_the_requested_dtype(tiny: Path) -> None:
    ckpt = load_checkpoint(tiny, device=CPU, dtype=torch.bfloat16)
    assert {p.dtype for p in ckpt.model.parameters()} == {torch.bfloat16}


def _missing_config(d: Path) -> Path:
    (d / "config.json").unlink()
    return d / "config.json"


def _wrong_model_type(d: Path) -> Path:
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = "qwen2_audio"
    (d / "config.json").write_text(json.dumps(cfg))
    return d / "config.json"


def _missing_shard(d: Path) -> Path:
    (d / OTHER_SHARD).unlink()
    return d / OTHER_SHARD


def _shape_mismatch(d: Path) -> Path:
    tensors = load_file(str(d / OTHER_SHARD))
    tensors["audio_adapter.downsample_layers.2.linear2.weight"] = torch.zeros(65, 2048)
    save_file(tensors, str(d / OTHER_SHARD))
    return d / OTHER_SHARD


def _truncated(d: Path) -> Path:
    data = (d / LLM_SHARD).read_bytes()
    (d / LLM_SHARD).write_bytes(data[: len(data) - 1000])
    return d / LLM_SHARD


def _missing_tensor(d: Path) -> Path:
    tensors = load_file(str(d / OTHER_SHARD))
    del tensors["encoder.layer_norm.bias"]
    save_file(tensors, str(d / OTHER_SHARD))
    return d / "model.safetensors.index.json"


def _missing_tokenizer(d: Path) -> Path:
    (d / "tokenizer.json").unlink()
    return d / "tokenizer.json"


def _no_weights(d: Path) -> Path:
    for f in [*d.glob("*.safetensors"), d / "model.safetensors.index.json"]:
        f.unlink()
    return d / "model.safetensors"


def _garbage_header(d: Path) -> Path:
    (d / LLM_SHARD).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!" + b"\x00" * 64)
    return d / LLM_SHARD


BREAKAGES: dict[str, Callable[[Path], Path]] = {
    "missing config.json": _missing_config,
    "wrong model_type": _wrong_model_type,
    "missing shard": _missing_shard,
    "shape mismatch": _shape_mismatch,
    "truncated safetensors": _truncated,
    "missing tensor": _missing_tensor,
    "missing tokenizer": _missing_tokenizer,
    "no weight files": _no_weights,
    "not a safetensors file": _garbage_header,
}


@pytest.mark.parametrize("case", list(BREAKAGES))
def test_a_broken_checkpoint_is_one_line_naming_the_file(case: str, tiny: Path, tmp_path: Path) -> None:
    folder = copy_checkpoint(tiny, tmp_path / "ckpt")
    culprit = BREAKAGES[case](folder)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(folder, device=CPU, dtype=torch.float32)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(culprit)), message


def test_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint folder") as info:
        load_checkpoint(tmp_path / "nowhere", device=CPU, dtype=torch.float32)
    assert str(tmp_path / "nowhere") in str(info.value)


def test_the_cli_reports_a_bad_checkpoint_in_one_line_with_status_2(tiny: Path, tmp_path: Path) -> None:
    folder = copy_checkpoint(tiny, tmp_path / "ckpt")
    culprit = _wrong_model_type(folder)
    config = tmp_path / "covo.yaml"
    config.write_text(f"backbone: covo\ncovo:\n  checkpoint: {folder}\n  device: cpu\n")
    question = tmp_path / "x.wav"  # a good input: the input is checked before the model loads
    sf.write(question, np.zeros(1600, np.float32), 16000)
    proc = subprocess.run([sys.executable, "-m", "duplex", "--config", str(config), "--input", str(question)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(culprit) in lines[0] and "model_type" in lines[0], proc.stderr
