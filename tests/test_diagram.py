"""Diagram rendering from table data: hand-made tables, and the shipped one as Mermaid."""

from __future__ import annotations

import re
import subprocess
import sys

from states import TRANSITIONS, Action, Input, Phase, Row
from states.diagram import to_markdown, to_mermaid

MERMAID_EDGE = re.compile(r"^    (\[\*\]|[A-Z_]+) --> [A-Z_]+(: [^\n]+)?$")


def _tiny_table() -> dict:
    table = {(p, i): Row(p) for p in Phase for i in Input}
    table[(Phase.IDLE, Input.START)] = Row(Phase.LISTENING, (Action.OPEN_MIC,))
    table[(Phase.LISTENING, Input.SHIFT)] = Row(Phase.SPEAKING, (Action.START_SPEAKER,))
    table[(Phase.SPEAKING, Input.BREAK)] = Row(Phase.LISTENING, (Action.FLUSH_SPEAKER,))
    table[(Phase.SPEAKING, Input.STOP_SPEAKING)] = Row(Phase.LISTENING, (Action.FLUSH_SPEAKER,))
    return table


def test_mermaid_of_a_hand_made_table_is_exact() -> None:
    assert to_mermaid(_tiny_table()) == (
        "stateDiagram-v2\n"
        "    [*] --> IDLE\n"
        "    IDLE --> LISTENING: START / open_mic\n"
        "    LISTENING --> SPEAKING: SHIFT / start_speaker\n"
        "    SPEAKING --> LISTENING: BREAK / flush_speaker<br/>STOP_SPEAKING / flush_speaker\n"
    )


def test_self_loops_with_actions_can_be_included() -> None:
    table = _tiny_table()
    table[(Phase.SPEAKING, Input.AUDIO)] = Row(Phase.SPEAKING, (Action.PLAY_AUDIO,))
    assert "SPEAKING --> SPEAKING: AUDIO / play_audio" in to_mermaid(table, include_self_loops=True)
    assert "SPEAKING --> SPEAKING" not in to_mermaid(table)


def test_shipped_diagram_is_well_formed_mermaid() -> None:
    text = to_mermaid(TRANSITIONS)
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert all(MERMAID_EDGE.match(line) for line in lines[1:]), text
    for phase in Phase:
        assert phase.name in text


def test_markdown_table_documents_every_pair() -> None:
    rows = to_markdown(TRANSITIONS).splitlines()[2:]
    assert len(rows) == len(Phase) * len(Input)


def test_print_fsm_cli_prints_the_diagram() -> None:
    out = subprocess.run([sys.executable, "-m", "duplex", "--print-fsm"], capture_output=True, text=True, check=True)
    assert out.stdout == to_mermaid(TRANSITIONS)
