"""Covo speech units -> audio: an adapter to a local token2wav installation, or silence.

Covo-Audio's token2wav (flow matching + BigVGAN, 24 kHz) is not in transformers; it ships as the
`token2wav` package of the Covo-Audio repository with two functions this adapter calls, and
nothing else (`Token2WavModule`):

    init_model(args, decode_device) -> (model, config)   args: .decode_model_config, .decode_load_path
    decode(llm_tokens, prompt_dir, model, config) -> {"wav": float array, "sample_rate": 24000}

`decode` turns a whole token list into audio. Its length is not 40 ms per unit: the release puts
its 291-token voice prompt in front (4 x 291 = 1164 latent frames) but cuts the output at the
prompt latent's 1167 frames, so M units come out as M x 960 - 720 samples at 24 kHz, the first
30 ms of the first unit missing and the end lined up with the end of the last unit. To stream,
each chunk of units is decoded together with up to `context_units` units that came before it (so
the flow model sees continuous speech) and the output's last 40 ms per new unit is returned: the
units' audio, never padded. A turn's first chunk (no context yet) is returned whole, 30 ms short,
exactly as the release decodes it. After a barge-in `reset` drops the context.
Where no vocoder is configured, `SilentVocoder` says so once and returns
silence of the right length, so timing, truncation and the transcript keep working.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np

from audio_io.format import SAMPLE_RATE, UNIT_SAMPLES, rms
from duplex.errors import CheckpointError, ConfigError, one_line

log = logging.getLogger(__name__)
UNIT_SECONDS = UNIT_SAMPLES / SAMPLE_RATE  # 40 ms


class Token2WavModule(Protocol):
    """The call signature of Covo-Audio's `token2wav.decode` module."""

    def init_model(self, args: Any, decode_device: str) -> tuple[Any, Any]: ...

    def decode(self, llm_tokens: list[int], prompt_dir: str, model: Any, config: Any) -> dict[str, Any]: ...


class Token2WavVocoder:
    """Streams chunks of units through `module.decode`, with left context."""

    def __init__(self, module: Token2WavModule, model: Any, config: Any, *, prompt_dir: Path,
                 sample_rate: int, context_units: int) -> None:
        self.module = module
        self.model = model
        self.config = config
        self.prompt_dir = prompt_dir
        self.sample_rate = sample_rate
        self.unit_samples = round(sample_rate * UNIT_SECONDS)
        self._context: deque[int] = deque(maxlen=max(context_units, 1))
        self._use_context = context_units > 0
        self.level = 0.0

    def decode(self, units: Sequence[int]) -> np.ndarray:
        if not units:
            return np.zeros(0, dtype=np.float32)
        context = list(self._context) if self._use_context else []
        result = self.module.decode(llm_tokens=[*context, *units], prompt_dir=str(self.prompt_dir),
                                    model=self.model, config=self.config)
        wav = np.asarray(result["wav"], dtype=np.float32).reshape(-1)
        out = np.ascontiguousarray(tail_of(wav, len(units) * self.unit_samples))
        self._context.extend(units)
        self.level = rms(out)
        return out

    def reset(self) -> None:
        self._context.clear()
        self.level = 0.0


def tail_of(wav: np.ndarray, want: int) -> np.ndarray:
    """The last `want` samples (the new units' audio: token2wav's output ends with the last unit's end).

    Shorter output (a first chunk, which lacks the release's 30 ms lag) is returned whole: padding
    it would put silence into the speech and move what follows early.
    """
    return wav[max(0, wav.size - want):]


class SilentVocoder:
    """No vocoder configured: silence as long as the speech would be."""

    sample_rate = SAMPLE_RATE

    def __init__(self) -> None:
        self.level = 0.0

    def decode(self, units: Sequence[int]) -> np.ndarray:
        return np.zeros(len(units) * UNIT_SAMPLES, dtype=np.float32)

    def reset(self) -> None:
        pass


def load_token2wav(repo: Path, *, checkpoint: Path, config: Path | None, prompt_dir: Path | None,
                   device: str, context_units: int) -> Token2WavVocoder:
    """Import `token2wav.decode` from `repo` (a Covo-Audio clone), load its model on `device`."""
    config = config or repo / "token2wav" / "config.json"
    prompt_dir = prompt_dir or repo / "token2wav" / "prompt"
    if not (repo / "token2wav" / "decode.py").exists():
        raise ConfigError(f"covo.vocoder_repo = {str(repo)!r} holds no token2wav/decode.py")
    for path, what in ((checkpoint, "token2wav weights"), (config, "token2wav config")):
        if not path.is_file():
            raise CheckpointError(path, f"missing ({what})")
    if not prompt_dir.is_dir():
        raise CheckpointError(prompt_dir, "missing (token2wav voice prompt folder)")
    module = _import_decode(repo)
    args = SimpleNamespace(decode_model_config=str(config), decode_load_path=str(checkpoint))
    try:
        model, cfg = module.init_model(args, decode_device=device)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(checkpoint, f"token2wav could not load it ({one_line(exc)})") from exc
    rate = int(_sample_rate(cfg))
    return Token2WavVocoder(module, model, cfg, prompt_dir=prompt_dir, sample_rate=rate, context_units=context_units)


def _import_decode(repo: Path) -> Token2WavModule:
    """`token2wav.decode` from this repo (an earlier import from elsewhere is replaced)."""
    root = str(repo.resolve())
    loaded = sys.modules.get("token2wav")
    if loaded is not None and not str(getattr(loaded, "__file__", "") or "").startswith(root):
        for name in [n for n in sys.modules if n == "token2wav" or n.startswith("token2wav.")]:
            del sys.modules[name]
    sys.path.insert(0, root)
    try:
        return importlib.import_module("token2wav.decode")  # type: ignore[return-value]
    except ImportError as exc:
        raise ConfigError(f"covo.vocoder_repo: cannot import token2wav ({exc}); install its requirements") from exc
    finally:
        sys.path.remove(root)


def _sample_rate(cfg: Any) -> int:
    try:
        return int(cfg.data.audio.sample_rate)
    except AttributeError:
        return 24_000


def silent() -> SilentVocoder:
    log.warning("covo: no vocoder configured (covo.vocoder_repo is empty): speech units stay silent, "
                "the transcript still works; see docs/covo.md")
    return SilentVocoder()
