"""Token ids <-> runtime tokens, and the prompt texts of both modes.

Ids below the tokenizer's length are text (and special tokens); ids from the tokenizer's length
upward are speech units (16,384 of them in the released model), which become AUDIO(id - length).
Control tokens are looked up by the strings the config names. Text is detokenised incrementally,
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
    def __init__(self, tokenizer: Any, path: Path, llm_vocab: int) -> None:
        self.tokenizer = tokenizer
        self.path = path
        self.text_size = int(tokenizer.get_vocab_size(with_added_tokens=True))
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


def user_turn(frames: int) -> str:
    """One user turn of the released chat format, with `frames` audio placeholders."""
    return f"<|im_start|>user\n{AUDIO_BEGIN}{AUDIO_FRAME * frames}{AUDIO_END}<|im_end|>\n<|im_start|>assistant\n"


def system_turn(system: str) -> str:
    return f"<|im_start|>system\n{system}<|im_end|>\n"
