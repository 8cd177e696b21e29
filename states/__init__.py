"""The duplex controller: a pure, table-driven finite-state machine (see `states.table`)."""

from states.controller import Controller, Transition, transition
from states.table import INITIAL, TRANSITIONS, Action, Input, Phase, Row, TableError, check_table

__all__ = [
    "INITIAL",
    "TRANSITIONS",
    "Action",
    "Controller",
    "Input",
    "Phase",
    "Row",
    "TableError",
    "Transition",
    "check_table",
    "transition",
]
