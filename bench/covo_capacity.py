"""How many real-time Covo conversations one model carries: lanes of `BatchedCovo` (native mode).

For each N, N conversations step on their own threads every 160 ms (start times spread over one
period) through one `BatchedCovo` host, whose model thread runs every pending step as one batched
decode: the server's shape without the network (`bench/serve_capacity.py` adds it for tiny-fd).
A level passes when the step latency (the tick -> the step's four tokens) has p99 <= 160 ms and
no step is late (`usage()`'s `late`: the lane could not send its next chunk within one period).
N doubles until a level fails, then is bisected. Each conversation hears speech (the example
question, looped) at its own offset.

`--config 7b --random-init --device cuda` is the published 7B architecture at random weights, bf16
(issue #14's target: >= 16 conversations with p99 <= 160 ms on one H100/H200); `--config tiny`
runs the same code on CPU with the test suite's tiny checkpoint.

    python bench/covo_capacity.py --config tiny --device cpu [--out bench/results/covo_capacity_cpu_tiny.json]
    python bench/covo_capacity.py --config 7b --random-init --device cuda --out bench/results/covo_capacity_h200_7b.json
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from _report import emit  # noqa: E402

from audio_io.format import STEP_SAMPLES, STEP_SECONDS  # noqa: E402
from audio_io.wav import load_mono16k  # noqa: E402
from duplex.backbones.base import Model  # noqa: E402
from duplex.backbones.covo import factory  # noqa: E402
from duplex.backbones.covo.batched import BatchedCovo  # noqa: E402
from duplex.backbones.covo.config import CovoConfig  # noqa: E402
from duplex.backbones.covo.vocoder import SilentVocoder  # noqa: E402

BUDGET_MS = STEP_SECONDS * 1000
_spec = importlib.util.spec_from_file_location("covo_step", ROOT / "bench" / "covo_step.py")
covo_step = importlib.util.module_from_spec(_spec)  # its checkpoint builders: tiny, random 7B
_spec.loader.exec_module(covo_step)  # type: ignore[union-attr]


def level(prototype: Model, speech: np.ndarray, n: int, seconds: float) -> dict[str, Any]:
    host = BatchedCovo(prototype, capacity=n)
    lanes = [host.open() for _ in range(n)]
    steps = round(seconds / STEP_SECONDS)
    chunks = [speech[i: i + STEP_SAMPLES] for i in range(0, speech.size - STEP_SAMPLES + 1, STEP_SAMPLES)]
    latencies: list[float] = []
    lock = threading.Lock()
    begin = time.perf_counter() + 0.5

    def drive(k: int) -> None:
        first = begin + k * STEP_SECONDS / n
        for j in range(steps):
            tick = first + j * STEP_SECONDS
            time.sleep(max(0.0, tick - time.perf_counter()))
            lanes[k].backbone.step(chunks[(j + 7 * k) % len(chunks)])
            with lock:
                latencies.append((time.perf_counter() - tick) * 1000)

    threads = [threading.Thread(target=drive, args=(k,), name=f"conversation-{k}") for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    usage = host.usage()
    for lane in lanes:
        host.close(lane)
    host.shutdown()
    measured = latencies[n * 3:]  # the first steps of each conversation open its context
    p99 = float(np.percentile(measured, 99))
    result = {"n": n, "steps_measured": len(measured), "step_ms_p50": round(float(np.percentile(measured, 50)), 2),
              "step_ms_p99": round(p99, 2), "late_steps": int(usage["late"]),
              "mean_batch": round(float(usage["mean_batch"]), 2),
              "passed": p99 <= BUDGET_MS and int(usage["late"]) == 0}
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


def ramp(prototype: Model, speech: np.ndarray, args: argparse.Namespace) -> tuple[int, int | None, list[dict]]:
    levels: list[dict[str, Any]] = []

    def passes(n: int) -> bool:
        levels.append(level(prototype, speech, n, args.seconds))
        return bool(levels[-1]["passed"])

    good, bad, n = 0, None, args.start_n
    while n <= args.max_n:
        if not passes(n):
            bad = n
            break
        good, n = n, n * 2
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if passes(mid) else (good, mid)
    return good, bad, levels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    covo_step.add_model_arguments(p)
    p.add_argument("--seconds", type=float, default=8.0, help="length of each level's conversations")
    p.add_argument("--start-n", type=int, default=2)
    p.add_argument("--max-n", type=int, default=128)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU intra-op threads")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if not (1 <= args.start_n <= args.max_n and args.seconds > 0):
        covo_step.fail("covo_capacity.py: need 1 <= --start-n <= --max-n and --seconds > 0")
    base = CovoConfig(device=args.device, mode="native", cache="static", context_tokens=4096,
                      refill_keep_tokens=2048, encoder_window_steps=16)
    rt = factory.runtime(base)
    if rt.device.type == "cpu":
        torch.set_num_threads(args.threads)
    covo_step.check_model_arguments(args, rt, "covo_capacity.py")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = covo_step.tiny_checkpoint(Path(tmp), rt) if args.config == "tiny" else covo_step.random_7b(rt)
        backbone = factory.native_backbone(dataclasses.replace(base), ckpt, covo_step.vocab_of(ckpt), rt)
        prototype = Model(backbone=backbone, vocoder=SilentVocoder(), name=f"covo/native ({args.config})")
        good, bad, levels = ramp(prototype, load_mono16k(covo_step.SPEECH), args)
    out = {"bench": "covo_capacity", "config": args.config, "device": covo_step.device_name(rt.device),
           "dtype": str(rt.dtype), "command": "python bench/covo_capacity.py " + " ".join(sys.argv[1:]),
           "criterion": "step p99 (tick -> tokens) <= 160 ms and no late step", "seconds_per_level": args.seconds,
           "max_realtime_conversations": good, "first_failing_n": bad, "levels": levels,
           "target_on_one_h100": {"conversations": 16, "step_ms_p99": 160}}
    if rt.device.type != "cuda":
        out["note"] = "CPU run with the tiny config: shows the path works; says nothing about the 7B target."
    emit(out, args.out)


if __name__ == "__main__":
    main()
