"""Held-out evaluation of tiny-fd through the scenario runner: `python -m duplex.backbones.tiny_fd.evaluate`.

Writes a suite of scenario files (festival voices, a TTS family never used in training, or v1's held-out
espeak-ng voices; sentences and seeds never used in training) and runs it
with the real engine, controller and metrics, then aggregates the figures of the quality bar:
turn-taking rate and latency, takeovers in mid-turn pauses, barge-in stops and stop latency, and
how often backchannels, background noise and the model's own echo at -20 dB make it stop.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

from duplex.backbones.tiny_fd.speech import Pool
from duplex.backbones.tiny_fd.train import DEFAULT_CACHE
from duplex.scenario.metrics import BARGE_IN_GRACE_S
from duplex.scenario.runner import ModelCache, run_scenario_file

SR = 16_000
KINDS = ("turn", "pause", "barge", "backchannel", "noise", "echo")


def write_suite(out: Path, pool: Pool, n: int, seed: int) -> dict[str, dict[str, Any]]:
    """Scenario files under `out`; returns per-file facts the runner does not know (pause spans)."""
    rng = np.random.default_rng(seed)
    facts: dict[str, dict[str, Any]] = {}
    clips = out / "clips"
    clips.mkdir(parents=True, exist_ok=True)

    def wav(name: str, audio: np.ndarray) -> str:
        sf.write(clips / f"{name}.wav", audio, SR, subtype="PCM_16")
        return f"clips/{name}.wav"

    for kind in KINDS:
        for i in range(n):
            voice = pool.voices[int(rng.integers(len(pool.voices)))]
            gain = float(rng.uniform(-10, 0))
            name = f"{kind}-{i:02d}"
            final = voice["final"][int(rng.integers(len(voice["final"])))]
            user: list[dict[str, Any]] = []
            scenario: dict[str, Any] = {"name": name, "expect": []}
            fact: dict[str, Any] = {"kind": kind}
            if kind == "pause":
                parts, pauses, t = [], [], 0.0
                for _ in range(int(rng.integers(1, 3))):
                    frag = voice["fragment"][int(rng.integers(len(voice["fragment"])))]
                    gap = float(rng.uniform(0.3, 1.0))
                    parts += [frag, np.zeros(round(gap * SR), np.float32)]
                    t += frag.size / SR
                    pauses.append((t, t + gap))
                    t += gap
                audio = np.concatenate([*parts, final])
                fact["pauses"] = [(0.5 + a, 0.5 + b) for a, b in pauses]
            else:
                audio = final
            user.append({"audio": wav(name, audio), "at": 0.5, "gain_db": round(gain, 1)})
            duration = 0.5 + audio.size / SR + 9.0
            if kind == "barge":
                barge = voice["barge"][int(rng.integers(len(voice["barge"])))]
                delay = float(rng.uniform(0.4, 2.5))
                user.append({"audio": wav(name + "-barge", barge), "role": "barge_in", "gain_db": round(gain, 1),
                             "after": {"event": "speaking_started", "nth": 1, "delay": round(delay, 2)}})
                duration += barge.size / SR + 6.0
            if kind == "backchannel":
                at = float(rng.uniform(0.5, 1.2))
                for j in range(int(rng.integers(1, 3))):
                    bc = voice["backchannel"][int(rng.integers(len(voice["backchannel"])))]
                    user.append({"audio": wav(f"{name}-bc{j}", bc), "role": "backchannel", "gain_db": round(gain, 1),
                                 "after": {"event": "speaking_started", "nth": 1, "delay": round(at, 2)}})
                    at += bc.size / SR + float(rng.uniform(0.8, 1.5))
            if kind == "noise":
                scenario["noise"] = {"kind": "pink" if rng.random() < 0.5 else "white",
                                     "level_db": round(float(rng.uniform(-48, -40)), 1)}
            if kind == "echo":
                scenario["echo"] = {"gain_db": -20, "delay_ms": round(float(rng.uniform(20, 150)))}
            scenario["duration"] = round(duration, 2)
            scenario["user"] = user
            scenario["seed"] = int(rng.integers(1 << 30))
            (out / f"{name}.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
            facts[name] = fact
    return facts


def judge(results: list, facts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    turn_lat: list[float] = []
    turns = taken = pauses = pause_takeovers = 0
    barges = barge_stops = 0
    stop_lat: list[float] = []
    disturb = {"backchannel": [0, 0], "noise": [0, 0], "echo": [0, 0]}
    held = {"noise": 0, "echo": 0}  # model audio in more than one piece: a hold, or a turn nobody asked for
    for res in results:
        tl, fact = res.timeline, facts[res.name]
        if tl is None:
            continue
        first = tl.clips[0]
        turns += 1
        lat = tl.turn_latency(first)
        if lat is not None:
            taken += 1
            turn_lat.append(lat)
        if fact["kind"] == "pause":
            for a, b in fact["pauses"]:
                pauses += 1
                pause_takeovers += any(a < s <= b + 0.1 for s, _ in tl.model_spans)
        if fact["kind"] == "barge":
            clip = tl.clips[1]
            if tl.span_at(clip.start) is not None:
                barges += 1
                barge_stops += any(clip.covers(t, BARGE_IN_GRACE_S) for t in tl.breaks)
                if (s := tl.stop_latency(clip)) is not None:
                    stop_lat.append(s)
        if fact["kind"] == "backchannel":
            for clip in tl.clips[1:]:
                if tl.span_at(clip.start) is not None:
                    disturb["backchannel"][0] += 1
                    disturb["backchannel"][1] += any(clip.covers(t, BARGE_IN_GRACE_S) for t in tl.breaks)
        if fact["kind"] in ("noise", "echo"):
            disturb[fact["kind"]][0] += 1
            disturb[fact["kind"]][1] += bool(tl.breaks)
            held[fact["kind"]] += len(tl.model_spans) > 1
    med = statistics.median
    return {
        "turn_taking_rate": round(taken / max(turns, 1), 3), "turns": turns,
        "turn_latency_median_s": round(med(turn_lat), 3) if turn_lat else None,
        "turn_latency_p90_s": round(float(np.percentile(turn_lat, 90)), 3) if turn_lat else None,
        "pause_takeover_rate": round(pause_takeovers / max(pauses, 1), 3), "pauses": pauses,
        "barge_in_stop_rate": round(barge_stops / max(barges, 1), 3), "barge_ins": barges,
        "stop_latency_median_s": round(med(stop_lat), 3) if stop_lat else None,
        **{f"{k}_stop_rate": round(v[1] / max(v[0], 1), 3) for k, v in disturb.items()},
        **{f"{k}_cases": v[0] for k, v in disturb.items()},
        **{f"{k}_gap_rate": round(v / max(disturb[k][0], 1), 3) for k, v in held.items()},
        "scenarios_passed": sum(r.passed for r in results), "scenarios": len(results),
    }


BAR = {"turn_taking_rate": (">=", 0.95), "turn_latency_median_s": ("<=", 0.6), "pause_takeover_rate": ("<=", 0.15),
       "barge_in_stop_rate": (">=", 0.95), "stop_latency_median_s": ("<=", 0.5),
       "backchannel_stop_rate": ("<=", 0.10), "noise_stop_rate": ("<=", 0.10), "echo_stop_rate": ("<=", 0.10)}


def verdict(figures: dict[str, Any]) -> dict[str, bool]:
    out = {}
    for key, (op, bound) in BAR.items():
        v = figures.get(key)
        out[key] = bool(v is not None and (v >= bound if op == ">=" else v <= bound))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m duplex.backbones.tiny_fd.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default: the shipped one)")
    p.add_argument("--per-kind", type=int, default=12, help="scenarios per kind (6 kinds)")
    p.add_argument("--seed", type=int, default=4242)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--suite", type=Path, default=None, help="where to write the scenario files (default: a temp dir)")
    p.add_argument("--split", choices=("heldout", "val"), default="heldout",
                   help="heldout: unseen voices and sentences; val: training ones in new variants (for tuning)")
    p.add_argument("--family", choices=("festival", "espeak"), default="festival",
                   help="held-out voices: festival (a TTS family never used in training) or v1's held-out "
                        "espeak-ng voices")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="tiny_fd config override, e.g. break_threshold=0.7")
    p.add_argument("--report", type=Path, default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    started = time.perf_counter()
    suite = args.suite or Path(tempfile.mkdtemp(prefix="tiny-fd-heldout-"))
    suite.mkdir(parents=True, exist_ok=True)
    pool = Pool(args.cache, heldout=args.split == "heldout", family=args.family, seed=args.seed, variants=1)
    facts = write_suite(suite, pool, args.per_kind, args.seed)
    tiny: dict[str, Any] = {k: yaml.safe_load(v) for k, _, v in (item.partition("=") for item in args.set)}
    if args.checkpoint:
        tiny["checkpoint"] = str(args.checkpoint.resolve())
    config = {"backbone": "tiny-fd", "tiny_fd": tiny}
    (suite / "tiny-fd.yaml").write_text(yaml.safe_dump(config))
    cache = ModelCache()
    files = sorted(suite.glob("*-[0-9][0-9].yaml"))
    results = [run_scenario_file(f, config=suite / "tiny-fd.yaml", cache=cache) for f in files]
    figures = judge(results, facts)
    report = {"figures": figures, "passes": verdict(figures), "split": args.split, "family": args.family,
              "config": config,
              "suite": str(suite), "seed": args.seed,
              "per_kind": args.per_kind, "wall_s": round(time.perf_counter() - started, 1)}
    text = json.dumps(report, indent=1)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
