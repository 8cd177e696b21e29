"""Live figures on the PulseAudio loopback (no sound card needed); print JSON.

For each `--aec` kind: a question, then a `--reply-s` reply with the model's own voice leaking
into the microphone at `--echo-db`; counted: false barge-ins (BREAKs and self-pauses), ERLE
(mic before vs after the canceller, from `--record`), speaker underruns. Then, on a clean line
(a headset), `--cuts` barge-ins: stop latency on the probe recording and the runtime's
time-to-silence (flush -> last non-zero sample leaving the callback).

    python bench/live_loopback.py [--reply-s 60] [--echo-db -10] [--aec webrtc,speex,none] [--cuts 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio_io.aec import erle_db  # noqa: E402
from bench.aec_compare import REPLY_TEXT  # noqa: E402
from tests.live_harness import first_after, locate, probe_spans, silent_from, start_runtime  # noqa: E402
from tests.pulse_fixtures import missing_reason, start_pulse  # noqa: E402
from tests.speech import speak  # noqa: E402


def reply_wav(folder: Path, seconds: float) -> Path:
    audio, rate = sf.read(str(speak(folder, REPLY_TEXT, voice="en-us+m3")), dtype="float32")
    path = folder / f"reply-{seconds:g}.wav"
    sf.write(path, np.resize(audio, int(seconds * rate)), rate)
    return path


def events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines() if line.strip()]


def echo_run(root: Path, aec: str, args: argparse.Namespace) -> dict:
    folder = root / f"echo-{aec}"
    folder.mkdir()
    pulse = start_pulse(folder / "pulse")
    try:
        pulse.echo(args.echo_db)
        question = speak(root, "What will the weather be like this week?")
        runtime = start_runtime(pulse, folder, duration=args.reply_s + 6, extra=("--record", str(folder / "rec")),
                                sets=["policy.responder=wav", f"policy.reply_wav={reply_wav(root, args.reply_s)}",
                                      f"policy.max_reply_s={args.reply_s + 5}", f"live.aec={aec}"])
        runtime.wait_started()
        time.sleep(0.3)
        pulse.play(question).wait(timeout=10)
        runtime.finish(timeout=args.reply_s + 40)
    finally:
        pulse.close()
    ev = events(folder)
    starts = [e["t"] for e in ev if e.get("type") == "speaker" and e.get("what") == "started"]
    breaks = [e for e in ev if e.get("token") == "BREAK"]
    live = next(e for e in ev if e.get("what") == "live")
    raw, _ = sf.read(str(folder / "rec" / "mic_raw.wav"), dtype="float32")
    clean, _ = sf.read(str(folder / "rec" / "mic.wav"), dtype="float32")
    lo = int((starts[0] + 2) * 16_000) if starts else 0
    hi = int((starts[0] + args.reply_s - 1) * 16_000) if starts else 0
    return {"false_barge_ins": len(breaks) + max(0, len(starts) - 1 - len(breaks)), "breaks": len(breaks),
            "erle_db": round(erle_db(raw[lo:hi], clean[lo:hi]), 1) if hi > lo else None,
            "guard_s": live["guard_s"], "speaker_underruns": live["speaker_underruns"],
            "overruns": live["overruns"], "turn_latency_ms": live["turn_latency_ms"][:1]}


def cut_run(root: Path, args: argparse.Namespace) -> dict:
    folder = root / "cuts"
    folder.mkdir()
    pulse = start_pulse(folder / "pulse")
    question, stop = speak(root, "What is the weather like today?"), speak(root, "Stop, stop. Wait.")
    try:
        recording = pulse.record(folder / "probe.wav")
        runtime = start_runtime(pulse, folder, duration=6 + 6 * args.cuts,
                                sets=["policy.responder=wav", f"policy.reply_wav={reply_wav(root, 8)}",
                                      "policy.backchannel_max_s=0", "live.aec=none", "live.guard_s=0"])
        runtime.wait_started()
        time.sleep(0.4)
        pulse.play(question).wait(timeout=10)
        for n in range(1, args.cuts + 1):  # every "stop" is answered too, and the next "stop" cuts that
            runtime.wait_event(lambda e, n=n: e.get("what") == "started" and e.get("type") == "speaker"
                               and sum(1 for x in runtime.read_events() if x.get("type") == "speaker"
                                       and x.get("what") == "started") >= n, 10)
            time.sleep(1.5)
            pulse.play(stop).wait(timeout=10)
        runtime.finish(timeout=60)
        recording.terminate()
        recording.wait(timeout=5)
    finally:
        pulse.close()
    _, spk = probe_spans(folder / "probe.wav")
    turn, stops = [], []
    _, end = locate(folder / "probe.wav", question)
    for _ in range(args.cuts):
        answer = first_after(spk, end - 0.05)
        turn.append(round((answer[0] - end) * 1000) if answer else None)
        s_start, end = locate(folder / "probe.wav", stop, after=end + 0.5)
        stops.append(round((silent_from(spk, s_start) - s_start) * 1000))
    live = next(e for e in events(folder) if e.get("what") == "live")
    return {"turn_latency_ms": turn, "stop_latency_ms": stops, "time_to_silence_ms": live["time_to_silence_ms"],
            "block_ms": 20, "device_latency_ms": live["device_latency_ms"], "jitter_ms": live["jitter_ms"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reply-s", type=float, default=60.0)
    p.add_argument("--echo-db", type=float, default=-10.0)
    p.add_argument("--aec", default="webrtc,speex,none")
    p.add_argument("--cuts", type=int, default=3)
    args = p.parse_args()
    reason = missing_reason()
    if reason:
        raise SystemExit(f"live_loopback: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = {"echo_db": args.echo_db, "reply_s": args.reply_s,
               "echo": {aec: echo_run(root, aec, args) for aec in args.aec.split(",") if aec},
               "headset_cuts": cut_run(root, args) if args.cuts else None}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
