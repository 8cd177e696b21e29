"""How every benchmark here hands back its figures (one JSON document on stdout, and in `--out`),
and its errors (one line naming the culprit, exit status 2)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn


def fail(bench: str, message: str) -> NoReturn:
    """Bad input: one line on stderr, exit status 2, nothing written."""
    print(f"{bench}: {message}", file=sys.stderr)
    raise SystemExit(2)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (`fail`), not a usage block."""

    def error(self, message: str) -> NoReturn:
        fail(self.prog.removesuffix(".py"), message)


def emit(report: dict[str, Any], out: Path | None = None) -> None:
    """Print `report` as indented JSON; with `out`, write the same text there too."""
    text = json.dumps(report, indent=1)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
