"""`duplex-test PATH...`: run scenario files or folders; exit 0 only if every expectation holds."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from duplex.cli import guarded
from duplex.errors import USER_ERRORS, DuplexError


def collect(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.yaml") if is_scenario(p)))
        elif path.exists():
            files.append(path)
        else:
            raise DuplexError(f"{path}: no such scenario file or folder")
    return files


def is_scenario(path: Path) -> bool:
    """A YAML file with top-level `user:` and `expect:` keys (configs beside scenarios are skipped)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return True  # let the runner report it
    return bool(re.search(r"^expect\s*:", text, re.M) and re.search(r"^user\s*:", text, re.M))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="duplex-test", description="Run scripted duplex conversations and check them.")
    p.add_argument("paths", nargs="+", type=Path, help="scenario files or folders of them")
    p.add_argument("--config", type=Path, help="base config; each scenario's `config:` overrides it")
    p.add_argument("--report", type=Path, help="write the JSON report here")
    p.add_argument("--junit", type=Path, help="write JUnit XML here")
    p.add_argument("--plot", type=Path, metavar="DIR", help="write one PNG timeline per scenario here")
    p.add_argument("--skip-slow", action="store_true", help="skip scenarios marked slow: true")
    return p


def _main(args: argparse.Namespace) -> int:
    from duplex.config import load_config
    from duplex.scenario.report import print_table, write_json, write_junit
    from duplex.scenario.runner import ModelCache, run_scenario_file
    from duplex.scenario.spec import load_scenario

    load_config(args.config)  # a bad base config is the user's error for the whole run
    files = collect(args.paths)
    from duplex.paths import scenario_outputs

    scenario_outputs(args, files)
    if args.skip_slow:
        files = [f for f in files if not _is_slow(f, load_scenario)]
    if not files:
        raise DuplexError("no scenario files found in " + ", ".join(map(str, args.paths)))
    cache = ModelCache()
    results = [run_scenario_file(f, config=args.config, cache=cache) for f in files]
    print_table(results)
    if args.report:
        write_json(results, args.report)
    if args.junit:
        write_junit(results, args.junit)
    if args.plot:
        from duplex.scenario.plot import plot_result

        args.plot.mkdir(parents=True, exist_ok=True)
        for r in results:
            plot_result(r, args.plot / f"{r.file.stem}.png")
    return 0 if all(r.passed for r in results) else 1


def _is_slow(path: Path, load) -> bool:  # noqa: ANN001
    try:
        return load(path).slow
    except USER_ERRORS:
        return False


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(guarded("duplex-test", _main, parser().parse_args(argv)))


if __name__ == "__main__":
    main()
