"""`python -m duplex.eval.compare A.json B.json ...`: results of `python -m duplex.eval --json` side by side.

Prints one Markdown table (a row per metric, a column per result), for docs that put the numbers
before and after a change next to each other. The summary is pooled again from each file's
conversations, so a file written before a row was added still fills it where its metrics allow.

A column can pool several draws of one setup, `LABEL=A.json,B.json` (each part may be a glob:
`default='bench/results/heldout-b-seed18[4-6]-tiny-fd-words.json'`): with the same code, one draw of
36 backchannels had the reply go on over 10 and another over 23 (docs/tiny-fd.md, round 18), so a
claim rests on several draws, and a draw counted twice or a file of another setup in the pool is an
error. `--interval` adds a 95 % Wilson interval to every count, which says how far a pooled rate
can be trusted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

from duplex.errors import DuplexError
from duplex.eval.summary import FDB_ROWS, STRICT_ROWS, _cell, summarise
from duplex.paths import listed_files

# what makes two result files draws of one setup (the seed is what differs); the label too, since a
# variant run from a harness keeps the config's name but not its label
SETUP_KEYS = ("label", "config", "family", "sentences", "noise", "per_shape")
Z95 = 1.959964


def _fail(message: str) -> NoReturn:
    print(f"duplex.eval.compare: {message}", file=sys.stderr)
    sys.exit(2)


def load(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        _fail(f"no such file: {path}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(f"{path}: not a duplex.eval JSON ({exc.__class__.__name__})")
    if not isinstance(report, dict) or "summary" not in report:
        _fail(f"{path}: not a duplex.eval JSON (no 'summary')")
    conversations = report.get("conversations")
    if isinstance(conversations, list) and conversations:
        try:
            report["summary"] = summarise([(c["shape"], c["metrics"]) for c in conversations])
        except (KeyError, TypeError) as exc:
            _fail(f"{path}: a conversation without its shape or metrics ({exc.__class__.__name__})")
    return report


def _paths(files: str, arg: str) -> list[Path]:
    """The files of one column (`arg`: the whole argument, for the error)."""
    try:
        return listed_files(files, arg)
    except DuplexError as exc:
        _fail(str(exc))


def _seeds(seeds: list[int]) -> str:
    """[171, 172, 173, 177] -> "171-173, 177"."""
    runs: list[list[int]] = []
    for s in sorted(seeds):
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def pooled(label: str | None, paths: list[Path]) -> dict[str, Any]:
    """One column from several draws of one setup: their conversations summarised together."""
    reports = [(path, load(path)) for path in paths]
    first_path, first = reports[0]
    seeds: dict[int, Path] = {}
    conversations: list[dict[str, Any]] = []
    for path, report in reports:
        for key in SETUP_KEYS:
            if report.get(key) != first.get(key):
                _fail(f"{path}: {key} {report.get(key)!r} differs from {first_path}'s {first.get(key)!r} "
                      "(a column pools draws of one setup)")
        seed = report.get("seed")
        if not isinstance(seed, int):
            _fail(f"{path}: no seed to pool by")
        if seed in seeds:
            _fail(f"{path}: seed {seed} is already in the column ({seeds[seed]})")
        seeds[seed] = path
        if not report.get("conversations"):
            _fail(f"{path}: no conversations to pool")
        conversations += report["conversations"]
    summary = summarise([(c["shape"], c["metrics"]) for c in conversations])
    name = label or str(first.get("label", "?"))
    return {**{k: first.get(k) for k in SETUP_KEYS}, "label": f"{name} (seeds {_seeds(list(seeds))})",
            "summary": summary}


def column(spec: str) -> dict[str, Any]:
    """A result file, or `[LABEL=]FILE[,FILE...]` pooled (a file whose name has a '=' is a file)."""
    label, sep, files = spec.partition("=")
    if not sep or Path(spec).exists():
        label, files = "", spec
    paths = _paths(files, spec)
    if len(paths) == 1 and not label:
        return load(paths[0])
    return pooled(label or None, paths)


def wilson(n: int, of: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of n successes in `of` trials."""
    p = n / of
    centre = (p + Z95**2 / (2 * of)) / (1 + Z95**2 / of)
    half = Z95 * math.sqrt(p * (1 - p) / of + Z95**2 / (4 * of**2)) / (1 + Z95**2 / of)
    return max(0.0, centre - half), min(1.0, centre + half)


def _cell_with_interval(value: Any) -> str:
    if isinstance(value, dict) and "rate" in value and value["rate"] is not None:
        lo, hi = wilson(value["n"], value["of"])
        return f"{value['n']}/{value['of']} ({value['rate']:.0%}; {lo:.0%}-{hi:.0%})"
    return _cell(value)


def markdown(reports: list[dict[str, Any]], interval: bool = False) -> str:
    cell = _cell_with_interval if interval else _cell
    head = ["metric", *(str(r.get("label", "?")) for r in reports)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, key, _ in [*STRICT_ROWS, *FDB_ROWS]:
        lines.append("| " + " | ".join([name, *(cell(r["summary"].get(key)) for r in reports)]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m duplex.eval.compare", description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+",
                   help="JSON files written by python -m duplex.eval --json; LABEL=F1,F2,... (globs too) pools draws")
    p.add_argument("--interval", action="store_true", help="a 95 %% Wilson interval after every count")
    args = p.parse_args(argv)
    print(markdown([column(spec) for spec in args.results], args.interval))


if __name__ == "__main__":
    main()
