"""Render a transition table as a Mermaid state diagram or a Markdown table.

Rendering works on any table (not only the shipped one) so that tests can feed it small
hand-made tables and compare the exact text.
"""

from __future__ import annotations

from collections import defaultdict

from states.table import INITIAL, Input, Phase, Table


def to_mermaid(table: Table, initial: Phase = INITIAL, *, include_self_loops: bool = False) -> str:
    """A `stateDiagram-v2`; edges between the same two phases are merged into one label."""
    edges: dict[tuple[Phase, Phase], list[str]] = defaultdict(list)
    for (src, inp), row in table.items():
        if src is row.to and not (include_self_loops and row.actions):
            continue
        label = inp.name
        if row.actions:
            label += " / " + ", ".join(a.value for a in row.actions)
        edges[(src, row.to)].append(label)
    lines = ["stateDiagram-v2", f"    [*] --> {initial.name}"]
    for (src, dst), labels in sorted(edges.items(), key=lambda e: (e[0][0].name, e[0][1].name)):
        lines.append(f"    {src.name} --> {dst.name}: {'<br/>'.join(sorted(labels))}")
    return "\n".join(lines) + "\n"


def to_markdown(table: Table) -> str:
    """Every (phase, input) pair with its target, actions and note: the documented behaviour."""
    lines = ["| phase | input | next | actions | note |", "|---|---|---|---|---|"]
    for phase in Phase:
        for inp in Input:
            row = table[(phase, inp)]
            actions = ", ".join(a.value for a in row.actions) or "-"
            lines.append(f"| {phase.name} | {inp.name} | {row.to.name} | {actions} | {row.note} |")
    return "\n".join(lines) + "\n"
