"""Stand-ins for the cue model (duplex.cue.runtime.CueModel) and its recogniser: the rules under test, not a network."""

from __future__ import annotations

import numpy as np

from duplex.cue.text import BACKCHANNEL, CLASSES, STATEMENT


class ScriptedCues:
    """Always hears the same class (0.92 for it), and counts the windows it was asked about."""

    words = False  # (no recogniser: the fakes stand for the network alone)

    def __init__(self, label: int) -> None:
        self.label, self.asked = label, 0

    def probs(self, window: np.ndarray) -> np.ndarray:
        self.asked += 1
        p = np.full(len(CLASSES), 0.02)
        p[self.label] = 1.0 - 0.02 * (len(CLASSES) - 1)
        return p


class VerdictsInTurn:
    """Gives P(backchannel) from a list, one per window it is asked about (the rest: a statement)."""

    words = False

    def __init__(self, *backchannel: float) -> None:
        self.left = list(backchannel)

    def probs(self, window: np.ndarray) -> np.ndarray:
        p = np.zeros(len(CLASSES))
        p[BACKCHANNEL] = self.left.pop(0)
        p[STATEMENT] = 1.0 - p[BACKCHANNEL]
        return p


class NamedPiece:
    """Stands for the recogniser (duplex.cue.words.OpeningWords): names every piece the same, and
    hears no opening."""

    def __init__(self, said: str | None) -> None:
        self.said, self.pieces = said, 0

    def piece_said(self, audio: np.ndarray) -> str | None:
        self.pieces += 1
        return self.said

    def verdict(self) -> None:
        return None

    def stated(self) -> bool:
        return False

    def asked_wh(self) -> bool:
        return False

    def catch_up(self) -> None:
        pass

    def push(self, chunk: np.ndarray) -> None:
        pass

    def reset(self) -> None:
        pass
