"""`python -m duplex.eval`: build the held-out conversations, run a backbone, print one table.

    python -m duplex.eval                                   # tiny-fd (default config), festival voices
    python -m duplex.eval --config examples/policy.yaml --json bench/results/conversation_policy.json

Each conversation runs through the scenario runner's session path (`run_scenario`), so the
figures are the ones `duplex-test` reports. See docs/metrics.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from duplex.errors import DuplexError

if TYPE_CHECKING:
    from duplex.scenario.spec import NoiseSpec


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line naming the culprit (no usage block above it), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse(argv: list[str] | None) -> argparse.Namespace:
    from duplex.eval.heldout import BANKS, SHAPES
    from duplex.eval.tts import FAMILIES

    p = _Parser(prog="python -m duplex.eval", description=__doc__.split("\n")[0])
    p.add_argument("--config", type=Path, default=None, help="backbone config (default: the built-in default)")
    p.add_argument("--family", default="festival", choices=FAMILIES,
                   help="TTS family of the user's voices (festival is left out of tiny-fd's training)")
    p.add_argument("--seed", type=int, default=1, help="draws voices, sentences, pauses and delays")
    p.add_argument("--sentences", default="b", choices=tuple(BANKS),
                   help="sentence bank: b (default); c, d and e written in round 23, after the cue rules, and f "
                        "(twice the sentences) in round 24 (docs/metrics.md); a was looked at while tiny-fd v2 "
                        "was tuned")
    p.add_argument("--voices", default=None,
                   help="comma-separated family:voice list to draw from instead of the family's held-out voices "
                        "(a development set, e.g. festival:kal_diphone, which is no longer held out)")
    p.add_argument("--per-shape", type=int, default=3, help="conversations per task shape")
    p.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated subset of {', '.join(SHAPES)}")
    p.add_argument("--work", type=Path, default=Path(".cache/duplex-eval"), help="clip cache and conversations")
    p.add_argument("--json", type=Path, default=None, help="write the summary and every conversation here")
    p.add_argument("--label", default=None, help="column title (default: the config's name)")
    p.add_argument("--noise", default=None, metavar="KIND:DBFS",
                   help="a steady room noise under every conversation, white or pink, e.g. pink:-35 (default: none)")
    args = p.parse_args(argv)
    if args.noise is not None:
        args.noise = _noise(p, args.noise)
    unknown = [s for s in args.shapes.split(",") if s not in SHAPES]
    if unknown:
        p.error(f"--shapes: unknown {', '.join(unknown)} (one of {', '.join(SHAPES)})")
    if args.per_shape < 1:
        p.error("--per-shape must be >= 1")
    if args.config is not None and not args.config.is_file():
        p.error(f"--config: no such file: {args.config}")
    return args


def _noise(p: _Parser, text: str) -> NoiseSpec:
    """`--noise KIND:DBFS` as the scenarios' NoiseSpec, or one line naming what is wrong with it."""
    import math

    from duplex.scenario.spec import GENERATED_NOISES, QUIETEST_NOISE_DB, NoiseSpec

    kind, _, level = text.partition(":")
    try:
        db = float(level)
    except ValueError:
        db = math.nan
    if kind not in GENERATED_NOISES or not math.isfinite(db):
        p.error(f"--noise {text!r}: expected white:DBFS or pink:DBFS (e.g. pink:-35)")
    if not QUIETEST_NOISE_DB <= db <= 0.0:
        p.error(f"--noise {text!r}: {db:g} dBFS is not in {QUIETEST_NOISE_DB:g}..0")
    return NoiseSpec(kind, db)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from duplex.eval.heldout import Builder
    from duplex.eval.summary import print_table, summarise
    from duplex.eval.tts import Tts, check_family
    from duplex.scenario.runner import ModelCache, run_scenario
    from duplex.tts import check_voice

    check_family(args.family)
    voices = tuple(args.voices.split(",")) if args.voices else None
    for voice in voices or ():
        check_voice(voice)
    label = args.label or (args.config.stem if args.config else "default (tiny-fd)")
    family = "+".join(voices) if voices else args.family
    shapes = tuple(args.shapes.split(","))
    work = args.work / draw_folder(family, args.sentences, args.seed, args.per_shape, shapes)
    builder = Builder(args.family, args.seed, work, Tts(args.work / "tts"), bank=args.sentences, voices=voices,
                      noise=args.noise)
    conversations = builder.build(args.per_shape, shapes)
    cache = ModelCache()
    commit = _commit()  # before the run: the code that makes the figures
    runs, records = [], []
    started = time.perf_counter()
    for conv in conversations:
        result = run_scenario(conv.scenario, config=args.config, cache=cache)
        metrics = dict(result.metrics)
        runs.append((conv.shape, metrics))
        speaker = dataclasses.asdict(conv.speaker) if conv.speaker else None
        records.append({"name": conv.scenario.name, "shape": conv.shape, "sentences": list(conv.sentences),
                        "speaker": speaker, "failures": result.failures, "metrics": metrics})
        print(f"{conv.scenario.name}: {'pass' if result.passed else 'FAIL'} "
              f"(false starts {metrics.get('false_starts')}, resumes {metrics.get('resumes_over_barge_in')})",
              file=sys.stderr)
    summary = summarise(runs)
    by_shape = {shape: summarise([r for r in runs if r[0] == shape]) for shape in dict.fromkeys(s for s, _ in runs)}
    print_table(label, summary)
    return {"label": label, "commit": commit, "config": str(args.config) if args.config else None,
            "family": family, "sentences": args.sentences,
            "noise": f"{args.noise.kind}:{args.noise.level_db:g}" if args.noise else None,
            "seed": args.seed, "per_shape": args.per_shape, "wall_s": round(time.perf_counter() - started, 1),
            "summary": summary, "by_shape": by_shape, "conversations": records}


def draw_folder(family: str, sentences: str, seed: int, per_shape: int, shapes: tuple[str, ...]) -> str:
    """The folder of one draw's conversations. The seed draws them in order, so another shape list
    or count gives other conversations under the same names ("backchannel-1"): two runs sharing a
    folder would overwrite each other's clips."""
    from duplex.eval.heldout import SHAPES

    which = "all" if set(shapes) == set(SHAPES) else "+".join(shapes)
    return f"{family.replace(':', '_')}-{sentences}-seed{seed}-{per_shape}x-{which}"


def _commit() -> str | None:
    """The checkout's commit (with a `+dirty` mark), so a result names the code that made it."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    try:
        report = run(args)
    except DuplexError as exc:
        print(f"duplex.eval: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=float) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
