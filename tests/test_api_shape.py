"""The shape issue 12 asks for: one command vocabulary, typed events with exactly the JSONL contract,
a light lazily-loaded public API, one place that builds an Engine, small modules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import duplex
from duplex import commands
from duplex.events import Control, Event, Speaker, from_dict
from duplex.mqtt.protocol import parse_command
from duplex.tokens import Kind
from duplex.tui import KEYS

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_LINES = [line for p in sorted((ROOT / "tests" / "golden").glob("*.jsonl"))
                for line in p.read_text().splitlines()[1:] if '"*"' not in line]


def test_typed_events_write_exactly_the_recorded_json_lines() -> None:
    assert len(GOLDEN_LINES) > 100
    for line in GOLDEN_LINES:
        event = from_dict(json.loads(line))
        assert isinstance(event, Event) and event.to_json() == line


def test_consumers_can_match_on_event_classes() -> None:
    def what(event: Event) -> str:
        match event:
            case Control(token=Kind.BREAK):
                return "barge-in"
            case Speaker(audible=True):
                return "speaking"
        return "other"

    assert what(from_dict({"t": 1.0, "type": "control", "token": "BREAK"})) == "barge-in"
    assert what(from_dict({"t": 1.0, "type": "speaker", "what": "started"})) == "speaking"
    assert what(from_dict({"t": 1.0, "type": "speaker", "what": "stopped"})) == "other"
    with pytest.raises(ValueError, match="not an event line"):
        from_dict({"t": 1.0, "type": "speaker", "what": "loud"})


def test_mqtt_and_tui_use_the_one_command_vocabulary() -> None:
    for name, command in commands.WIRE.items():
        parsed = parse_command(json.dumps({"cmd": name}).encode(), max_bytes=100).cmd
        assert parsed == command and parsed.name == name
        assert isinstance(parsed, commands.HostCommand)
    assert all(isinstance(c, commands.ControlCommand) for c in KEYS.values())
    assert "Cmd" not in vars(sys.modules["duplex.mqtt.protocol"])


def test_import_duplex_is_light_and_every_public_name_resolves() -> None:
    code = ("import sys, duplex; heavy = [m for m in ('numpy', 'torch', 'duplex.session', 'duplex.engine') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    for name in duplex.__all__:
        assert getattr(duplex, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        duplex.nope  # noqa: B018


def test_examples_embed_imports_from_duplex_only() -> None:
    source = (ROOT / "examples" / "embed.py").read_text()
    imports = re.findall(r"^(?:from|import) (\S+)", source, flags=re.MULTILINE)
    ours = [m for m in imports if m.split(".")[0] in ("duplex", "audio_io", "states")]
    assert ours == ["duplex"]


def test_one_engine_construction_site_and_no_module_over_400_lines() -> None:
    sites = [f"{p.relative_to(ROOT)}" for p in (ROOT / "duplex").rglob("*.py") if "Engine(" in p.read_text()]
    assert sites == ["duplex/session.py"]
    long = {str(p.relative_to(ROOT)): n for p in [*(ROOT / "duplex").rglob("*.py"), *(ROOT / "audio_io").rglob("*.py"),
                                                   *(ROOT / "states").rglob("*.py")]
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
