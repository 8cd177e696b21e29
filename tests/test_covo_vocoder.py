"""The token2wav adapter streams chunks through a stand-in with token2wav's call signature."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from duplex.backbones.covo.vocoder import SilentVocoder, Token2WavVocoder, load_token2wav, silent  # noqa: E402
from duplex.errors import CheckpointError, ConfigError  # noqa: E402
from tests.covo_fixtures import token2wav_standin  # noqa: E402


@pytest.fixture
def standin(tmp_path: Path) -> dict[str, str]:
    keys = token2wav_standin(tmp_path / "Covo-Audio")
    yield keys
    for name in [n for n in sys.modules if n == "token2wav" or n.startswith("token2wav.")]:
        del sys.modules[name]


def load(keys: dict[str, str], context: int = 3) -> Token2WavVocoder:
    return load_token2wav(Path(keys["vocoder_repo"]), checkpoint=Path(keys["vocoder_checkpoint"]), config=None,
                          prompt_dir=None, device="cpu", context_units=context)


def test_each_chunk_is_decoded_with_left_context_and_only_new_audio_returned(standin: dict[str, str]) -> None:
    voc = load(standin, context=3)
    calls = sys.modules["token2wav.decode"].CALLS
    assert voc.sample_rate == 24_000
    first = voc.decode([1, 2, 3, 4])
    second = voc.decode([5, 6])
    assert first.shape == (4 * 960 - 720,) and second.shape == (2 * 960,)  # the release's own lengths
    assert calls == [[1, 2, 3, 4], [2, 3, 4, 5, 6]]
    whole = sys.modules["token2wav.decode"].decode([1, 2, 3, 4, 5, 6], "", None, None)["wav"]
    np.testing.assert_allclose(np.concatenate([first, second]), whole, atol=1e-6)
    assert voc.level > 0.1


@pytest.mark.parametrize("chunks", [[3, 4, 4, 4, 4], [1, 1, 2, 8, 16], [4] * 8])
def test_streamed_speech_equals_one_decode_with_no_inserted_silence_and_no_shift(
        standin: dict[str, str], chunks: list[int]) -> None:
    """Release arithmetic (291 prompt tokens -> 1164 frames, cut at 1167): M units -> M x 960 - 720 samples."""
    voc = load(standin, context=2)
    units = [(7 * k + 3) % 50 for k in range(sum(chunks))]
    out, at = [], 0
    for n in chunks:
        out.append(voc.decode(units[at:at + n]))
        at += n
    streamed = np.concatenate(out)
    whole = sys.modules["token2wav.decode"].decode(units, "", None, None)["wav"]
    assert streamed.size == len(units) * 960 - 720 == whole.size
    np.testing.assert_allclose(streamed, whole, atol=1e-6)  # no shift: sample for sample
    silent = np.abs(streamed) < 1e-4
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, silent.astype(np.int8), 0])))[::2] if silent.any() else [0]
    assert max(runs) < 24  # a tone's zero crossings, never a 1 ms gap


def test_reset_after_a_barge_in_drops_the_context(standin: dict[str, str]) -> None:
    voc = load(standin)
    voc.decode([7, 8])
    voc.reset()
    voc.decode([9])
    assert sys.modules["token2wav.decode"].CALLS[-1] == [9]


def test_a_missing_token2wav_checkpoint_is_one_line_naming_it(standin: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="model.pt: missing") as info:
        load({**standin, "vocoder_checkpoint": str(tmp_path / "model.pt")})
    assert "\n" not in str(info.value)


def test_a_folder_without_token2wav_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="token2wav/decode.py"):
        load({"vocoder_repo": str(tmp_path), "vocoder_checkpoint": str(tmp_path / "m.pt")})


def test_without_a_vocoder_speech_is_silence_of_the_right_length_and_said_once(caplog) -> None:
    with caplog.at_level("WARNING"):
        voc = silent()
    assert isinstance(voc, SilentVocoder) and "no vocoder configured" in caplog.text
    out = voc.decode([1, 2, 3])
    assert out.shape == (3 * 640,) and not out.any()
