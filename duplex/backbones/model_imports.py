"""The model libraries' imports, done once under a lock before any model is built.

transformers resolves its names lazily (`from transformers import Qwen2Config` imports the
submodule on first use), and that machinery is not thread-safe: two sessions loading their
models together on worker threads failed with `ImportError: cannot import name 'Qwen2Config'`.
So every loader calls `ensure()` first: the first caller imports every name the backbones use
while the others wait; afterwards the names are plain module attributes and each later
`from transformers import ...` (in a loader or in a step on a worker thread) is a dictionary
lookup. Keep the list below in step with the backbones' imports (a test checks it).
"""

from __future__ import annotations

import importlib
import threading

# module -> names the backbones import from it (at load time or inside a step)
NAMES: dict[str, tuple[str, ...]] = {
    "torch": (),
    "transformers": ("Qwen2Config", "Qwen2ForCausalLM", "DynamicCache", "WhisperConfig"),
    "transformers.audio_utils": ("mel_filter_bank",),
    "transformers.models.whisper.modeling_whisper": ("WhisperEncoder",),
    "safetensors": ("SafetensorError", "safe_open"),
    "safetensors.numpy": ("load_file", "save_file"),
    "safetensors.torch": ("load_model", "save_model", "save_file"),
}

_lock = threading.Lock()
_done = False


def ensure() -> None:
    """Import the model libraries and resolve every name above, once per process (thread-safe)."""
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        for module_name, names in NAMES.items():
            module = importlib.import_module(module_name)
            for name in names:
                getattr(module, name)  # resolves (and caches) a lazy name now, under the lock
        _done = True
