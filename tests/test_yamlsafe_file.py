"""One bounded reader for config and scenario files (`duplex.yamlsafe.read_file`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from duplex import yamlsafe
from duplex.config import load_config
from duplex.errors import ConfigError, ScenarioError
from duplex.scenario.spec import load_scenario

TEXT = "a: &x [1, 2, {b: 3}]\nc: *x\nd: {e: [true, null, 2.5]}\n"


def test_the_document_is_parsed_once_into_the_same_data_and_lines() -> None:
    document = yamlsafe.load_document(TEXT)
    assert document.data == yamlsafe.safe_load(TEXT)
    assert document.data["a"] is document.data["c"]  # an alias stays one shared value, never expanded
    assert document.node is not None and document.node.value[2][0].start_mark.line == 2


@pytest.mark.parametrize("load, error, what", [(load_config, ConfigError, "config file"),
                                               (load_scenario, ScenarioError, "scenario file")])
def test_config_and_scenario_files_fail_alike(tmp_path: Path, load, error, what) -> None:  # type: ignore[no-untyped-def]
    cases = {
        "missing.yaml": (None, f"missing.yaml: no such {what}"),
        "big.yaml": ("a: 1\n" + "#" * (yamlsafe.MAX_FILE_BYTES + 1), f"big.yaml: larger than 1024 KiB, not a {what}"),
        "latin1.yaml": (b"a: \xe9\n", "latin1.yaml: cannot read (UnicodeDecodeError)"),
        "bad.yaml": ("a: 1\nb: [\n", "bad.yaml:3: malformed YAML ("),
        "deep.yaml": ("x:\n  y: " + "[" * 100 + "]" * 100 + "\n", "deep.yaml:2: malformed YAML (nested deeper than 64"),
    }
    (tmp_path / "folder.yaml").mkdir()
    cases["folder.yaml"] = (None, "folder.yaml: not a regular file")
    for name, (content, needle) in cases.items():
        if isinstance(content, str):
            (tmp_path / name).write_text(content)
        elif isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        with pytest.raises(error) as info:
            load(tmp_path / name)
        assert needle in str(info.value) and "\n" not in str(info.value), (name, str(info.value))
