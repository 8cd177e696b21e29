"""Step compute of N tiny-fd conversations: one batched step (BatchedTinyFd) vs N separate models.

For each N, N conversations (the scenario clips with pauses, each lane at its own offset, so a
tick mixes listening, SHIFTs, speech and refills) are stepped for `--ticks` ticks after
`--warmup` ticks: batched, one `BatchedTinyFd.run_batch` over all N lanes per tick; separate, N
deep copies of the model (`SeparateModels`) stepping one after another. The figure per tick is
the time of the whole tick (all N steps): wall time, and the stepping thread's CPU time (the
compute alone: on a shared machine, wall-time p99s measure other people's load). Then the largest
N whose tick stays within one 160 ms step is searched for both, by wall median and by CPU p99.
Last, real-time runs: N conversations each stepping on its own thread every 160 ms through the
host (lanes' threads and the model thread, as in a server), counting steps that ended after their
period. The machine's load average is printed beside the figures.

    python bench/batched_step.py [--out bench/results/batched_step.json]
    python bench/batched_step.py --realtime-only --realtime b2:64,s:12 [--out ...]
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

from _report import emit  # noqa: E402

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


def tick_stats(ticks: list[tuple[float, float]]) -> dict[str, float]:
    """Wall time (what a client sees, other processes' load included) and the stepping thread's CPU
    time (the compute alone: on a shared machine, what a dedicated core would take)."""
    wall, cpu = stats([w for w, _ in ticks]), stats([c for _, c in ticks])
    return {**wall, "cpu_median_ms": cpu["median_ms"], "cpu_p99_ms": cpu["p99_ms"]}


class Clock:
    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ms = ((time.perf_counter() - self.wall) * 1e3, (time.thread_time() - self.cpu) * 1e3)


REFILL_CYCLE = 32  # steps between two refills of one conversation (context_steps 48 - window_steps 16)


def joins(n: int) -> list[int]:
    """The tick at which each of n conversations starts: spread over one refill cycle, as in a server
    where conversations begin at different times (lanes joined at once would all refill at once)."""
    return [k * REFILL_CYCLE // n for k in range(n)]


def chunk_of(audio: np.ndarray, step: int) -> np.ndarray:
    return audio[step * STEP: (step + 1) * STEP]


class BatchedRun:
    """N lanes of one BatchedTinyFd, stepped one tick at a time by `run_batch` (no threads)."""

    def __init__(self, prototype: Model, n: int, steps: int) -> None:
        from duplex.backbones.tiny_fd.batched import BatchedTinyFd

        self.host = BatchedTinyFd(prototype, capacity=n)
        self.lanes = [self.host.open().backbone for _ in range(n)]
        self.inputs = [conversation(k, steps) for k in range(n)]
        self.joins = joins(n)

    def tick(self, t: int) -> tuple[float, float]:
        rows = [(lane, chunk_of(self.inputs[k], t - self.joins[k]), None) for k, lane in enumerate(self.lanes)
                if t >= self.joins[k]]
        with Clock() as clock:
            self.host.run_batch(rows)
        return clock.ms

    def close(self) -> None:
        self.host.shutdown()


class SeparateRun:
    """N deep copies of the model (`SeparateModels`), stepped one after another each tick."""

    def __init__(self, prototype: Model, n: int, steps: int) -> None:
        host = SeparateModels(prototype, capacity=n)
        self.models = [host.open() for _ in range(n)]
        self.inputs = [conversation(k, steps) for k in range(n)]
        self.joins = joins(n)

    def tick(self, t: int) -> tuple[float, float]:
        with Clock() as clock:
            for k, model in enumerate(self.models):
                if t >= self.joins[k]:
                    model.backbone.step(chunk_of(self.inputs[k], t - self.joins[k]))
        return clock.ms

    def close(self) -> None:
        pass


def side_by_side(prototype: Model, n: int, warmup: int, ticks: int, kinds: tuple[type, ...]
                 ) -> list[list[tuple[float, float]]]:
    """Per-tick (wall, cpu) ms of each kind of run, their ticks interleaved so that the machine's load
    hits all alike."""
    runs = [kind(prototype, n, warmup + ticks) for kind in kinds]
    out: list[list[tuple[float, float]]] = [[] for _ in runs]
    try:
        for t in range(warmup + ticks):
            for run, times in zip(runs, out, strict=True):
                times.append(run.tick(t))
    finally:
        for run in runs:
            run.close()
    return [times[warmup:] for times in out]


def realtime(prototype: Model, n: int, seconds: float, shards: int) -> dict[str, float | str]:
    """N conversations in real time, each on its own thread stepping every 160 ms (start times spread
    over one period), for `seconds`: how many steps ended after their period (overruns), and the
    step latency from the tick to the tokens. shards > 0: lanes of one BatchedTinyFd with that many
    model threads; 0: SeparateModels (each conversation's steps on its own thread)."""
    import threading

    from duplex.backbones.tiny_fd.batched import BatchedTinyFd

    batched = shards > 0
    host = BatchedTinyFd(prototype, capacity=n, shards=shards) if batched else SeparateModels(prototype, capacity=n)
    models = [host.open() for _ in range(n)]
    steps = int(seconds / (STEP_MS / 1e3))
    inputs = [conversation(k, steps) for k in range(n)]
    latencies: list[float] = []
    overruns = [0]
    lock = threading.Lock()
    begin = time.perf_counter() + 0.5

    def drive(k: int) -> None:
        first = begin + k * STEP_MS / 1e3 / n
        for j in range(steps):
            tick = first + j * STEP_MS / 1e3
            time.sleep(max(0.0, tick - time.perf_counter()))
            models[k].backbone.step(inputs[k][j * STEP: (j + 1) * STEP])
            took = time.perf_counter() - tick
            with lock:
                latencies.append(took * 1e3)
                overruns[0] += took > STEP_MS / 1e3

    threads = [threading.Thread(target=drive, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    usage = host.usage()
    host.shutdown()
    result = {"n": n, "host": f"batched, {shards} model thread(s)" if batched else "separate", "steps": len(latencies),
              "overruns": overruns[0], "overrun_fraction": round(overruns[0] / len(latencies), 4), **stats(latencies)}
    if batched:
        result |= {"mean_batch": round(float(usage["mean_batch"]), 2), "late": usage["late"],
                   "skipped": usage["skipped"]}
    print(json.dumps(result), file=sys.stderr)
    return result


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
    p.add_argument("--threads", type=int, default=1, help="torch threads (per model thread)")
    p.add_argument("--warmup", type=int, default=40, help="ticks before measuring (all lanes have joined by then)")
    p.add_argument("--ticks", type=int, default=50)
    p.add_argument("--sizes", default="1,8,16,32,64")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each real-time run")
    p.add_argument("--realtime", default="",
                   help="real-time runs as host:N, host = b1 | b2 (batched, 1 or 2 model threads) | s (separate); "
                        "default: 32 and the capacities found, for each host")
    p.add_argument("--realtime-only", action="store_true", help="skip the tick measurements")
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    import torch

    from duplex.backbones import load_model

    prototype = load_model(load_config(overrides={"tiny_fd": {"threads": args.threads}}))
    torch.set_num_threads(args.threads)
    if args.realtime_only:
        emit({"loadavg_before": [round(x, 2) for x in os.getloadavg()],
              "realtime": [realtime(prototype, n, args.seconds, shards) for shards, n in runs(args.realtime)],
              "loadavg_after": [round(x, 2) for x in os.getloadavg()], "threads": args.threads}, args.out)
        return
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        batched, separate = (tick_stats(t) for t in side_by_side(prototype, n, args.warmup, args.ticks,
                                                              (BatchedRun, SeparateRun)))
        row = {"n": n, "batched": batched, "separate": separate,
               "speedup_median": round(separate["median_ms"] / batched["median_ms"], 2),
               "speedup_p99": round(separate["p99_ms"] / batched["p99_ms"], 2),
               "speedup_cpu_median": round(separate["cpu_median_ms"] / batched["cpu_median_ms"], 2),
               "speedup_cpu_p99": round(separate["cpu_p99_ms"] / batched["cpu_p99_ms"], 2)}
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    fits = {kind.__name__: {key: max_fitting(prototype, args, kind, key, rows) for key in ("median_ms", "cpu_p99_ms")}
            for kind in (BatchedRun, SeparateRun)}
    result = {
        "what": "ms per 160 ms tick for N conversations (wall, and the stepping thread's cpu): one batched step vs "
            "N separate models in turn",
        "checkpoint": prototype.name, "threads": args.threads, "warmup_ticks": args.warmup, "ticks": args.ticks,
        "context_steps": prototype.backbone.context_steps, "window_steps": prototype.backbone.window_steps,
        "loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "torch": torch.__version__, "sizes": rows,
        "max_n_within_160ms": fits,
        "capacity_ratio_cpu_p99": round(fits["BatchedRun"]["cpu_p99_ms"] / max(1, fits["SeparateRun"]["cpu_p99_ms"]),
                                        2),
        "encoder": encoder_split(prototype, 32),
    }
    one, separate = fits["BatchedRun"]["cpu_p99_ms"], fits["SeparateRun"]["cpu_p99_ms"]
    default = f"s:{separate},s:32,b1:32,b1:{one},b2:32,b2:{2 * one}"
    result["realtime"] = [realtime(prototype, n, args.seconds, shards) for shards, n in runs(args.realtime or default)]
    emit(result, args.out)


def runs(spec: str) -> list[tuple[int, int]]:
    """"b2:64,s:12" -> [(2, 64), (0, 12)]: (model threads, 0 = separate models; conversations)."""
    out = []
    for item in spec.split(","):
        host, n = item.split(":")
        out.append((0 if host == "s" else int(host[1:]), int(n)))
    return [(shards, n) for shards, n in out if n > 0]


def max_fitting(prototype: Model, args: argparse.Namespace, kind: type, key: str, rows: list[dict]) -> int:
    """The largest N whose tick's `key` (wall median, cpu p99) is within 160 ms for this kind of run: from
    the sizes measured, then by doubling and bisection beyond them (fewer ticks per probe)."""
    label = "batched" if kind.__name__ == "BatchedRun" else "separate"
    measured = {r["n"]: r[label][key] for r in rows}
    ok = max([n for n, ms in measured.items() if ms <= STEP_MS], default=0)
    bad = min([n for n, ms in measured.items() if ms > STEP_MS and n > ok], default=None)
    probe = max(10, args.ticks // 2)

    def fits(n: int) -> bool:
        return tick_stats(side_by_side(prototype, n, args.warmup, probe, (kind,))[0])[key] <= STEP_MS

    while bad is None:
        n = max(1, ok * 2)
        ok, bad = (n, None) if fits(n) else (ok, n)
    while bad - ok > max(1, ok // 16):
        n = (ok + bad) // 2
        ok, bad = (n, bad) if fits(n) else (ok, n)
    print(json.dumps({"kind": label, key: ok}), file=sys.stderr)
    return ok


if __name__ == "__main__":
    main()
