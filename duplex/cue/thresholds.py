"""The cue model's probabilities the rules act on (tiny-fd's barge-in rules and the VAD floor alike).

Chosen on the development voices (festival's kal_diphone), never on the held-out ones; a wrong
"backchannel" resumes a reply over a barge-in, the one mistake a user never forgives, so it needs
the surest verdict.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from duplex.cue.text import BACKCHANNEL, STOP

BACKCHANNEL_P = 0.9  # "it was a backchannel (or a cough)": the held reply goes on at once
# A backchannel only the recogniser named goes on after this many more silent steps: its first
# silence may be the detector losing a step inside a longer interruption (runtime.py, piece_verdict).
LIKELY_WAIT_STEPS = 1
# The network alone at least this sure (under BACKCHANNEL_P): a likely backchannel too, after
# LIKELY_WAIT_STEPS, whatever the words named but a backchannel (round 21: unless a stop word; round
# 22: a stop word too). Round 20's network put no stop word of 396 in conversation windows
# (development voices and its own) above 0.27, nor a held-out barge-in piece of 253 above 0.57 (docs/cue.md)
LIKELY_BACKCHANNEL_P = 0.8
SECOND_PIECE_BC_P = 0.5  # ... a second held piece too, when the first was at least this likely one
STOP_P = 0.9  # "it was a stop word": the reply ends
STOPPED_ONLY_P = 0.5  # after a BREAK, P(stop) + P(backchannel): "only a short piece", the rest is to come
ASKS_P = 0.5  # "it asked something": the turn may be taken; below it, the unfinished silence
ASKED_P = 0.8  # ... so surely that tiny-fd answers it after 0.32 s of silence, whatever the network says


# A held piece with (almost) no voiced frame among its loudest is a cough, a knock, a clap: no word
# lacks a vowel or a hum (development voices, espeak-ng's lowest pitches and the reply's echo under
# them included: 0.5 and up over 1 584 of them; coughs 0.00, with the reply's echo 20 dB under them
# as well). Unless it hisses: a "shh" has no voice either (duplex/backbones/floor/pitch.py, `hushed`).
NOISE_VOICED_SHARE = 0.3


class HeldPiece(enum.Enum):
    """What a piece of user speech over the held reply was, as far as the rules act on it."""

    STOP = "stop"  # the reply ends
    BACKCHANNEL = "backchannel"  # the reply goes on at once
    LIKELY_BACKCHANNEL = "likely backchannel"  # named so by the words alone: after LIKELY_WAIT_STEPS


def held_piece_verdict(p: Sequence[float], first_backchannel: float | None,
                       backchannel_bar: float = BACKCHANNEL_P) -> HeldPiece | None:
    """STOP or BACKCHANNEL for a piece of user speech over the held reply, when the cue model is sure
    of it (`p`: its probabilities at the piece's first silence), else None. A second piece
    (`first_backchannel`: the first one's P(backchannel)) is a backchannel only when the first
    sounded like one too: two chances at a wrong "go on" where a hesitant barge-in ("wait ... no
    ...") gave one would resume more replies over the user. `backchannel_bar`: the likely tier's
    lower one (LIKELY_BACKCHANNEL_P) asks the same question."""
    if p[STOP] >= STOP_P:
        return HeldPiece.STOP
    second_ok = first_backchannel is None or first_backchannel >= SECOND_PIECE_BC_P
    return HeldPiece.BACKCHANNEL if p[BACKCHANNEL] >= backchannel_bar and second_ok else None
