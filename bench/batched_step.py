"""Step compute of N tiny-fd conversations: one batched step (BatchedTinyFd) vs N separate models.

For each N, N conversations (the scenario clips with pauses, each lane at its own offset, so a
tick mixes listening, SHIFTs, speech and refills) are stepped for `--ticks` ticks after
`--warmup` ticks: batched, one `BatchedTinyFd.run_batch` over all N lanes per tick; separate, N
deep copies of the model (`SeparateModels`) stepping one after another. The figure per tick is
the wall time of the whole tick (all N steps). Then the largest N whose batched tick stays within
one 160 ms step (median and p99) is searched. The machine's load average is printed beside the
figures: on a shared machine it matters.

    python bench/batched_step.py [--threads 2] [--out bench/results/batched_step.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio_io.wav import load_mono16k  # noqa: E402
from duplex.backbones.base import Model  # noqa: E402
from duplex.config import load_config  # noqa: E402
from duplex.serve.host import SeparateModels  # noqa: E402

CLIPS = ROOT / "examples" / "scenarios" / "clips"
STEP = 2560
STEP_MS = 160.0
NAMES = ["weather", "train", "table", "stop", "actually", "hesitant", "mono1", "right", "paused", "yeah"]


def conversation(k: int, steps: int) -> np.ndarray:
    """Questions with pauses (the model answers, is cut in on, listens), lane k's own mix."""
    rng, parts, total = np.random.default_rng(k), [], 0
    while total < steps * STEP:
        clip = load_mono16k(CLIPS / f"{NAMES[int(rng.integers(len(NAMES)))]}.wav")
        gap = np.zeros(int(rng.uniform(0.3, 4.0) * 16_000), np.float32)
        parts += [clip, gap]
        total += clip.size + gap.size
    audio = np.concatenate(parts)
    offset = int(rng.integers(0, 40)) * STEP
    return np.concatenate([audio[offset:], audio[:offset]])[: steps * STEP]


def stats(ms: list[float]) -> dict[str, float]:
    return {"median_ms": round(float(np.median(ms)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def batched_ticks(prototype: Model, n: int, warmup: int, ticks: int) -> list[float]:
    from duplex.backbones.tiny_fd.batched import BatchedTinyFd

    host = BatchedTinyFd(prototype, capacity=n)
    try:
        lanes = [host.open().backbone for _ in range(n)]
        inputs = [conversation(k, warmup + ticks) for k in range(n)]
        out = []
        for t in range(warmup + ticks):
            rows = [(lane, inputs[k][t * STEP: (t + 1) * STEP], None) for k, lane in enumerate(lanes)]
            start = time.perf_counter()
            host.run_batch(rows)
            out.append((time.perf_counter() - start) * 1e3)
        return out[warmup:]
    finally:
        host.shutdown()


def separate_ticks(prototype: Model, n: int, warmup: int, ticks: int) -> list[float]:
    host = SeparateModels(prototype, capacity=n)
    models = [host.open() for _ in range(n)]
    inputs = [conversation(k, warmup + ticks) for k in range(n)]
    out = []
    for t in range(warmup + ticks):
        start = time.perf_counter()
        for k, model in enumerate(models):
            model.backbone.step(inputs[k][t * STEP: (t + 1) * STEP])
        out.append((time.perf_counter() - start) * 1e3)
    return out[warmup:]


def encoder_split(prototype: Model, n: int, repeats: int = 50) -> dict[str, float]:
    """Does batching the streaming encoder pay? One pass over n rows vs n passes of one row."""
    import torch

    net = prototype.backbone.net
    feats = torch.randn(n, 80, 16)
    states = [torch.zeros(n, layer.conv.in_channels, layer.left) for layer in net.encoder.layers]
    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(repeats):
            net.encoder(feats, states)
        t1 = time.perf_counter()
        for _ in range(repeats):
            for i in range(n):
                net.encoder(feats[i: i + 1], [s[i: i + 1] for s in states])
        t2 = time.perf_counter()
    return {"rows": n, "batched_ms": round((t1 - t0) / repeats * 1e3, 3),
            "one_row_at_a_time_ms": round((t2 - t1) / repeats * 1e3, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--ticks", type=int, default=50)
    p.add_argument("--sizes", default="1,8,16,32,64")
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    import torch

    from duplex.backbones import load_model

    prototype = load_model(load_config(overrides={"tiny_fd": {"threads": args.threads}}))
    torch.set_num_threads(args.threads)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        batched = stats(batched_ticks(prototype, n, args.warmup, args.ticks))
        separate = stats(separate_ticks(prototype, n, args.warmup, args.ticks))
        row = {"n": n, "batched": batched, "separate": separate,
               "speedup_median": round(separate["median_ms"] / batched["median_ms"], 2),
               "speedup_p99": round(separate["p99_ms"] / batched["p99_ms"], 2)}
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    fits = {"median": max_fitting(prototype, args, "median_ms", rows),
            "p99": max_fitting(prototype, args, "p99_ms", rows)}
    separate_fits = max([r["n"] for r in rows if r["separate"]["p99_ms"] <= STEP_MS], default=0)
    result = {
        "what": "wall ms per 160 ms tick for N conversations: one batched step vs N separate models in turn",
        "checkpoint": prototype.name, "threads": args.threads, "warmup_ticks": args.warmup, "ticks": args.ticks,
        "context_steps": prototype.backbone.context_steps, "window_steps": prototype.backbone.window_steps,
        "loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "torch": torch.__version__, "sizes": rows,
        "max_n_batched_within_160ms": fits,
        "max_n_separate_within_160ms_p99_of_sizes": separate_fits,
        "encoder": encoder_split(prototype, 32),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


def max_fitting(prototype: Model, args: argparse.Namespace, key: str, rows: list[dict]) -> int:
    """The largest N whose batched tick's `key` is within 160 ms: from the sizes measured, then by
    doubling and bisection beyond them (fewer ticks per probe)."""
    measured = {r["n"]: r["batched"][key] for r in rows}
    ok = max([n for n, ms in measured.items() if ms <= STEP_MS], default=0)
    bad = min([n for n, ms in measured.items() if ms > STEP_MS], default=None)
    probe = max(10, args.ticks // 2)
    while bad is None:
        n = ok * 2
        if stats(batched_ticks(prototype, n, args.warmup, probe))[key] <= STEP_MS:
            ok = n
        else:
            bad = n
    while bad - ok > max(4, ok // 16):
        n = (ok + bad) // 2
        if stats(batched_ticks(prototype, n, args.warmup, probe))[key] <= STEP_MS:
            ok = n
        else:
            bad = n
    return ok


if __name__ == "__main__":
    main()
