"""Live thin client vs local, on the PulseAudio loopback: turn latency, stop latency, time-to-silence; JSON.

The same conversation as tests/test_live_loopback.py's headset test (the policy backbone speaking
a fixed reply, a question, a cut-in 1.2 s into the answer), run alternately by `duplex-chat` with
the model in-process and by `duplex-chat --server` against a `duplex-serve` on localhost.
Turn and stop latencies are read off one recording of the loopback (every buffer a user hears);
time-to-silence (the local flush -> the speaker's last non-zero sample) from the client's summary.
The target: the thin client adds at most one step (160 ms) to turns, and time-to-silence is unchanged.

    python bench/serve_live_latency.py [--rounds 3] [--out bench/results/serve_live_latency.json]
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import emit  # noqa: E402

from tests.live_harness import first_after, locate, probe_spans, silent_from, start_runtime  # noqa: E402
from tests.pulse_fixtures import missing_reason, start_pulse  # noqa: E402
from tests.serve_fixtures import ServerProcess  # noqa: E402
from tests.speech import speak  # noqa: E402
from tests.test_live_loopback import BLOCK_MS, reply_wav  # noqa: E402

HEADSET = [f"live.block_ms={BLOCK_MS}", "live.aec=none", "live.guard_s=0"]
TTS = re.compile(r"time-to-silence median (\d+) ms")


def one_round(root: Path, name: str, speech: Any, model_sets: list[str],
              server: ServerProcess | None) -> dict[str, Any]:
    folder = root / name
    folder.mkdir()
    pulse = start_pulse(folder / "pulse")
    try:
        question = speech("What is the weather like today?")
        stop = speech("Stop, stop. Wait a moment please.")
        recording = pulse.record(folder / "probe.wav")
        extra = ("--server", server.url) if server is not None else ()
        runtime = start_runtime(pulse, folder, duration=11.0, extra=extra,
                                sets=HEADSET + ([] if server is not None else model_sets))
        runtime.wait_started()
        time.sleep(0.4)
        pulse.play(question).wait(timeout=10)
        runtime.wait_event(lambda e: e.get("type") == "speaker" and e.get("what") == "started", 4.0)
        time.sleep(1.2)
        pulse.play(stop).wait(timeout=10)
        out, _ = runtime.finish()
        time.sleep(0.3)
        recording.terminate()
        recording.wait(timeout=5)
    finally:
        pulse.close()
    probe = folder / "probe.wav"
    _, q_end = locate(probe, question)
    s_start, _ = locate(probe, stop, after=q_end)
    _, spk = probe_spans(probe)
    answer = first_after(spk, q_end - 0.05)
    tts = TTS.search(out)
    return {"turn_ms": round((answer[0] - q_end) * 1000) if answer else None,
            "stop_ms": round((silent_from(spk, s_start) - s_start) * 1000),
            "time_to_silence_ms": int(tts.group(1)) if tts else None}


def medians(rounds: list[dict[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in ("turn_ms", "stop_ms", "time_to_silence_ms"):
        values = [r[key] for r in rounds if r[key] is not None]
        out[key] = float(np.median(values)) if values else None
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    reason = missing_reason()
    if reason:
        raise SystemExit(f"serve_live_latency: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "speech").mkdir()

        def speech(text: str, **kw: Any) -> Path:
            return speak(root / "speech", text, **kw)

        reply = reply_wav(speech, root, 8.0)
        model = ["backbone=policy", "policy.responder=wav", f"policy.reply_wav={reply}", "policy.backchannel_max_s=0"]
        server_args = ["--no-batched", *[a for s in model for a in ("--set", s)]]
        local, remote = [], []
        with ServerProcess(root, *server_args) as server:
            for i in range(args.rounds):
                local.append(one_round(root, f"local{i}", speech, model, None))
                remote.append(one_round(root, f"remote{i}", speech, model, server))
    m_local, m_remote = medians(local), medians(remote)
    report = {
        "bench": "serve_live_latency", "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "local": {"median": m_local, "rounds": local}, "thin_client": {"median": m_remote, "rounds": remote},
        "added_by_thin_client_ms": {k: (None if m_local[k] is None or m_remote[k] is None
                                        else round(m_remote[k] - m_local[k], 1)) for k in m_local},
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
