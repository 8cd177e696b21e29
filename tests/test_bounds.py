"""Bounds: scenario durations and times, say() audio and reply WAVs; each refused with one clear line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_io.clip import MAX_CLIP_S, load_clip, load_clip_async
from duplex.config import Config
from duplex.errors import AudioFileError, ScenarioError
from duplex.scenario.spec import load_scenario
from duplex.session import DuplexSession
from tests.speech import silence, write_wav
from tests.test_bad_input import assert_one_line_error


def one_hz_wav(path: Path) -> Path:
    """148 KB that claims to be 74,000 s at 1 Hz: decoded whole, it became gigabytes."""
    sf.write(path, np.zeros(74_000, np.float32), 1, subtype="PCM_16")
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "clip.wav", silence(0.5))


def scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, needle", [
    ("duration: 100000\nuser: []\nexpect: []\n", "duration: 100000 must be <= 600"),
    ("duration: .inf\nuser: []\nexpect: []\n", "duration: inf is not a finite number"),
    ("duration: .nan\nuser: []\nexpect: []\n", "duration: nan is not a finite number"),
    ("duration: 5\nuser:\n  - {audio: clip.wav, at: .nan}\nexpect: []\n", "user[1].at: nan is not a finite"),
    ("duration: 5\nuser:\n  - {audio: clip.wav, after: {event: shift, delay: .nan}}\nexpect: []\n",
     "user[1].after.delay: nan is not a finite"),
    ("duration: 5\nuser:\n  - {audio: clip.wav, at: 1, gain_db: 1.0e+300}\nexpect: []\n", "gain_db: 1e+300 must be <="),
    ("duration: 5\nuser:\n  - {audio: clip.wav, at: 1}\nexpect:\n  - turn_latency: {max: .nan}\n",
     "turn_latency.max: nan is not a finite"),
    ("duration: 5\nuser: []\nnoise: {kind: white, level_db: .nan}\nexpect: []\n", "level_db: nan is not a finite"),
])
def test_scenario_numbers_are_finite_and_bounded(tmp_path: Path, clip: Path, text: str, needle: str) -> None:
    with pytest.raises(ScenarioError, match=needle.replace("[", r"\[").replace("+", r"\+")):
        load_scenario(scenario(tmp_path, text))


def test_load_clip_checks_the_header_before_decoding(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="sample rate 1 Hz is outside 8000..384000"):
        load_clip(one_hz_wav(tmp_path / "1hz.wav"), what="policy.reply_wav")
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(int(8000 * (MAX_CLIP_S + 1)), np.int16), 8000, subtype="PCM_16")
    with pytest.raises(AudioFileError, match=r"say\(\): 121.0 s long; at most 120 s"):
        load_clip(long, what="say()")


def test_load_clip_matches_a_whole_file_resample(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    audio = (0.2 * rng.standard_normal((44100 * 3 + 5, 2))).astype(np.float32)
    sf.write(tmp_path / "a.wav", audio, 44100, subtype="FLOAT")
    from audio_io.wav import load_mono16k

    whole = load_mono16k(tmp_path / "a.wav")
    blocks = asyncio.run(load_clip_async(tmp_path / "a.wav"))
    assert blocks.shape == whole.shape
    np.testing.assert_allclose(blocks, whole, atol=1e-4)


def test_a_reply_wav_at_1_hz_is_one_line(tmp_path: Path, clip: Path) -> None:
    one_hz_wav(tmp_path / "reply.wav")
    proc = subprocess.run([sys.executable, "-m", "duplex", "--input", str(clip), "--set", "backbone=policy",
                           "--set", "policy.responder=wav", "--set", f"policy.reply_wav={tmp_path / 'reply.wav'}",
                           "--quiet"], capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, "reply.wav", "policy.reply_wav", "1 Hz")


async def test_say_is_bounded(tmp_path: Path, clip: Path) -> None:
    async with DuplexSession(config=Config(backbone="policy"), input=clip) as session:
        with pytest.raises(AudioFileError, match="sample rate 1 Hz"):
            session.say(one_hz_wav(tmp_path / "1hz.wav"))
        with pytest.raises(ValueError, match=r"say\(\): 121.0 s of samples"):
            session.say(np.zeros(16000 * 121, np.float32))
        session.say(clip)  # a sensible clip still works
