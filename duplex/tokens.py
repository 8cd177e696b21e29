"""Model tokens as the runtime sees them, whatever strings a checkpoint uses for them.

A backbone returns four of these per 160 ms step (the 1:4 interleave). Control kinds go to the
controller, AUDIO units to the vocoder, TEXT to the transcript.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from states import Input


class Kind(enum.Enum):
    THINK = "THINK"
    SHIFT = "SHIFT"
    BREAK = "BREAK"
    EOT = "EOT"
    AUDIO = "AUDIO"
    TEXT = "TEXT"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    unit: int = -1  # speech unit id, for AUDIO
    text: str = ""  # for TEXT

    def __str__(self) -> str:
        if self.kind is Kind.AUDIO:
            return f"AUDIO({self.unit})"
        if self.kind is Kind.TEXT:
            return f"TEXT({self.text!r})"
        return self.kind.value


THINK = Token(Kind.THINK)
SHIFT = Token(Kind.SHIFT)
BREAK = Token(Kind.BREAK)
EOT = Token(Kind.EOT)


def audio(unit: int) -> Token:
    return Token(Kind.AUDIO, unit=unit)


CONTROL_KINDS = frozenset({Kind.THINK, Kind.SHIFT, Kind.BREAK, Kind.EOT})

# What each token kind means to the controller; TEXT never reaches it.
CONTROLLER_INPUT: dict[Kind, Input] = {
    Kind.THINK: Input.THINK,
    Kind.SHIFT: Input.SHIFT,
    Kind.BREAK: Input.BREAK,
    Kind.EOT: Input.EOT,
    Kind.AUDIO: Input.AUDIO,
}
