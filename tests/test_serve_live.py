"""The live thin client: `duplex-chat --server` on a private PulseAudio loopback, the model on a
`duplex-serve` over loopback TCP, held to the bounds of the local live test (tests/test_live_loopback.py):
the reply starts within the offline turn bound plus the jitter buffer and device allowance, and
the speaker falls silent within the offline stop bound after a cut-in (the flush is local)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.live_harness import start_runtime
from tests.pulse_fixtures import Pulse, missing_reason, pulse  # noqa: F401  (fixture)
from tests.serve_fixtures import ServerProcess
from tests.test_live_loopback import BLOCK_MS, check_turn_and_stop, reply_wav

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))


def test_live_thin_client_answers_and_falls_silent_when_cut_off(pulse: Pulse, speech, tmp_path: Path) -> None:  # noqa: F811
    reply = reply_wav(speech, tmp_path, 8.0)
    server = ServerProcess(tmp_path, "--no-batched", "--set", "backbone=policy", "--set", "policy.responder=wav",
                           "--set", f"policy.reply_wav={reply}", "--set", "policy.backchannel_max_s=0")
    with server:
        question = speech("What is the weather like today?")
        stop = speech("Stop, stop. Wait a moment please.")
        recording = pulse.record(tmp_path / "probe.wav")
        runtime = start_runtime(pulse, tmp_path, duration=11.0, extra=("--server", server.url), sets=[
            f"live.block_ms={BLOCK_MS}", "live.aec=none", "live.guard_s=0"])  # a headset: no echo to cancel
        runtime.wait_started()
        time.sleep(0.4)
        pulse.play(question).wait(timeout=10)
        assert runtime.wait_event(lambda e: e.get("type") == "speaker" and e.get("what") == "started", 4.0), \
            "the model never started answering"
        time.sleep(1.2)
        pulse.play(stop).wait(timeout=10)
        out, _ = runtime.finish()
        time.sleep(0.3)
        recording.terminate()
        recording.wait(timeout=5)
    turn, stopped = check_turn_and_stop(tmp_path / "probe.wav", question, stop)
    print(f"thin client: turn latency {turn * 1000:.0f} ms, stop latency {stopped * 1000:.0f} ms")
    assert "barge-in" in out
