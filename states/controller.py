"""The controller: a pure step function over the transition table, plus a tiny holder for it.

Pure on purpose: no I/O, no asyncio, no clock, so that every behaviour a user hears can be
replayed and checked exhaustively in tests. The engine feeds it inputs and executes the actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from states.table import INITIAL, TRANSITIONS, Action, Input, Phase, Table


@dataclass(frozen=True, slots=True)
class Transition:
    """The result of one input: where the controller was, where it is, and what to do."""

    source: Phase
    target: Phase
    input: Input
    actions: tuple[Action, ...]

    @property
    def changed(self) -> bool:
        return self.source is not self.target


def transition(phase: Phase, inp: Input, table: Table = TRANSITIONS) -> Transition:
    """(phase, input) -> (next phase, actions): the whole behaviour of the controller."""
    row = table[(phase, inp)]
    return Transition(phase, row.to, inp, row.actions)


@dataclass(slots=True)
class Controller:
    """Holds the current phase and applies `transition`; keeps no other state."""

    phase: Phase = INITIAL
    table: Table = field(default_factory=lambda: TRANSITIONS, repr=False)

    def feed(self, inp: Input) -> Transition:
        result = transition(self.phase, inp, self.table)
        self.phase = result.target
        return result
