"""How many real-time conversations one `duplex-serve` carries: batched host vs one model per conversation.

For each host (`--batched`, then `--no-batched`) a server runs in a subprocess on localhost and N
scripted clients (one asyncio task each, in this process, frames pre-encoded) stream a WAV at
real time, one 160 ms frame per step, with random phases inside the step. A step's latency is
measured where a user would feel it, at the client: frame k sent -> the speaker block computed from
it received (loopback, so the network adds next to nothing). A level passes when the step p99 is
<= 160 ms and no step is skipped (every block arrives; no client falls a step behind its own
schedule). N is ramped up (doubling) until a level fails, then bisected; the answer is the
largest N that passed. The first `--warmup` steps of each client are left out (first forwards).

Both servers and every client share this machine's cores (the brief: 2): the clients are part of
the load, as they would be for a load test on the server itself. Each host gets its best torch
thread count (`duplex-serve --threads`, process-wide; also its default): the batched host runs
one model thread, so it gets every core (measured: 10 conversations with 1 thread, 26 with 2); separate models run one
thread per lane, so 1 each. The load average at the start
of each host's ramp is printed beside the figures: on a shared machine it matters.

The server runs duplex-serve's default config (since round 14 duplex-chat's: the cue model and the
recogniser of words, a process per conversation); `--server-arg=--set=tiny_fd.cues=false` measures
tiny-fd's own timing, `--server-arg=--set=tiny_fd.cue_words=false` the cue model alone.

Every client streams the same input from its start by default, so with the cue rules every lane
asks for its verdicts in the same step: the worst case. `--stagger` starts each client at its own
point of the input, as users who do not all speak at once.

    python bench/serve_capacity.py [--seconds 10] [--max-n 256] [--stagger] [--out bench/results/serve_capacity.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import OneLineParser, emit, fail  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from audio_io.errors import AudioFileError  # noqa: E402
from audio_io.format import STEP_SECONDS  # noqa: E402
from duplex.serve import protocol  # noqa: E402
from duplex.serve.client import frames_of  # noqa: E402

BUDGET_MS = STEP_SECONDS * 1000


@dataclass
class ClientRun:
    sent: list[float] = field(default_factory=list)  # perf_counter when frame k was sent
    received: list[float] = field(default_factory=list)  # perf_counter when block k arrived
    behind: int = 0  # frames sent more than a step after their due time (the client could not keep up)
    failed: str = ""


async def one_client(url: str, frames: list[bytes], steps: int, start: float, run: ClientRun,
                     offset: int = 0) -> None:
    try:
        async with connect(url, subprotocols=[protocol.SUBPROTOCOL], compression=None,  # type: ignore[list-item]
                           max_size=protocol.MAX_MESSAGE_BYTES, open_timeout=30) as ws:
            protocol.check_hello(await ws.recv())
            receiver = asyncio.create_task(receive(ws, run, steps + 1))
            await asyncio.sleep(max(0.0, start - time.perf_counter()))
            t0 = time.perf_counter()
            for k in range(steps):
                due = t0 + k * STEP_SECONDS
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif -delay > STEP_SECONDS:
                    run.behind += 1
                run.sent.append(time.perf_counter())
                await ws.send(frames[(offset + k) % len(frames)])
            try:
                await asyncio.wait_for(receiver, timeout=10.0)
            except TimeoutError:
                run.failed = f"{steps + 1 - len(run.received)} blocks never came"
    except (OSError, ConnectionClosed, protocol.FrameError) as exc:
        run.failed = f"{type(exc).__name__}: {exc}"


async def receive(ws: Any, run: ClientRun, blocks: int) -> None:
    async for message in ws:
        if isinstance(message, bytes):
            run.received.append(time.perf_counter())
            if len(run.received) >= blocks:
                return


async def level(url: str, frames: list[bytes], n: int, seconds: float, warmup: int,
                stagger: bool = False) -> dict[str, Any]:
    steps = round(seconds / STEP_SECONDS)
    runs = [ClientRun() for _ in range(n)]
    begin = time.perf_counter() + 1.0 + n * 0.02  # everyone connected first (a lane is opened per connection)
    rng = random.Random(n)
    offsets = [rng.randrange(len(frames)) if stagger else 0 for _ in runs]
    await asyncio.gather(*(one_client(url, frames, steps, begin + rng.uniform(0, STEP_SECONDS), run, offset)
                           for run, offset in zip(runs, offsets, strict=True)))
    latencies, skipped, behind, failures = [], 0, 0, []
    for run in runs:
        if run.failed:
            failures.append(run.failed)
        # block k+1 is the one computed from frame k (block 0 is sent before any frame)
        got = min(len(run.sent), len(run.received) - 1)
        skipped += len(run.sent) - max(got, 0)
        behind += run.behind
        latencies += [(run.received[k + 1] - run.sent[k]) * 1000 for k in range(warmup, got)]
    values = np.array(latencies) if latencies else np.array([float("inf")])
    p99 = float(np.percentile(values, 99))
    return {"n": n, "steps_measured": len(latencies), "step_ms_p50": round(float(np.percentile(values, 50)), 2),
            "step_ms_p99": round(p99, 2), "step_ms_max": round(float(values.max()), 2),
            "late_steps": int((values > BUDGET_MS).sum()), "skipped_steps": skipped + behind,
            "failures": failures[:3], "passed": p99 <= BUDGET_MS and skipped + behind == 0 and not failures}


def start_server(batched: bool, capacity: int, extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    cmd = [sys.executable, "-m", "duplex.serve.serve_cli", "--port", "0", "--max-sessions", str(capacity),
           "--batched" if batched else "--no-batched", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = json.loads(raw)
        if line.get("what") == "listening":
            return proc, int(line["port"])
    raise RuntimeError(f"duplex-serve exited {proc.wait()} before listening: {shlex.join(cmd)}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def ramp(url: str, frames: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    """Double N until a level fails, then bisect between the last pass and the first failure."""
    levels: list[dict[str, Any]] = []

    async def passes(n: int) -> bool:
        result = await level(url, frames, n, args.seconds, args.warmup, args.stagger)
        levels.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
        await asyncio.sleep(1.0)  # the server closes the last level's conversations
        return bool(result["passed"])

    good, bad = 0, None
    n = args.start_n
    while n <= args.max_n:
        if not await passes(n):
            bad = n
            break
        good, n = n, n * 2
    while bad is not None and bad - good > args.resolution:
        mid = (good + bad) // 2
        if await passes(mid):
            good = mid
        else:
            bad = mid
    return {"max_realtime_conversations": good, "first_failing_n": bad, "levels": levels}


def host_run(batched: bool, frames: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    load = os.getloadavg()[0]
    threads = args.batched_threads if batched else args.separate_threads
    proc, port = start_server(batched, args.max_n, [f"--threads={threads}", *args.server_arg])
    try:
        result = asyncio.run(ramp(f"ws://127.0.0.1:{port}/", frames, args))
    finally:
        stop_server(proc)
    return {"batched": batched, "torch_threads": threads, "loadavg_1m_at_start": round(load, 2), **result}


def main() -> None:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", type=Path, default=ROOT / "examples/audio/conversation.wav",
                   help="what every client says (looped)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each level's conversations")
    p.add_argument("--warmup", type=int, default=3, help="first steps of each client left out")
    p.add_argument("--stagger", action="store_true",
                   help="each client starts at its own random point of the input (users who do not all speak at "
                        "once); without it every client speaks the same words in the same step, the worst case")
    p.add_argument("--start-n", type=int, default=4)
    p.add_argument("--max-n", type=int, default=256)
    p.add_argument("--resolution", type=int, default=2, help="bisect until the bracket is this narrow")
    p.add_argument("--server-arg", action="append", default=[], help="passed to duplex-serve (e.g. --set=...)")
    p.add_argument("--batched-threads", type=int, default=os.cpu_count() or 1,
                   help="torch threads of the batched host's one model thread (default: every core)")
    p.add_argument("--separate-threads", type=int, default=1,
                   help="torch threads per separate model (default 1: each lane is already a thread)")
    p.add_argument("--only", choices=["batched", "separate"], help="one host only (no ratio)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    for name, value, low in (("--seconds", args.seconds, 0.5), ("--warmup", args.warmup, 0),
                             ("--start-n", args.start_n, 1), ("--resolution", args.resolution, 1),
                             ("--batched-threads", args.batched_threads, 1),
                             ("--separate-threads", args.separate_threads, 1)):
        if value < low:
            fail("serve_capacity", f"{name} {value}: must be at least {low}")
    if args.max_n < args.start_n:
        fail("serve_capacity", f"--max-n {args.max_n}: must be at least --start-n ({args.start_n})")
    if args.warmup >= round(args.seconds / STEP_SECONDS):
        fail("serve_capacity", f"--warmup {args.warmup}: leaves no step of a {args.seconds:g} s level to measure")
    if args.out is not None and args.out.is_dir():
        fail("serve_capacity", f"--out {args.out}: is a directory")
    try:
        frames = frames_of(args.input)
    except AudioFileError as exc:
        fail("serve_capacity", f"--input {exc}")
    hosts = [h for h in ("batched", "separate") if args.only in (None, h)]
    try:
        results = {h: host_run(h == "batched", frames, args) for h in hosts}
    except RuntimeError as exc:  # duplex-serve refused its arguments (its own error line is above)
        fail("serve_capacity", str(exc))
    report: dict[str, Any] = {
        "bench": "serve_capacity", "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "criterion": f"client-side step p99 <= {BUDGET_MS:g} ms (frame sent -> its speaker block received) "
                     "and no skipped step", "cpus": os.cpu_count(), "seconds_per_level": args.seconds,
        "warmup_steps": args.warmup, "staggered": args.stagger,
        **{f"{h}_max": r["max_realtime_conversations"] for h, r in results.items()},
    }
    if len(results) == 2 and results["separate"]["max_realtime_conversations"]:
        report["ratio_batched_to_separate"] = round(
            results["batched"]["max_realtime_conversations"] / results["separate"]["max_realtime_conversations"], 2)
    report["hosts"] = results
    emit(report, args.out)


if __name__ == "__main__":
    main()
