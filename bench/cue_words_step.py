"""Step time of tiny-fd with the cue model, with and without the recogniser of words, at the pace
of a live conversation, as JSON.

Why paced: the recogniser decodes in its own process while the user speaks, and a verdict waits
for it only if it is behind. An offline run (duplex-test, duplex.eval) feeds audio many times
faster than real time, so there it is always behind and its step p99 says nothing about a live
one. Here each 160 ms step starts on the clock, as a microphone delivers it; both variants take
the same chunk in the same tick (their order alternating), so the machine's load is shared.

    python bench/cue_words_step.py [--steps 400] [--out bench/results/cue-words-step.json]
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
from tiny_fd_step import conversation  # noqa: E402

from audio_io.format import STEP_SAMPLES, STEP_SECONDS, steps_covering  # noqa: E402
from duplex.backbones.tiny_fd.barge_in import RuleSettings  # noqa: E402
from duplex.backbones.tiny_fd.loader import SHIPPED, load_folder  # noqa: E402
from duplex.cue.runtime import CueModel  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=400, help="160 ms steps (400: 64 s of wall time)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if args.steps < 1:
        print(f"cue_words_step: --steps {args.steps}: must be at least 1", file=sys.stderr)
        sys.exit(2)
    variants = {}
    for name, words in (("cues", False), ("cues+words", True)):
        rules = RuleSettings(cues=CueModel(words=words), unfinished_quiet_steps=steps_covering(1.6))
        variants[name] = load_folder(SHIPPED, threads=1, rules=rules).backbone
    audio = conversation(args.steps)
    load = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in variants}
    late = 0
    tick = time.perf_counter()
    for k in range(args.steps):
        chunk = audio[k * STEP_SAMPLES: (k + 1) * STEP_SAMPLES]
        order = list(variants) if k % 2 == 0 else list(reversed(variants))
        for name in order:
            t0 = time.perf_counter()
            variants[name].step(chunk)
            times[name].append((time.perf_counter() - t0) * 1000)
        tick += STEP_SECONDS
        wait = tick - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        else:
            late += 1
    stats = {name: {"step_ms_p50": round(float(np.percentile(t, 50)), 3),
                    "step_ms_p99": round(float(np.percentile(t, 99)), 3),
                    "step_ms_max": round(float(np.max(t)), 3), "slowest_step": int(np.argmax(t)),
                    "steps_over_160_ms": int(np.sum(np.asarray(t) > STEP_SECONDS * 1000))} for name, t in times.items()}
    emit({"bench": "cue_words_step", "steps": args.steps, "variants": stats,
          "ratio_p50_words_over_cues": round(stats["cues+words"]["step_ms_p50"] / stats["cues"]["step_ms_p50"], 2),
          "ratio_p99_words_over_cues": round(stats["cues+words"]["step_ms_p99"] / stats["cues"]["step_ms_p99"], 2),
          "ticks_missed": late, "loadavg_1m_at_start": round(load[0], 2), "cpus": os.cpu_count()}, args.out)


if __name__ == "__main__":
    main()
