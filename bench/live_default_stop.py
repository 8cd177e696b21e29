"""The default model cut off on speakers, live on the PulseAudio loopback; print JSON.

What `tests/test_live_loopback.py::test_default_model_on_speakers_answers_and_stops_when_cut_off`
checks once, `--runs` times per variant, side by side: a question, the reply (tiny-fd, its own
voice leaking into the microphone at -10 dB, WebRTC's canceller), "Stop, stop. Wait a moment
please." one second into it. Per variant: the stop latency (the cut's first sound on the probe
recording -> the speaker silent, every buffer included) as median / p90 / max, and how often the
reply came back over the cut (resumed) or something besides the cut ended it (extra BREAKs).

    python bench/live_default_stop.py [--runs 12] [--variant default=] [--variant network=tiny_fd.cues=false]
    python bench/live_default_stop.py --server [--variant words=tiny_fd.cues=true,tiny_fd.cue_words=true]

A variant is `NAME=SET[,SET...]` (`--set` items for duplex-chat; empty: the default config). Runs
alternate between the variants so that a busy machine slows them alike. With `--server` the model
runs in a `duplex-serve` per variant (its `--set` items; one model per conversation) and
`duplex-chat --server` is the thin client on the loopback, its canceller local.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import OneLineParser  # noqa: E402
from _report import fail as report_fail  # noqa: E402

from tests.live_harness import locate, probe_spans, silent_from, start_runtime  # noqa: E402
from tests.pulse_fixtures import missing_reason, start_pulse  # noqa: E402
from tests.serve_fixtures import ServerProcess  # noqa: E402
from tests.speech import speak  # noqa: E402

QUESTION = "What is the weather like today?"
CUT = "Stop, stop. Wait a moment please."


def one_run(folder: Path, clips: tuple[Path, Path], sets: list[str], server: str | None = None) -> dict:
    question, cut = clips
    pulse = start_pulse(folder / "pulse")
    try:
        pulse.echo(-10.0)
        recording = pulse.record(folder / "probe.wav")
        extra, model = (("--server", server), []) if server else ((), sets)
        runtime = start_runtime(pulse, folder, duration=12.0, extra=extra, sets=["live.aec=webrtc", *model])
        runtime.wait_started()
        time.sleep(0.4)
        pulse.play(question).wait(timeout=10)
        answered = runtime.wait_event(lambda e: e.get("type") == "speaker" and e.get("what") == "started", 4.0)
        time.sleep(1.0)
        pulse.play(cut).wait(timeout=10)
        runtime.finish()
        time.sleep(0.3)
        recording.terminate()
        recording.wait(timeout=5)
    finally:
        pulse.close()
    if not answered:
        return {"answered": False}
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines() if line.strip()]
    _, q_end = locate(folder / "probe.wav", question)
    c_start, c_end = locate(folder / "probe.wav", cut, after=q_end)
    _, spk = probe_spans(folder / "probe.wav")
    stopped = silent_from(spk, c_start)
    return {"answered": True, "stop_latency_s": round(stopped - c_start, 3),
            "resumed": any(c_start < a < c_end for a, _ in spk if a > stopped),  # back over the cut
            "breaks": sum(1 for e in events if e.get("token") == "BREAK")}


def summary(runs: list[dict]) -> dict:
    stops = np.array([r["stop_latency_s"] for r in runs if r["answered"]])
    pct = (lambda q: round(float(np.percentile(stops, q)), 3)) if stops.size else (lambda q: None)
    return {"runs": len(runs), "answered": int(stops.size), "stop_latency_median_s": pct(50),
            "stop_latency_p90_s": pct(90), "stop_latency_max_s": pct(100),
            "over_0_65_s": int((stops > 0.65).sum()),  # the live test's bound (0.4 s offline + 0.25 s devices)
            "resumed": sum(r.get("resumed", False) for r in runs),
            "extra_breaks": sum(max(0, r.get("breaks", 1) - 1) for r in runs if r["answered"]),
            "stop_latency_s": stops.tolist()}


def fail(message: str) -> NoReturn:
    report_fail("live_default_stop", message)


def main() -> None:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=12)
    p.add_argument("--variant", action="append", default=[], metavar="NAME=SET[,SET...]")
    p.add_argument("--server", action="store_true", help="the model in a duplex-serve, a thin client on the loopback")
    p.add_argument("--keep", type=Path, metavar="DIR", help="keep every run's files here (a new folder)")
    args = p.parse_args()
    variants: dict[str, list[str]] = {}
    for item in args.variant or ["default="]:
        name, _, sets = item.partition("=")
        if not name or name in variants:
            fail(f"--variant {item!r}: want NAME=SET[,SET...], each NAME once")
        variants[name] = [s for s in sets.split(",") if s]
    if args.runs < 1:
        fail(f"--runs {args.runs}: want at least 1")
    if args.keep is not None and args.keep.exists():
        fail(f"--keep {args.keep}: already exists (a new folder, so that nothing is overwritten)")
    reason = missing_reason()
    if reason:
        fail(reason)
    results: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        root = Path(tmp)
        if args.keep is not None:
            args.keep.mkdir(parents=True)
            root = args.keep
        clips = (speak(root, QUESTION), speak(root, CUT))
        urls: dict[str, str | None] = dict.fromkeys(variants)
        if args.server:
            for name, sets in variants.items():
                args_ = ["--no-batched", *[a for s in sets for a in ("--set", s)]]
                urls[name] = servers.enter_context(ServerProcess(root, *args_, name=f"serve-{name}")).url
        for n in range(args.runs):
            for name, sets in variants.items():
                folder = root / f"{name}-{n}"
                folder.mkdir()
                results[name].append(one_run(folder, clips, sets, urls[name]))
    out = {name: summary(runs) for name, runs in results.items()}
    if len(out) > 1:
        first = next(iter(out))
        for name in list(out)[1:]:
            a, b = out[name]["stop_latency_median_s"], out[first]["stop_latency_median_s"]
            out[name]["median_ratio_to_" + first] = round(a / b, 2) if a and b else None
    print(json.dumps({"variants": variants, "server": args.server, "results": out}, indent=1))


if __name__ == "__main__":
    main()
