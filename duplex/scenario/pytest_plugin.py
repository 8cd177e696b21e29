"""pytest plugin: scenario YAML files become test items, so `pytest examples/scenarios` just works.

Files are collected when they sit under a folder named in the `duplex_scenario_dirs` ini option
(default `examples/scenarios`) and look like scenarios (top-level `user:` and `expect:`). A
scenario with `slow: true` gets the `slow` marker. The failure message lists the failed
expectations with how far off they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("duplex_scenario_dirs", "folders whose *.yaml scenarios are collected as tests",
                  type="paths", default=[])
    parser.addoption("--duplex-config", type=Path, default=None, help="base config for duplex scenarios")


def _scenario_dirs(config: pytest.Config) -> list[Path]:
    dirs = [Path(p).resolve() for p in config.getini("duplex_scenario_dirs")]
    return dirs or [(config.rootpath / "examples" / "scenarios").resolve()]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    resolved = file_path.resolve()
    if not any(resolved.is_relative_to(d) for d in _scenario_dirs(parent.config)):
        return None
    from duplex.scenario.cli import is_scenario

    if not is_scenario(file_path):
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):
    def collect(self):  # noqa: ANN201
        item = ScenarioItem.from_parent(self, name=self.path.stem)
        if _declares_slow(self.path):
            item.add_marker(pytest.mark.slow)
        yield item


def _declares_slow(path: Path) -> bool:
    import re

    return bool(re.search(r"^slow\s*:\s*true\s*$", path.read_text(errors="replace"), re.M | re.I))


class ScenarioFailed(Exception):
    pass


class ScenarioItem(pytest.Item):
    def runtest(self) -> None:
        from duplex.scenario.runner import run_scenario_file

        result = run_scenario_file(self.path, config=self.config.getoption("--duplex-config"))
        self.user_properties.extend((k, v) for k, v in result.metrics.items() if not isinstance(v, list))
        if not result.passed:
            raise ScenarioFailed("\n".join(result.failures))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return f"scenario {self.path.name} failed:\n  " + str(excinfo.value).replace("\n", "\n  ")
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.path.name}"
