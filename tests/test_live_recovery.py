"""Sound devices come back (issue 13, item 11), on the private PulseAudio loopback.

A live session whose devices fail goes DEGRADED (a `device` event, the state), closes its
streams, reopens the same devices by name with backoff, and resumes LISTENING on new streams,
the same session going on (it answers a question asked after the recovery, and exits 0 at
--duration). Nothing the model said before the failure is played afterwards.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.live_harness import Runtime, locate, probe_spans, start_runtime
from tests.pulse_fixtures import Pulse, pulse  # noqa: F401  (fixture)
from tests.test_live_loopback import reply_wav

QUESTION = "What is the weather like today?"


def _start(server: Pulse, speech, folder: Path, duration: float) -> tuple[Runtime, Path]:  # type: ignore[no-untyped-def]
    sets = ["backbone=policy", "policy.responder=wav", f"policy.reply_wav={reply_wav(speech, folder, 8.0)}",
            "policy.max_reply_s=10", "live.device_retry_s=30"]
    runtime = start_runtime(server, folder, duration=duration, sets=sets)
    runtime.wait_started(timeout=90)
    return runtime, speech(QUESTION)


def _ask_and_wait_for_the_answer(server: Pulse, runtime: Runtime, question: Path, after: int = 0) -> None:
    time.sleep(0.4)
    server.play(question).wait(timeout=10)
    started = runtime.wait_event(lambda e: e.get("type") == "speaker" and e.get("what") == "started"
                                 and e["t"] > after, 8.0)
    assert started, f"the model never answered (events: {runtime.read_events()[-8:]})"


def _device_events(runtime: Runtime) -> list[dict]:
    return [e for e in runtime.read_events() if e.get("type") == "device"]


def _recovered_then_answers(server: Pulse, runtime: Runtime, question: Path) -> tuple[dict, dict]:
    back = runtime.wait_event(lambda e: e.get("type") == "device" and e.get("what") == "recovered", 35.0)
    assert back, f"the devices never came back: {runtime.read_events()[-6:]}"
    lost = next(e for e in _device_events(runtime) if e["what"] == "lost")
    states = [(e["from"], e["to"]) for e in runtime.read_events() if e.get("type") == "state"]
    assert ("DEGRADED", "LISTENING") in states and any(to == "DEGRADED" for _, to in states), states
    time.sleep(1.0)
    _ask_and_wait_for_the_answer(server, runtime, question, after=back["t"])
    return lost, back


@pytest.mark.slow
def test_a_killed_and_restarted_sound_server_degrades_then_the_same_session_listens_again(
        pulse: Pulse, speech, tmp_path: Path) -> None:  # noqa: F811
    runtime, question = _start(pulse, speech, tmp_path, duration=30.0)
    _ask_and_wait_for_the_answer(pulse, runtime, question)
    time.sleep(1.0)
    pulse.restart(down_s=2.0)  # the user's USB headset is unplugged for 2 s and plugged back in
    lost, back = _recovered_then_answers(pulse, runtime, question)
    runtime.finish(timeout=60)  # exit 0: the session went on to --duration
    events = runtime.read_events()
    assert sum(e.get("what") == "started" and e.get("type") == "session" for e in events) == 1  # one session
    assert back["t"] - lost["t"] >= 1.5, (lost, back)


@pytest.mark.slow
def test_a_suspended_speaker_is_flushed_and_never_plays_the_stale_reply(
        pulse: Pulse, speech, tmp_path: Path) -> None:  # noqa: F811
    recording = pulse.record(tmp_path / "probe.wav")
    runtime, question = _start(pulse, speech, tmp_path, duration=30.0)
    _ask_and_wait_for_the_answer(pulse, runtime, question)
    time.sleep(1.0)
    pulse.suspend("duplex_speaker", True)
    suspended_at = time.monotonic()
    assert runtime.wait_event(lambda e: e.get("type") == "device" and e.get("what") == "lost", 10.0), \
        "the stalled speaker was not noticed"
    time.sleep(max(0.0, 4.0 - (time.monotonic() - suspended_at)))
    pulse.suspend("duplex_speaker", False)
    _recovered_then_answers(pulse, runtime, question)
    runtime.finish(timeout=60)
    time.sleep(0.3)
    recording.terminate()
    recording.wait(timeout=5)
    probe = tmp_path / "probe.wav"
    _, q1_end = locate(probe, question)
    q2_start, _ = locate(probe, question, after=q1_end + 2.0)
    _, spk = probe_spans(probe)
    first_reply = next(a for a, _ in spk if a >= q1_end - 0.05)
    # From 2 s into the first reply (the suspension) until the second question: nothing plays.
    stale = [(a, b) for a, b in spk if first_reply + 2.5 < b and a < q2_start]
    assert not stale, f"audio from before the suspension played after it: {stale} (question 2 at {q2_start:.2f})"
    summary = next(e for e in runtime.read_events() if e.get("what") == "live")
    timeline = [e for e in runtime.read_events() if e.get("type") in ("control", "speaker", "device", "state")]
    assert all(ms < 1000 for ms in summary["stop_latency_ms"]), (summary["stop_latency_ms"], timeline)


@pytest.mark.slow
def test_a_microphone_moved_by_the_sound_server_is_reported(pulse: Pulse, speech, tmp_path: Path) -> None:  # noqa: F811
    import numpy as np
    import soundfile as sf

    room = tmp_path / "room.wav"  # the user's room: steady noise at -40 dBFS on the microphone
    noise = np.random.default_rng(0).standard_normal(16_000 * 40).astype(np.float32) * 0.01
    sf.write(room, noise, 16_000)
    pulse.play(room)
    runtime, _ = _start(pulse, speech, tmp_path, duration=22.0)
    time.sleep(8.0)  # the session learns this microphone's noise floor
    modules = [line.split("\t") for line in pulse.pactl("list", "short", "modules").splitlines()]
    mic_module = next(m[0] for m in modules if "source_name=duplex_mic" in m[2])
    pulse.pactl("set-default-source", "duplex_speaker.monitor")
    pulse.pactl("unload-module", mic_module)  # PulseAudio moves our stream to the default source
    changed = runtime.wait_event(lambda e: e.get("type") == "device" and e.get("what") == "changed", 10.0)
    assert changed, f"the moved microphone went unnoticed: {runtime.read_events()[-6:]}"
    assert "moved" in changed["message"] and "noise floor" in changed["message"]
    runtime.finish(timeout=60)
    assert not [e for e in runtime.read_events() if e.get("type") == "device" and e.get("what") == "lost"]


@pytest.mark.slow
def test_a_speaker_moved_by_the_sound_server_is_stopped_reported_and_reopened(
        pulse: Pulse, speech, tmp_path: Path) -> None:  # noqa: F811
    """The speaker's sink module is unloaded mid-reply: PulseAudio moves the stream to another sink
    (here `probe`, which the microphone hears: a headset unplugged, the reply now on the laptop's
    speakers). PortAudio says nothing; the echo that appears does. The reply stops at once, the
    session goes DEGRADED, reopens the speaker by name and listens again; the sink is plugged back in
    and the same session answers the next question."""
    runtime, question = _start(pulse, speech, tmp_path, duration=40.0)
    _ask_and_wait_for_the_answer(pulse, runtime, question)
    time.sleep(2.0)  # the reply plays: the session measures no echo on this speaker
    module = pulse.unload("duplex_speaker")
    lost = runtime.wait_event(lambda e: e.get("type") == "device" and e.get("what") == "lost", 10.0)
    assert lost, f"the moved speaker went unnoticed: {runtime.read_events()[-8:]}"
    assert "moved" in lost["message"] and "echo" in lost["message"], lost
    back = runtime.wait_event(lambda e: e.get("type") == "device" and e.get("what") == "recovered", 35.0)
    assert back, f"the speaker was not reopened: {runtime.read_events()[-6:]}"
    pulse.reload(module)
    time.sleep(1.0)
    _ask_and_wait_for_the_answer(pulse, runtime, question, after=back["t"])
    runtime.finish(timeout=60)
    events = runtime.read_events()
    assert sum(e.get("what") == "started" and e.get("type") == "session" for e in events) == 1
    states = [(e["from"], e["to"]) for e in events if e.get("type") == "state"]
    assert ("DEGRADED", "LISTENING") in states, states
    second = next(e["t"] for e in events if e.get("type") == "state" and e["to"] == "SPEAKING" and e["t"] > back["t"])
    replayed = [e for e in events
                if e.get("type") == "speaker" and e["what"] == "started" and lost["t"] < e["t"] < second]
    assert not replayed, f"the first reply went on after the move: {replayed}"


@pytest.mark.slow
def test_devices_that_stay_away_end_the_session_after_device_retry_s(
        pulse: Pulse, speech, tmp_path: Path) -> None:  # noqa: F811
    """The sound server is killed and never comes back: DEGRADED, retries for `live.device_retry_s`,
    then one error line and exit 2 (not a hang, not a traceback)."""
    sets = ["backbone=policy", "live.device_retry_s=3"]
    runtime = start_runtime(pulse, tmp_path, duration=60.0, sets=sets)
    runtime.wait_started(timeout=90)
    time.sleep(1.0)
    pulse.process.kill()
    pulse.process.wait(timeout=10)
    try:
        out, err = runtime.process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        runtime.process.kill()
        raise AssertionError("the session did not give up after live.device_retry_s") from None
    # PortAudio's ALSA host prints its own C-level "Expression '...' failed" lines when the server dies.
    ours = [line for line in err.splitlines() if line and not line.startswith("Expression '")]
    assert runtime.process.returncode == 2, err[-800:]
    assert len(ours) == 1 and ours[0].startswith("duplex-chat: error: ") and "not back after 3 s" in ours[0], ours
    states = [(e["from"], e["to"]) for e in runtime.read_events() if e.get("type") == "state"]
    assert any(to == "DEGRADED" for _, to in states), states


@pytest.mark.slow
def test_a_stalled_microphone_degrades_then_the_same_session_listens_again(
        pulse: Pulse, speech, tmp_path: Path) -> None:  # noqa: F811
    """The microphone's source is suspended for 6 s: it delivers nothing (no error from PortAudio);
    after `live.stall_s` the session goes DEGRADED, reopens, and listens again once it is back."""
    runtime, question = _start(pulse, speech, tmp_path, duration=40.0)
    time.sleep(1.0)
    pulse.pactl("suspend-source", "duplex_mic", "1")
    suspended_at = time.monotonic()
    lost = runtime.wait_event(lambda e: e.get("type") == "device" and e.get("what") == "lost", 10.0)
    time.sleep(max(0.0, 6.0 - (time.monotonic() - suspended_at)))  # reopening fails meanwhile
    pulse.pactl("suspend-source", "duplex_mic", "0")
    assert lost, f"the stalled microphone was not noticed: {runtime.read_events()[-6:]}"
    assert "delivered no audio for 3 s" in lost["message"], lost
    _, back = _recovered_then_answers(pulse, runtime, question)
    runtime.finish(timeout=60)
    assert back["t"] - lost["t"] >= 1.5, (lost, back)  # it stayed down while the source was suspended
