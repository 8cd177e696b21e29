"""Pool per-conversation metrics into one summary and print it beside the published rows."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from duplex.eval.published import NOT_IN_REPO, ROWS, SOURCE, published

# (label, key in the summary, key in the published rows or None)
STRICT_ROWS = [
    ("turns answered", "turns_answered", None),
    ("turn latency median s (user end -> audible)", "turn_latency_median_s", None),
    ("turn latency p90 s", "turn_latency_p90_s", None),
    ("  ... turns ending in a question: median / p90 s", "turn_latency_question_s", None),
    ("  ... turns ending in a statement (monologues): median / p90 s", "turn_latency_statement_s", None),
    ("false starts: turns with pauses/gaps", "false_starts_paused", None),
    ("false starts: all user turns", "false_starts_all", None),
    ("resumes over a barge-in", "resumes_over_barge_in", None),
    ("reply audible over a barge-in, mean s", "overlap_mean_s", None),
    ("reply goes on over backchannels", "continuation", None),
    ("reply goes on over coughs", "continuation_noise", None),
    ("reply ended by a backchannel or cough", "ended_by_backchannel", None),
    ("BREAKs while the user made no sound, -20 dB echo (bc set)", "echo_breaks", None),
]
FDB_ROWS = [
    ("fdb pause handling TOR ↓ (pause sets)", "fdb_pause_tor", "pause_tor"),
    ("fdb smooth turn-taking TOR ↑", "fdb_turn_tor", "turn_tor"),
    ("fdb smooth turn-taking latency s ↓", "fdb_turn_latency_s", "turn_latency_s"),
    ("fdb user interruption TOR ↑", "fdb_interrupt_tor", "interrupt_tor"),
    ("fdb user interruption latency s ↓", "fdb_interrupt_latency_s", "interrupt_latency_s"),
    ("fdb backchannel TOR ↓ (monologues)", "fdb_backchannel_tor", "backchannel_tor"),
    ("fdb backchannel frequency /s ↑", "fdb_backchannel_freq", "backchannel_freq"),
    ("fdb v1.5 stop latency s ↓", "fdb_stop_latency_s", "stop_latency_s"),
    ("fdb v1.5 response latency s ↓", "fdb_response_latency_s", "response_latency_s"),
]


# The held-out shapes whose user turn ends in a statement (every other shape ends in a question). A
# listener cannot tell a monologue's last statement from a statement followed by a long thinking pause
# (`long_pause`), so no backbone answers the one fast and waits out the other: the split shows the
# latency a user who asks a question gets, apart from the wait after a statement.
STATEMENT_SHAPES = ("monologue",)

# Each fdb_* figure is pooled over the conversations of its benchmark task shape when the run has
# any (the eval tool); over every conversation otherwise (a duplex-test suite).
FDB_TASKS = {
    "pause": ("pause_handling", "long_pause"),
    "turn": ("smooth_turn_taking",),
    "interrupt": ("user_interruption",),
    "stop": ("user_interruption",),
    "response": ("user_interruption",),
    "backchannel": ("monologue",),
}


def _ratio(num: int, den: int) -> dict[str, Any]:
    return {"n": num, "of": den, "rate": round(num / den, 3) if den else None}


def summarise(runs: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """`runs`: (shape, metrics) per conversation -> pooled strict and fdb_* figures."""
    def total(key: str, shapes: tuple[str, ...] | None = None) -> int:
        return int(sum(m.get(key, 0) or 0 for s, m in runs if shapes is None or s in shapes))

    def pooled(key: str) -> list[float]:
        return [float(x) for _, m in runs for x in m.get(key, [])]

    latencies = pooled("strict_turn_latency_s")
    split = bool({s for s, _ in runs} & set(STATEMENT_SHAPES))  # no monologue in the run: nothing to split

    def latency_split(statement: bool) -> str | None:
        xs = [float(x) for s, m in runs if (s in STATEMENT_SHAPES) == statement
              for x in m.get("strict_turn_latency_s", [])]
        return f"{statistics.median(xs):.3f} / {float(np.percentile(xs, 90)):.3f} (n={len(xs)})" if xs else None

    overlaps = pooled("overlap_s")
    out: dict[str, Any] = {
        "conversations": len(runs),
        "turns_answered": _ratio(total("turns_answered"), total("floors")),
        "turn_latency_median_s": round(statistics.median(latencies), 3) if latencies else None,
        "turn_latency_p90_s": round(float(np.percentile(latencies, 90)), 3) if latencies else None,
        "turn_latency_question_s": latency_split(statement=False) if split else None,
        "turn_latency_statement_s": latency_split(statement=True) if split else None,
        "false_starts_paused": _ratio(total("paused_floors_with_false_start"), total("floors_with_pauses")),
        "false_starts_all": _ratio(total("floors_with_false_start"), total("floors")),
        "false_start_onsets": total("false_starts"),
        "resumes_over_barge_in": _ratio(total("barge_ins_with_resume"), len(overlaps)),
        "overlap_mean_s": round(float(np.mean(overlaps)), 3) if overlaps else None,
        "continuation": _ratio(total("continued_over_backchannel"), total("backchannels_over_reply")),
        "continuation_noise": _ratio(total("continued_over_noise"), total("noises_over_reply")),
        "ended_by_backchannel": _ratio(total("replies_ended_by_backchannel") + total("replies_ended_by_noise"),
                                       total("backchannels_over_reply") + total("noises_over_reply")),
        # BREAKs answering no turn or barge-in, a backchannel's and a cough's too: the table's row
        # until round 15, kept for comparison with the results written before (no longer shown)
        "echo_false_barge_ins": total("false_barge_ins", ("backchannel",)),
        "echo_breaks": total("unprompted_breaks", ("backchannel",)),
    }
    items: dict[str, list[float]] = {}
    shapes = {s for s, _ in runs}
    for key in {k for _, m in runs for k in (m.get("fdb_items") or {})}:
        task = next((t for prefix, t in FDB_TASKS.items() if key.startswith(prefix)), ())
        pool = [m for s, m in runs if s in task] if shapes & set(task) else [m for _, m in runs]
        items[key] = [float(x) for m in pool for x in (m.get("fdb_items") or {}).get(key, [])]
    for key, values in sorted(items.items()):
        out[f"fdb_{key}"] = {"mean": round(float(np.mean(values)), 3) if values else None, "n": len(values)}
    if any("fdb_unavailable" in m for _, m in runs):
        out["fdb_unavailable"] = next(m["fdb_unavailable"] for _, m in runs if "fdb_unavailable" in m)
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict) and "rate" in value:
        return "-" if value["rate"] is None else f"{value['n']}/{value['of']} ({value['rate']:.0%})"
    if isinstance(value, dict) and "mean" in value:
        return "-" if value["mean"] is None else f"{value['mean']:.3f} (n={value['n']})"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


def print_table(label: str, summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=max(Console().width, 210))
    table = Table(title=f"held-out conversations: {label}", show_lines=False)
    table.add_column("metric", no_wrap=True)
    table.add_column(label, justify="right")
    systems = list(ROWS)
    for system in systems:
        table.add_column(system, justify="right")
    for name, key, _ in STRICT_ROWS:
        table.add_row(name, _cell(summary.get(key)), *("n/a" for _ in systems))
    table.add_section()
    for name, key, pub in FDB_ROWS:
        cells = [_cell(published(s, pub)) if pub else NOT_IN_REPO for s in systems]
        table.add_row(name, _cell(summary.get(key)), *cells)
    table.add_section()
    table.add_row("code version of the row", "this commit", *(str(ROWS[s]["code"]) for s in systems))
    console.print(table)
    console.print(f"Published rows: {SOURCE}; strict metrics are not published for them (n/a). "
                  "fdb_* here use Silero VAD segments in place of the benchmark's ASR words.", soft_wrap=True)
    if "fdb_unavailable" in summary:
        console.print(f"[yellow]fdb_* not computed: {summary['fdb_unavailable']}[/]")
