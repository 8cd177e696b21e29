"""The library versions the covo backbone works with, checked once when it loads.

transformers 4.x builds a model that looks right and then misbehaves: `WhisperEncoderLayer.forward`
wants a `layer_head_mask` (the first user turn fails), and Qwen2 configs keep RoPE under
`rope_parameters`, which 4.x ignores, so the dynamic-cache path would silently run with theta
10000. The released Covo-Audio needs transformers >= 5.0 for the same reasons. An old version is
therefore refused at load time, in one line that names it and says what to install, instead of
failing mid-conversation. torchaudio is only used by the release's own token2wav package; when it
is installed its version must belong to the installed torch (a mismatched pair fails to import
with a long C++ symbol error).
"""

from __future__ import annotations

import importlib.metadata as md
import re

from duplex.errors import ConfigError

MIN_TRANSFORMERS = (5, 0)
INSTALL = 'pip install -e ".[covo]"'


def version_tuple(text: str) -> tuple[int, ...]:
    """'5.24.0' -> (5, 24, 0); '2.8.0+cu124' -> (2, 8, 0); pre-release tails are dropped."""
    parts = []
    for piece in text.split("+")[0].split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
    return tuple(parts)


def installed(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def check_versions(versions: dict[str, str | None] | None = None) -> None:
    """Raise one ConfigError line naming the incompatible version; `versions` overrides the installed ones."""
    found = versions if versions is not None else {n: installed(n) for n in ("transformers", "torch", "torchaudio")}
    tf = found.get("transformers")
    if tf is None:
        raise ConfigError(f"backbone covo needs transformers >= 5.0, which is not installed: {INSTALL}")
    if version_tuple(tf) < MIN_TRANSFORMERS:
        raise ConfigError(f"backbone covo needs transformers >= 5.0, found transformers {tf}: {INSTALL}")
    torch_v, audio_v = found.get("torch"), found.get("torchaudio")
    if torch_v and audio_v and version_tuple(torch_v)[:2] != torchaudio_pair(version_tuple(audio_v)):
        raise ConfigError(f"torchaudio {audio_v} does not belong to torch {torch_v} (token2wav imports it): "
                          f"pip install torchaudio=={'.'.join(map(str, version_tuple(torch_v)[:2]))}.*")


def torchaudio_pair(audio: tuple[int, ...]) -> tuple[int, ...]:
    """The torch (major, minor) a torchaudio release is built for: 0.13 went with 1.13, 2.x matches."""
    if audio[:1] == (0,):
        return (1, audio[1]) if len(audio) > 1 else (1,)
    return audio[:2]
