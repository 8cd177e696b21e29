"""Both covo modes through the engine offline: a spoken WAV in, the speaker's WAV and events out."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

pytest.importorskip("torch")
pytest.importorskip("transformers")

from audio_io.wav import NullOutput, WavInput  # noqa: E402
from duplex.backbones import load_model  # noqa: E402
from duplex.backbones.covo.turn import CovoTurnBackbone  # noqa: E402
from duplex.scenario.runner import run_scenario_file  # noqa: E402
from tests.covo_fixtures import SMALL, covo_config, tiny_checkpoint, token2wav_standin  # noqa: E402
from tests.fakes import play_offline  # noqa: E402
from tests.fakes import run_offline as run_wav_session
from tests.speech import audible_spans, silence, write_wav  # noqa: E402

QUESTION = "What is the weather like in Paris today?"
CUT_IN = "No wait, stop, I want to ask something else."
CLIPS = Path(__file__).resolve().parent.parent / "examples" / "scenarios" / "clips"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory)


@pytest.fixture
def vocoder(tmp_path: Path) -> dict[str, str]:
    keys = token2wav_standin(tmp_path / "Covo-Audio")
    yield keys
    for name in [n for n in sys.modules if n == "token2wav" or n.startswith("token2wav.")]:
        del sys.modules[name]


def spans_of(path: Path) -> list[tuple[float, float]]:
    audio, _ = sf.read(path, dtype="float32")
    return audible_spans(audio)


def events_of(result, kind: str) -> list:
    return [e for e in result.events if e.type.value == kind]


def test_turn_mode_answers_a_spoken_question_with_speech_and_text(tiny: Path, vocoder, speech, tmp_path) -> None:
    question = speech(QUESTION)
    q_end = spans_of(question)[-1][1]
    wav = write_wav(tmp_path / "in.wav", question, silence(4.0))
    cfg = covo_config(tiny, "turn", interleave="4,12", max_reply_tokens=48, **vocoder)
    result = run_wav_session(cfg, wav, tmp_path / "out.wav")
    shifts = [e for e in events_of(result, "control") if e.data["token"] == "SHIFT"]
    assert len(shifts) == 1 and q_end < shifts[0].t < q_end + 1.2
    assert any(e.data["token"] == "EOT" for e in events_of(result, "control"))
    out = spans_of(tmp_path / "out.wav")
    assert out and out[0][0] >= shifts[0].t - 1e-6  # nothing played over the question
    assert sum(b - a for a, b in out) == pytest.approx(36 * 0.04, abs=0.2)  # 36 units of 40 ms
    assert [e.data["text"] for e in events_of(result, "text")]


def test_turn_mode_barge_in_stops_the_reply_and_cuts_the_context(tiny: Path, vocoder, speech, tmp_path) -> None:
    wav = write_wav(tmp_path / "in.wav", speech(QUESTION), silence(2.5), speech(CUT_IN), silence(3.0))
    cfg = covo_config(tiny, "turn", interleave="0,1", max_reply_tokens=400, **vocoder)
    model = load_model(cfg)
    backbone = model.backbone
    assert isinstance(backbone, CovoTurnBackbone)
    result = asyncio.run(play_offline(cfg, WavInput(wav), NullOutput(), model=model))
    controls = [e.data["token"] for e in events_of(result, "control")]
    assert controls[:2] == ["SHIFT", "BREAK"]
    cut = backbone.history[0]
    assert 0 < cut.heard < 400
    chat = backbone.chat
    assert chat.turn_starts, "the cut-in was answered as a new turn"
    # the first reply kept exactly `heard` units, then <|im_end|>\n, then the second user turn
    first_reply_end = chat.turn_starts[1] if len(chat.turn_starts) > 1 else chat.decoder.length
    kept = chat.decoder.hist[chat.turn_starts[0] : first_reply_end]
    head = chat.decoder.embed(chat.close_ids)
    assert np.isclose((kept[-2:] - head).abs().max().item(), 0.0)


def test_native_mode_runs_through_the_engine_four_tokens_a_step(tiny: Path, speech, tmp_path) -> None:
    wav = write_wav(tmp_path / "in.wav", speech(QUESTION), silence(1.0))
    cfg = covo_config(tiny, "native")
    cfg = type(cfg)(**{**cfg.__dict__, "engine": type(cfg.engine)(**{**cfg.engine.__dict__, "step_events": True})})
    result = run_wav_session(cfg, wav, tmp_path / "out.wav")
    steps = events_of(result, "step")
    frames = sf.info(wav).frames
    assert len(steps) == result.summary["steps"] >= frames // 2560
    assert all(len(e.data["tokens"]) == 4 for e in steps)
    session = events_of(result, "session")
    assert session[0].data["backbone"] == "covo/native/static" and session[-1].data["what"] == "stopped"


def scenario(path: Path, checkpoint: Path, mode: str, expect: list, *, cut_in: bool, **covo: object) -> Path:
    user: list[dict] = [{"audio": str(CLIPS / "train.wav"), "at": 0.3}]
    if cut_in:
        user.append({"audio": str(CLIPS / "stop.wav"), "role": "barge_in",
                     "after": {"event": "speaking_started", "nth": 1, "delay": 1.0}})
    path.write_text(yaml.safe_dump({
        "name": f"covo {mode} on the tiny checkpoint",
        "duration": 12.0,
        "config": {"backbone": "covo", "covo": {**SMALL, "checkpoint": str(checkpoint), "mode": mode,
                                                "device": "cpu", **covo}},
        "user": user,
        "expect": expect,
    }))
    return path


def test_both_modes_run_through_the_scenario_runner(tiny: Path, vocoder, tmp_path) -> None:
    turn = scenario(tmp_path / "turn.yaml", tiny, "turn", [
        {"speaking_started": {"after_user_end": 1, "within": 1.0}},
        {"silent": {"after_user_start": 2, "within": 0.4}},
        {"barge_in": {"after_user_start": 2, "within": 1.5}},
    ], cut_in=True, interleave="0,1", max_reply_tokens=300, **vocoder)
    result = run_scenario_file(turn)
    assert result.passed, result.failures
    native = scenario(tmp_path / "native.yaml", tiny, "native", [], cut_in=False)  # random weights: no turn-taking
    result = run_scenario_file(native)
    assert result.passed, result.failures
    assert result.metrics["step_ms_p99"] > 0
