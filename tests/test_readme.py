"""The README's configuration reference is generated from the config dataclasses and kept current."""

from __future__ import annotations

from pathlib import Path

from scripts.update_readme_config import render

ROOT = Path(__file__).resolve().parents[1]


def test_readme_config_reference_is_current() -> None:
    assert render() in (ROOT / "README.md").read_text(), "run: python scripts/update_readme_config.py"


def test_readme_links_resolve() -> None:
    import re

    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
