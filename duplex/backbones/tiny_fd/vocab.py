"""tiny-fd's token ids and the decoding grammar shared by training and inference.

The vocabulary is four control tokens plus one id per 40 ms speech unit. Which tokens are legal at
each position depends on the floor (listening or speaking) and on the reply being spoken: while
listening the model chooses THINK or SHIFT; right after SHIFT it chooses which reply to start;
while speaking it chooses between the next unit of its reply, THINK (hold: a silent beat) and
BREAK. Every other position is forced (units continue the reply they began, EOT closes it,
THINK pads the step). Training applies the same mask, so the network spends its capacity on the
decisions that matter: when to talk and when to stop.
"""

from __future__ import annotations

from dataclasses import dataclass

BOS, THINK, SHIFT, BREAK, EOT = 0, 1, 2, 3, 4
# An output-only id: "keep speaking". Its logit is the score of emitting the reply's next unit, so one
# shared decision stands for all units; the unit itself is what goes into the context.
CONT = 5
UNIT0 = 6

# What the decision at a step's first token is about.
LISTEN_DECISION = 0  # THINK | SHIFT
SPEAK_DECISION = 1  # next unit | THINK (hold) | BREAK
FORCED = 2  # EOT after the last unit: no choice


def unit_id(unit: int) -> int:
    return UNIT0 + unit


@dataclass(slots=True)
class Floor:
    """Where the grammar stands: listening, or speaking reply `reply` with `cursor` units left to play."""

    replies: list[tuple[int, int]]  # (first unit, length) per reply
    speaking: bool = False
    cursor: int = 0  # next unit to play
    end: int = 0  # one past the reply's last unit

    def decision(self) -> int:
        if not self.speaking:
            return LISTEN_DECISION
        return SPEAK_DECISION if self.cursor < self.end else FORCED

    def allowed_first(self) -> list[int]:
        kind = self.decision()
        if kind == LISTEN_DECISION:
            return [THINK, SHIFT]
        if kind == SPEAK_DECISION:
            return [CONT, THINK, BREAK]
        return [EOT]

    def starts(self) -> list[int]:
        return [unit_id(first) for first, _ in self.replies]

    def complete(self, first: int, reply_start: int | None = None) -> list[int]:
        """The four tokens of a step whose free choices were `first` (and `reply_start` after SHIFT)."""
        tokens = [first]
        if first == SHIFT:
            assert reply_start is not None
            unit = reply_start - UNIT0
            length = dict(self.replies)[unit]
            self.speaking, self.cursor, self.end = True, unit, unit + length
            tokens.append(reply_start)
            self.cursor += 1
            self._continue(tokens)
        elif first in (BREAK, EOT):
            self.speaking = False
        elif first == CONT or first >= UNIT0:
            tokens[0] = unit_id(self.cursor)
            self.cursor += 1
            self._continue(tokens)
        while len(tokens) < 4:
            tokens.append(THINK)
        return tokens

    def _continue(self, tokens: list[int]) -> None:
        while len(tokens) < 4 and self.speaking:
            if self.cursor < self.end:
                tokens.append(unit_id(self.cursor))
                self.cursor += 1
            else:
                tokens.append(EOT)
                self.speaking = False
