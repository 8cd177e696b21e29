"""How every benchmark here hands back its figures: one JSON document on stdout, and in `--out`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit(report: dict[str, Any], out: Path | None = None) -> None:
    """Print `report` as indented JSON; with `out`, write the same text there too."""
    text = json.dumps(report, indent=1)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
