"""Suite results as a rich table, a JSON report (the contract in DESIGN.md) and JUnit XML."""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from duplex.scenario.runner import ScenarioResult


def _median(xs: Sequence[float]) -> str:
    return f"{statistics.median(xs):.2f}" if xs else "-"


def _value(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def print_table(results: Sequence[ScenarioResult], console: Console | None = None) -> None:
    console = console or Console(width=max(Console().width, 120))
    table = Table(title="duplex scenarios", show_lines=False)
    for col in ("scenario", "result", "turn latency s", "stop latency s", "barge-ins", "false", "false starts",
                "resumes", "overlap s", "fdb TOR turn/pause", "rtf"):
        table.add_column(col, justify="left" if col == "scenario" else "right")
    for r in results:
        m = r.metrics
        table.add_row(
            r.file.stem,
            "[green]pass[/]" if r.passed else "[bold red]FAIL[/]",
            _median(m.get("turn_latency_s", [])),
            _median(m.get("stop_latency_s", [])),
            str(m.get("barge_ins", "-")),
            str(m.get("false_barge_ins", "-")),
            str(m.get("false_starts", "-")),
            str(m.get("resumes_over_barge_in", "-")),
            _value(m.get("overlap_mean_s")),
            f"{_value(m.get('fdb_turn_tor'))}/{_value(m.get('fdb_pause_tor'))}",
            str(m.get("realtime_factor", "-")),
        )
    console.print(table)
    for r in results:
        for failure in r.failures:
            console.print(f"[red]FAIL[/] {r.file}: {failure}", soft_wrap=True)
    passed = sum(r.passed for r in results)
    console.print(f"{passed} passed, {len(results) - passed} failed")


def report_dict(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    passed = sum(r.passed for r in results)
    return {"scenarios": [r.to_dict() for r in results],
            "summary": {"passed": passed, "failed": len(results) - passed}}


def write_json(results: Sequence[ScenarioResult], path: Path) -> None:
    path.write_text(json.dumps(report_dict(results), indent=1) + "\n")


def write_junit(results: Sequence[ScenarioResult], path: Path) -> None:
    failures = sum(not r.passed for r in results)
    suite = ET.Element("testsuite", name="duplex-scenarios", tests=str(len(results)), failures=str(failures),
                       errors="0", time=f"{sum(r.wall_s for r in results):.3f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.file.stem, name=r.name, time=f"{r.wall_s:.3f}",
                             file=str(r.file))
        if not r.passed:
            failure = ET.SubElement(case, "failure", message=r.failures[0] if r.failures else "failed")
            failure.text = "\n".join(r.failures)
        props = ET.SubElement(case, "properties")
        for key, value in r.metrics.items():
            ET.SubElement(props, "property", name=key, value=json.dumps(value))
    ET.ElementTree(ET.Element("testsuites", tests=str(len(results)), failures=str(failures))).getroot().append(suite)
    tree = ET.ElementTree(suite)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
