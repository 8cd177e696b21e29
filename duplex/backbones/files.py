"""Checkpoint file helpers shared by the model backbones (one way to report a bad file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from duplex.errors import CheckpointError, one_line


def read_json_object(path: Path, missing: str) -> dict[str, Any]:
    """A checkpoint's JSON object (config.json); `missing` says what to do when the file is absent."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CheckpointError(path, f"missing ({missing})") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"not readable JSON ({one_line(exc)})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(path, "expected a JSON object")
    return data
