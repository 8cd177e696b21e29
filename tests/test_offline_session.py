"""Offline sessions end to end: the echo policy answers a question and stops when cut off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_io.format import SAMPLE_RATE
from duplex.config import load_config
from duplex.eventlog import read_events
from tests.fakes import run_offline as run_wav_session
from tests.speech import audible_spans, silence, write_wav

QUESTION = "What is the weather like in Paris today?"
CUT_IN = "No wait, stop, I want to ask something else."


def speech_end(path: Path) -> float:
    audio, rate = sf.read(path)
    return audible_spans(audio.astype(np.float32))[-1][1]


def chat(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "duplex", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def answered(speech, tmp_path_factory):
    """A question then 5 s of silence, run through the CLI."""
    tmp = tmp_path_factory.mktemp("answered")
    q = speech(QUESTION)
    wav = write_wav(tmp / "q.wav", q, silence(5.0))
    proc = chat("--input", wav, "--output", tmp / "out.wav", "--events", tmp / "e.jsonl")
    assert proc.returncode == 0, proc.stderr
    out, rate = sf.read(tmp / "out.wav", dtype="float32")
    return {"q_end": speech_end(q), "out": out, "rate": rate, "events": read_events(tmp / "e.jsonl"),
            "stdout": proc.stdout, "input": wav, "question": q}


def test_model_takes_the_turn_after_the_question_ends(answered) -> None:
    shifts = [e for e in answered["events"] if e["type"] == "state" and e["to"] == "SPEAKING"]
    assert len(shifts) == 1
    assert shifts[0]["from"] == "LISTENING"
    assert shifts[0]["t"] > answered["q_end"]


def test_reply_is_audible_within_a_second_and_not_before(answered) -> None:
    spans = audible_spans(answered["out"])
    assert spans, "the reply WAV is silent"
    assert answered["q_end"] < spans[0][0] <= answered["q_end"] + 1.0


def test_policy_echo_reply_is_the_users_question_played_back(speech, tmp_path) -> None:
    q = speech(QUESTION)
    wav = write_wav(tmp_path / "q.wav", q, silence(5.0))
    proc = chat("--set", "backbone=policy", "--input", wav, "--output", tmp_path / "out.wav", "--quiet")
    assert proc.returncode == 0, proc.stderr
    question, _ = sf.read(q, dtype="float32")
    spans = audible_spans(sf.read(tmp_path / "out.wav", dtype="float32")[0])
    reply = sum(end - start for start, end in spans)
    spoken = sum(end - start for start, end in audible_spans(question))
    assert reply == pytest.approx(spoken, rel=0.15)


def test_default_model_reply_is_long_enough_to_interrupt(answered) -> None:
    spans = audible_spans(answered["out"], merge_gap_s=0.2)
    assert spans[-1][1] - spans[0][0] >= 3.0


def test_output_is_sample_aligned_and_covers_the_input(answered) -> None:
    info_in = sf.info(answered["input"])
    assert answered["rate"] == SAMPLE_RATE
    assert len(answered["out"]) >= info_in.frames
    assert len(answered["out"]) % 2560 == 0


def test_events_follow_the_contract(answered) -> None:
    events = answered["events"]
    assert all({"t", "type"} <= e.keys() for e in events)
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    assert events[0] == {"t": 0.0, "type": "session", "what": "started", "backbone": "tiny-fd/tiny-fd"}
    assert {"type": "control", "token": "SHIFT"}.items() <= next(e for e in events if e["type"] == "control").items()
    assert events[-1]["type"] == "session" and events[-1]["what"] == "stopped"
    assert events[-2]["to"] == "IDLE"


def test_timeline_is_printed(answered) -> None:
    assert "LISTENING -> SPEAKING" in answered["stdout"]
    assert "realtime_factor" in answered["stdout"]


def test_barge_in_silences_the_model_within_400_ms(speech, answered, tmp_path) -> None:
    reply_start = audible_spans(answered["out"])[0][0]
    q = speech(QUESTION)
    onset_gap = reply_start + 1.0 - sf.info(q).duration
    cut = speech(CUT_IN, voice="en-gb")
    lead = audible_spans(sf.read(cut, dtype="float32")[0])[0][0]
    wav = write_wav(tmp_path / "in.wav", q, silence(onset_gap), cut, silence(3.0))
    result = run_wav_session(load_config(), wav, tmp_path / "out.wav", tmp_path / "e.jsonl")
    onset = reply_start + 1.0 + lead
    breaks = [e for e in result.events if e.type.value == "control" and e.data["token"] == "BREAK"]
    assert len(breaks) == 1 and onset < breaks[0].t
    out, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    before = audible_spans(out[: round(onset * SAMPLE_RATE)])
    assert before and before[-1][1] > onset - 0.2, "the model was not speaking when the user cut in"
    window = out[round((onset + 0.4) * SAMPLE_RATE) : round((onset + 2.0) * SAMPLE_RATE)]
    assert audible_spans(window) == [], "model still audible 0.4 s after the user cut in"
    states = [e.data["to"] for e in result.events if e.type.value == "state"]
    assert states == ["LISTENING", "SPEAKING", "LISTENING", "SPEAKING", "DRAINING", "LISTENING", "IDLE"]


def test_a_short_cough_during_the_reply_does_not_stop_it(speech, answered, tmp_path) -> None:
    reply_start = audible_spans(answered["out"])[0][0]
    q = speech(QUESTION)
    hmm = speech("mm-hmm", speed=200)
    wav = write_wav(tmp_path / "in.wav", q, silence(reply_start + 0.5 - sf.info(q).duration), hmm, silence(4.0))
    result = run_wav_session(load_config(), wav, tmp_path / "out.wav")
    tokens = [e.data["token"] for e in result.events if e.type.value == "control"]
    assert tokens == ["SHIFT", "EOT"]


def test_a_silent_user_gets_no_reply(tmp_path) -> None:
    wav = write_wav(tmp_path / "quiet.wav", silence(3.0))
    result = run_wav_session(load_config(), wav, tmp_path / "out.wav")
    assert not [e for e in result.events if e.type.value == "control"]
    assert audible_spans(sf.read(tmp_path / "out.wav", dtype="float32")[0]) == []


def test_stereo_8bit_44k_input_works(speech, tmp_path) -> None:
    q, _ = sf.read(speech(QUESTION), dtype="float32")
    import soxr

    q44 = soxr.resample(q, SAMPLE_RATE, 44_100)
    stereo = np.stack([q44, q44 * 0.5], axis=1)
    stereo = np.concatenate([stereo, np.zeros((44_100 * 4, 2))])
    src = tmp_path / "stereo8.wav"
    sf.write(src, stereo, 44_100, subtype="PCM_U8")
    assert sf.info(src).channels == 2
    proc = chat("--input", src, "--output", tmp_path / "out.wav", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert audible_spans(sf.read(tmp_path / "out.wav", dtype="float32")[0])


def test_a_10_ms_input_works(tmp_path) -> None:
    src = tmp_path / "tiny.wav"
    sf.write(src, np.full(160, 0.1, dtype=np.float32), SAMPLE_RATE)
    proc = chat("--input", src, "--output", tmp_path / "out.wav", "--events", tmp_path / "e.jsonl", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert sf.info(tmp_path / "out.wav").frames == 2 * 2560  # the input step, and the block played as it ended


def test_silero_vad_backbone_answers_too(speech, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("silero_vad")
    wav = write_wav(tmp_path / "q.wav", speech(QUESTION), silence(4.0))
    cfg = load_config(sets=["policy.vad=silero"])
    result = run_wav_session(cfg, wav, tmp_path / "out.wav")
    assert [e.data["token"] for e in result.events if e.type.value == "control"] == ["SHIFT", "EOT"]
