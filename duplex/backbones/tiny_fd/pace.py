"""The user's own pace within a turn: how long they pause between the sentences they go on after.

Why: a statement's end and a pause after it sound alike, so the rules wait the unfinished silence
(1.6 s) after every statement, and a user who has told three sentences with 0.45 s between them and
stopped waits 1.6 s for an answer. A listener hears the pace: a silence twice as long as any the
user left between their sentences is the end. Only pauses after utterances the rules took for
statements count (a breath inside a question is not a sentence's end), after a sentence's worth of
speech (a breath inside a statement is not either: "My daughter starts school [0.3 s] next week."),
and only from the second one on: a first pause says nothing of the next (the held-out `long_pause`
turns draw two at random).
"""

from __future__ import annotations

from duplex.cue.thresholds import ASKS_P

MIN_GAP_STEPS = 2  # a silence this long (0.32 s) after a statement, that the user spoke after,
SENTENCE_STEPS = 8  # ... with this much speech (1.28 s) since the turn's start or the last such silence
MIN_GAPS = 2  # ... and this many of them in the turn before the pace is read
PACE_FACTOR = 2  # a silence this many times the longest of them ends the turn ...
MIN_WAIT_STEPS = 5  # ... but never under this (0.8 s)


class TurnPace:
    """The gaps after statements in the user's current turn, and the wait they allow."""

    def __init__(self) -> None:
        self.gaps: list[int] = []
        self.speech = 0  # steps of the user's voice since the turn's start or the last gap

    def reset(self) -> None:
        """The model spoke: the next turn's pace is its own."""
        self.gaps.clear()
        self.speech = 0

    def spoke(self, quiet_steps: int, asks: float | None) -> None:
        """The user's voice at this step, after `quiet_steps` of silence; `asks` is the rules' P(asks)
        for what they said before the silence (None: never asked for)."""
        if (quiet_steps >= MIN_GAP_STEPS and asks is not None and asks < ASKS_P
                and self.speech >= SENTENCE_STEPS):
            self.gaps.append(quiet_steps)
            self.speech = 0
        self.speech += 1

    def wait(self, unfinished_steps: int) -> int:
        """The silence after a statement before the turn is taken."""
        if len(self.gaps) < MIN_GAPS:
            return unfinished_steps
        return min(unfinished_steps, max(MIN_WAIT_STEPS, PACE_FACTOR * max(self.gaps)))
