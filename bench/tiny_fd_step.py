"""Step compute of tiny-fd (one 160 ms user chunk in, four tokens out), as JSON.

Drives the shipped checkpoint's backbone directly over a long synthetic conversation (the
scenario clips, spaced so the model answers, is interrupted and listens), so the timings cover
listening, SHIFT (two passes), speaking and context refills. The machine's load average is
printed beside the figures: on a shared machine it matters.

    python bench/tiny_fd_step.py [--steps 1500] [--threads 1] [--out bench/results/tiny-fd-step.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import emit  # noqa: E402

from audio_io.wav import load_mono16k  # noqa: E402
from duplex.backbones.tiny_fd.loader import SHIPPED, load_folder  # noqa: E402

CLIPS = ROOT / "examples" / "scenarios" / "clips"


def conversation(steps: int) -> np.ndarray:
    """Questions with silences after them, and a cut-in now and then, for `steps` chunks."""
    parts, rng = [], np.random.default_rng(0)
    names = ["weather", "train", "table", "stop", "actually"]
    total = 0
    while total < steps * 2560:
        clip = load_mono16k(CLIPS / f"{names[int(rng.integers(len(names)))]}.wav")
        gap = np.zeros(int(rng.uniform(1.5, 6.0) * 16_000), np.float32)
        parts += [clip, gap]
        total += clip.size + gap.size
    return np.concatenate(parts)[: steps * 2560]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=SHIPPED)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--context-steps", type=int, default=48)
    p.add_argument("--window-steps", type=int, default=16)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    model = load_folder(args.checkpoint, context_steps=args.context_steps, window_steps=args.window_steps,
                        threads=args.threads)
    backbone = model.backbone
    audio = conversation(args.steps)
    for i in range(20):  # warm-up
        backbone.step(audio[i * 2560: (i + 1) * 2560])
    backbone.reset()
    load = os.getloadavg()
    times, kinds = [], {"listen": [], "shift": [], "speak": [], "refill": []}
    for k in range(args.steps):
        refills = backbone.refills
        t0 = time.perf_counter()
        tokens = backbone.step(audio[k * 2560: (k + 1) * 2560])
        ms = (time.perf_counter() - t0) * 1000
        times.append(ms)
        first = str(tokens[0])
        kind = ("refill" if backbone.refills != refills else "shift" if first == "SHIFT"
                else "speak" if first.startswith("AUDIO") else "listen")
        kinds[kind].append(ms)
    arr = np.array(times)
    result = {
        "bench": "tiny_fd_step", "steps": args.steps, "threads": args.threads,
        "step_ms_p50": round(float(np.percentile(arr, 50)), 3), "step_ms_p99": round(float(np.percentile(arr, 99)), 3),
        "step_ms_max": round(float(arr.max()), 3), "step_ms_mean": round(float(arr.mean()), 3),
        "by_kind_p50_ms": {k: round(float(np.median(v)), 3) for k, v in kinds.items() if v},
        "by_kind_count": {k: len(v) for k, v in kinds.items()},
        "context_steps": args.context_steps, "window_steps": args.window_steps,
        "loadavg_1m_at_start": round(load[0], 2), "cpus": os.cpu_count(),
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
