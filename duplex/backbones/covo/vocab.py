"""Token ids <-> runtime tokens, and the prompt texts of both modes.

Ids below the speech offset are text (and special tokens); ids from it upward are speech units
(16,384 of them in the released model), which become AUDIO(id - offset). The offset is the
checkpoint's `audio_token_index` (151671 in the release), which must equal the tokenizer's length
(the release's example projects with `id - len(tokenizer)`): both are read, never assumed, and a
disagreement is an error naming config.json. The audio placeholder, the end-of-reply token and
the control tokens are looked up by the strings the config names. Text is detokenised incrementally,
so a character split across byte-level tokens is emitted once it is complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from duplex.errors import CheckpointError
from duplex.tokens import BREAK, EOT, SHIFT, THINK, Kind, Token, audio

AUDIO_BEGIN = "<|begofcAUDIO|>"
AUDIO_FRAME = "<|cAUDIO|>"
AUDIO_END = "<|endofcAUDIO|>"
CONTROL_KEYS = {"think_token": THINK, "shift_token": SHIFT, "break_token": BREAK, "eot_token": EOT}


class Vocab:
    def __init__(self, tokenizer: Any, path: Path, llm_vocab: int, *, speech_offset: int | None = None,
                 config_path: Path | None = None) -> None:
        self.tokenizer = tokenizer
        self.path = path
        self.text_size = int(tokenizer.get_vocab_size(with_added_tokens=True))
        if speech_offset is not None and speech_offset != self.text_size:
            raise CheckpointError(config_path or path, f"audio_token_index is {speech_offset}, but the tokenizer "
                                                       f"({path.name}) has {self.text_size} tokens; they must agree")
        self.speech_units = llm_vocab - self.text_size
        if self.speech_units <= 0:
            raise CheckpointError(path, f"has {self.text_size} tokens, not fewer than the LLM vocabulary ({llm_vocab})")
        self.controls: dict[int, Token] = {}
        self.audio_frame = self.id(AUDIO_FRAME, "the audio frame marker")
        self._pending_text: list[int] = []

    def id(self, text: str, what: str) -> int:
        found = self.tokenizer.token_to_id(text)
        if found is None:
            raise CheckpointError(self.path, f"has no token {text!r} ({what})")
        return int(found)

    def set_controls(self, strings: dict[str, str]) -> None:
        """Map config keys (think_token, ...) to the checkpoint's ids."""
        self.controls = {self.id(text, f"covo.{key}"): CONTROL_KEYS[key] for key, text in strings.items()}

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def is_speech(self, i: int) -> bool:
        return i >= self.text_size

    def token(self, i: int) -> Token:
        """The runtime token for one sampled id (text is held back until its characters are whole)."""
        if i in self.controls:
            return self.controls[i]
        if i >= self.text_size:
            return audio(i - self.text_size)
        self._pending_text.append(i)
        text = self.decode(self._pending_text)
        if text.endswith("\ufffd") and len(self._pending_text) < 4:
            return Token(Kind.TEXT, text="")
        self._pending_text.clear()
        return Token(Kind.TEXT, text=text)


def checkpoint_vocab(ckpt: Any) -> Vocab:
    """The Vocab of a loaded Checkpoint, its speech offset read from config.json."""
    offset = ckpt.config.get("audio_token_index")
    return Vocab(ckpt.tokenizer, ckpt.tokenizer_path, ckpt.model.vocab_size,
                 speech_offset=None if offset is None else int(offset), config_path=ckpt.folder / "config.json")


def user_turn(frames: int) -> str:
    """One user turn of the released chat format, with `frames` audio placeholders."""
    return f"<|im_start|>user\n{AUDIO_BEGIN}{AUDIO_FRAME * frames}{AUDIO_END}<|im_end|>\n<|im_start|>assistant\n"


def system_turn(system: str) -> str:
    return f"<|im_start|>system\n{system}<|im_end|>\n"
