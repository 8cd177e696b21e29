"""`python -m duplex.eval.compare A.json B.json ...`: results of `python -m duplex.eval --json` side by side.

Prints one Markdown table (a row per metric, a column per result file), for docs that put the
numbers before and after a change next to each other. The summary is pooled again from each file's
conversations, so a file written before a row was added still fills it where its metrics allow.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from duplex.eval.summary import FDB_ROWS, STRICT_ROWS, _cell, summarise


def _fail(message: str) -> None:
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


def markdown(reports: list[dict[str, Any]]) -> str:
    head = ["metric", *(str(r.get("label", "?")) for r in reports)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, key, _ in [*STRICT_ROWS, *FDB_ROWS]:
        lines.append("| " + " | ".join([name, *(_cell(r["summary"].get(key)) for r in reports)]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m duplex.eval.compare", description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="JSON files written by python -m duplex.eval --json")
    args = p.parse_args(argv)
    reports = [load(path) for path in args.results]
    print(markdown(reports))


if __name__ == "__main__":
    main()
