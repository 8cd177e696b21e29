"""`duplex-chat` live on real (virtual) sound devices: a private PulseAudio loopback, no sound card.

The bounds are the offline scenarios' (examples/scenarios/turn_taking.yaml, barge_in_mid.yaml)
plus a documented allowance for what only a live session has (docs/live.md, "Latency"):

- DEVICE_ALLOWANCE_S: microphone and speaker buffering (PortAudio 'high' latency + PulseAudio +
  the mic's soxr stream), measured at 0.10-0.15 s on this loopback; 0.25 s leaves room for a
  loaded 2-core machine;
- JITTER_S: the jitter buffer (live.jitter_ms, one step) delays the start of every model turn.

Latencies are read off one two-channel recording of the probe sink (left: what the microphone
heard, right: what the speaker played), so they include every buffer a user would hear; the
user's clips are located in it by cross-correlation, exact even with echo mixed in.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.live_harness import first_after, locate, probe_spans, silent_from, start_runtime
from tests.pulse_fixtures import Pulse, pulse  # noqa: F401  (fixture)

OFFLINE_TURN_S = 1.0  # speaking_started within 1.0 s of the question's end (turn_taking.yaml)
OFFLINE_STOP_S = 0.4  # silent within 0.4 s of the barge-in's start (barge_in_mid.yaml)
DEVICE_ALLOWANCE_S = 0.25
JITTER_S = 0.16
BLOCK_MS = 20

REPLY = ("Today the weather is sunny with a light breeze from the west. Temperatures will reach twenty "
         "degrees in the afternoon, and the evening will be clear and cool. Tomorrow looks much the same.")


def reply_wav(speech, folder: Path, seconds: float) -> Path:  # type: ignore[no-untyped-def]
    audio, rate = sf.read(str(speech(REPLY, voice="en-us+m3")), dtype="float32")
    path = folder / "reply.wav"
    sf.write(path, np.resize(audio, int(seconds * rate)), rate)
    return path


def read_events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines() if line.strip()]


def converse(server: Pulse, speech, folder: Path, *, sets: list[str], duration: float,  # type: ignore[no-untyped-def]
             cut_after_s: float, cut: str = "Stop, stop. Wait a moment please.") -> tuple[Path, Path, Path, str]:
    """Ask a question, let the model answer `cut_after_s`, cut in; return (probe, question, stop, stdout)."""
    question = speech("What is the weather like today?")
    stop = speech(cut)
    recording = server.record(folder / "probe.wav")
    runtime = start_runtime(server, folder, duration=duration, sets=sets)
    runtime.wait_started()
    time.sleep(0.4)
    server.play(question).wait(timeout=10)
    assert runtime.wait_event(lambda e: e.get("type") == "speaker" and e.get("what") == "started", 4.0), \
        "the model never started answering"
    time.sleep(cut_after_s)
    server.play(stop).wait(timeout=10)
    out, _ = runtime.finish()
    time.sleep(0.3)  # the recorder's last packets
    recording.terminate()
    recording.wait(timeout=5)
    return folder / "probe.wav", question, stop, out


def check_turn_and_stop(probe: Path, question: Path, stop: Path) -> tuple[float, float]:
    _, q_end = locate(probe, question)
    s_start, _ = locate(probe, stop, after=q_end)
    _, spk = probe_spans(probe)
    answer = first_after(spk, q_end - 0.05)
    assert answer is not None, f"no reply on the speaker: {spk}"
    turn = answer[0] - q_end
    assert 0.0 < turn <= OFFLINE_TURN_S + JITTER_S + DEVICE_ALLOWANCE_S, f"turn latency {turn:.2f} s"
    assert not any(a < q_end - 0.05 for a, _ in spk), "the model talked over the question"
    stopped = silent_from(spk, s_start) - s_start
    assert stopped <= OFFLINE_STOP_S + DEVICE_ALLOWANCE_S, f"stop latency {stopped:.2f} s"
    return turn, stopped


def test_headset_answers_a_question_and_falls_silent_when_cut_off(pulse: Pulse, speech, tmp_path: Path) -> None:  # noqa: F811
    probe, question, stop, out = converse(pulse, speech, tmp_path, duration=11.0, cut_after_s=1.2, sets=[
        "backbone=policy", "policy.responder=wav", f"policy.reply_wav={reply_wav(speech, tmp_path, 8.0)}",
        "policy.backchannel_max_s=0",  # every overlap is a barge-in: the flush path, time-to-silence
        f"live.block_ms={BLOCK_MS}", "live.aec=none", "live.guard_s=0"])  # a headset: no echo to cancel
    check_turn_and_stop(probe, question, stop)
    summary = next(e for e in read_events(tmp_path) if e.get("what") == "live")
    assert summary["barge_ins"] >= 1
    tts = summary["time_to_silence_ms"]  # flush -> last non-zero sample leaving the callback
    assert tts, "no flush was measured"
    assert tts[0] <= BLOCK_MS + 10 or sorted(tts)[len(tts) // 2] <= BLOCK_MS + 10, tts  # the barge-in's flush
    assert max(tts) <= 2 * BLOCK_MS + 10, tts  # a callback may run one block late on a loaded machine (GIL)
    assert summary["speaker_underruns"] == 0 and summary["overruns"] == 0, summary
    assert "barge-in" in out and "session:" in out


def test_speakers_own_voice_at_minus_10_db_never_interrupts_it_but_the_user_does(
        pulse: Pulse, speech, tmp_path: Path) -> None:  # noqa: F811
    pulse.echo(-10.0)  # a laptop on speakers: the model's voice reaches the mic 10 dB down
    probe, question, stop, _ = converse(pulse, speech, tmp_path, duration=17.0, cut_after_s=9.0, sets=[
        "backbone=policy", "policy.responder=wav", f"policy.reply_wav={reply_wav(speech, tmp_path, 14.0)}",
        "policy.max_reply_s=20", "live.aec=webrtc"])
    events = read_events(tmp_path)
    breaks = [e for e in events if e.get("token") == "BREAK"]
    starts = [e for e in events if e.get("type") == "speaker" and e.get("what") == "started"]
    summary = next((e for e in events if e.get("what") == "live"), {})
    assert len(breaks) == 1, f"expected only the user's barge-in, got {breaks} ({summary})"
    assert len(starts) >= 1 and all(s["t"] > breaks[0]["t"] for s in starts[1:]), \
        f"the reply stopped and restarted before the user cut in (paused on its own echo): {starts}"
    check_turn_and_stop(probe, question, stop)


def test_default_model_on_speakers_answers_and_stops_when_cut_off(pulse: Pulse, speech, tmp_path: Path) -> None:  # noqa: F811
    """The default backbone (tiny-fd, replies of about 4 s), live, with its own voice leaking in at -10 dB."""
    pulse.echo(-10.0)
    probe, question, stop, _ = converse(pulse, speech, tmp_path, duration=12.0, cut_after_s=1.0,
                                        sets=["live.aec=webrtc"])
    events = read_events(tmp_path)
    assert events[0]["backbone"].startswith("tiny-fd")
    breaks = [e for e in events if e.get("token") == "BREAK"]
    assert len(breaks) == 1, f"expected only the user's barge-in, got {breaks}"
    check_turn_and_stop(probe, question, stop)
