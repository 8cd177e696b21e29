"""The controller's transition table as plain data, checked when it loads.

Every (phase, input) pair has exactly one row, so nothing the backbone or the outside world sends
can crash or wedge the controller. The table is data so that it can be printed, diffed and
rendered as a diagram (`states.diagram`), and so that a broken table fails at import time
(`check_table`) rather than in the middle of a conversation.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Phase(enum.Enum):
    """Who holds the floor, from the runtime's point of view."""

    IDLE = "IDLE"  # no session running: microphone closed, speaker silent
    LISTENING = "LISTENING"  # the user holds (or may take) the floor
    SPEAKING = "SPEAKING"  # the model holds the floor and its speech is played
    DRAINING = "DRAINING"  # the model ended its turn (EOT); queued audio is still playing
    DEGRADED = "DEGRADED"  # an audio device failed; waiting for it to come back


class Input(enum.Enum):
    """What the controller reacts to: backbone tokens first, then outside events."""

    THINK = "THINK"
    SHIFT = "SHIFT"
    BREAK = "BREAK"
    EOT = "EOT"
    AUDIO = "AUDIO"  # one speech unit from the backbone
    PLAYBACK_DONE = "PLAYBACK_DONE"  # the speaker ran out of queued audio
    START = "START"
    STOP = "STOP"
    MUTE = "MUTE"
    UNMUTE = "UNMUTE"
    STOP_SPEAKING = "STOP_SPEAKING"  # an operator or API call cuts the model off
    RESET = "RESET"  # forget the conversation so far
    DEVICE_ERROR = "DEVICE_ERROR"
    DEVICE_RECOVERED = "DEVICE_RECOVERED"


class Action(enum.Enum):
    """What the engine must do; executed in the order given."""

    OPEN_MIC = "open_mic"
    CLOSE_MIC = "close_mic"
    START_SPEAKER = "start_speaker"  # a new model turn begins; count its audio from here
    PLAY_AUDIO = "play_audio"  # send this speech unit to the vocoder and the speaker
    DROP_AUDIO = "drop_audio"  # discard this speech unit (nobody should hear it)
    FLUSH_SPEAKER = "flush_speaker"  # drop queued, unplayed audio now
    # a held beat: silence the speaker now, keeping what is queued for the turn to go on; a step
    # that also carries speech plays on (the engine pauses only a step with no speech in it)
    HOLD_SPEAKER = "hold_speaker"
    CANCEL_SYNTHESIS = "cancel_synthesis"  # drop the vocoder's in-flight state
    TRUNCATE_CONTEXT = "truncate_context"  # tell the backbone how much of its turn was heard
    RESET_CONTEXT = "reset_context"


INITIAL = Phase.IDLE


@dataclass(frozen=True, slots=True)
class Row:
    """One transition: where the input leads and what the engine must do on the way."""

    to: Phase
    actions: tuple[Action, ...] = ()
    note: str = ""


Table = Mapping[tuple[Phase, Input], Row]

_CUT = (Action.FLUSH_SPEAKER, Action.CANCEL_SYNTHESIS, Action.TRUNCATE_CONTEXT)
_HALT = (Action.FLUSH_SPEAKER, Action.CANCEL_SYNTHESIS, Action.CLOSE_MIC)


def _rows() -> dict[tuple[Phase, Input], Row]:
    P, I, A = Phase, Input, Action
    t: dict[tuple[Phase, Input], Row] = {}

    def row(phase: Phase, inp: Input, to: Phase, *actions: Action, note: str = "") -> None:
        t[(phase, inp)] = Row(to, tuple(actions), note)

    # IDLE: only START matters; tokens from a stale step are ignored.
    for inp in I:
        row(P.IDLE, inp, P.IDLE, note="no session: ignored")
    row(P.IDLE, I.AUDIO, P.IDLE, A.DROP_AUDIO, note="no session: never played")
    row(P.IDLE, I.START, P.LISTENING, A.OPEN_MIC, A.RESET_CONTEXT)

    # Behaviour shared by every running phase.
    for phase in (P.LISTENING, P.SPEAKING, P.DRAINING, P.DEGRADED):
        row(phase, I.STOP, P.IDLE, *_HALT)
        row(phase, I.START, phase, note="already running")
        row(phase, I.MUTE, phase, A.CLOSE_MIC)
        row(phase, I.UNMUTE, phase, A.OPEN_MIC)
        row(phase, I.DEVICE_ERROR, P.DEGRADED, *_CUT, note="device lost: stop talking")
        row(phase, I.DEVICE_RECOVERED, phase, note="nothing was lost")
        row(phase, I.RESET, P.LISTENING, A.FLUSH_SPEAKER, A.CANCEL_SYNTHESIS, A.RESET_CONTEXT)
        row(phase, I.THINK, phase)
        row(phase, I.EOT, phase, note="no turn to end")
        row(phase, I.BREAK, phase, note="nothing to interrupt")
        row(phase, I.STOP_SPEAKING, phase, note="not speaking")
        row(phase, I.PLAYBACK_DONE, phase)
        row(phase, I.SHIFT, phase)
        row(phase, I.AUDIO, phase, A.DROP_AUDIO, note="no turn: never played")

    # LISTENING: the model may take the turn.
    row(P.LISTENING, I.SHIFT, P.SPEAKING, A.START_SPEAKER, note="model takes the turn")

    # SPEAKING: speech units are played; the user or an operator can cut in.
    row(P.SPEAKING, I.AUDIO, P.SPEAKING, A.PLAY_AUDIO)
    row(P.SPEAKING, I.THINK, P.SPEAKING, A.HOLD_SPEAKER, note="a held beat inside the turn: silence")
    row(P.SPEAKING, I.SHIFT, P.SPEAKING, note="already speaking")
    row(P.SPEAKING, I.BREAK, P.LISTENING, *_CUT, note="barge-in")
    row(P.SPEAKING, I.STOP_SPEAKING, P.LISTENING, *_CUT, note="cut off from outside")
    row(P.SPEAKING, I.EOT, P.DRAINING, note="turn ends once queued audio has played")
    row(P.SPEAKING, I.PLAYBACK_DONE, P.SPEAKING, note="speaker caught up; more may come")

    # DRAINING: the tail of the turn is still audible and can still be interrupted.
    row(P.DRAINING, I.PLAYBACK_DONE, P.LISTENING, note="turn over")
    row(P.DRAINING, I.BREAK, P.LISTENING, *_CUT, note="barge-in on the tail")
    row(P.DRAINING, I.STOP_SPEAKING, P.LISTENING, *_CUT, note="cut off from outside")
    row(P.DRAINING, I.SHIFT, P.SPEAKING, A.START_SPEAKER, note="next turn right away")
    row(P.DRAINING, I.AUDIO, P.DRAINING, A.DROP_AUDIO, note="after EOT: never played")

    # DEGRADED: a device is being reopened; only its recovery or STOP lead out. The model is not
    # heard meanwhile, and nothing it said before is played when the device comes back. The mic
    # stays as the user left it (muted stays muted).
    row(P.DEGRADED, I.DEVICE_RECOVERED, P.LISTENING, note="devices back: listening on the new streams")
    row(P.DEGRADED, I.DEVICE_ERROR, P.DEGRADED, note="still down")
    row(P.DEGRADED, I.SHIFT, P.DEGRADED, note="nobody can hear it")
    row(P.DEGRADED, I.RESET, P.DEGRADED, A.FLUSH_SPEAKER, A.CANCEL_SYNTHESIS, A.RESET_CONTEXT,
        note="forget the conversation; still waiting for the device")
    return t


class TableError(ValueError):
    """A transition table that could crash or wedge a conversation."""


def check_table(table: Table, initial: Phase = INITIAL) -> None:
    """Refuse a table with a missing pair, an unreachable phase or a trap phase."""
    missing = [f"{p.name}/{i.name}" for p in Phase for i in Input if (p, i) not in table]
    if missing:
        raise TableError(f"no row for {', '.join(missing)}")
    reached = _reachable(table, {initial})
    unreachable = [p.name for p in Phase if p not in reached]
    if unreachable:
        raise TableError(f"unreachable from {initial.name}: {', '.join(unreachable)}")
    traps = [p.name for p in Phase if initial not in _reachable(table, {p})]
    if traps:
        raise TableError(f"no way back to {initial.name} from: {', '.join(traps)}")


def _reachable(table: Table, start: set[Phase]) -> set[Phase]:
    seen, frontier = set(start), list(start)
    while frontier:
        phase = frontier.pop()
        for (src, _), row in table.items():
            if src is phase and row.to not in seen:
                seen.add(row.to)
                frontier.append(row.to)
    return seen


TRANSITIONS: Table = _rows()
check_table(TRANSITIONS)
