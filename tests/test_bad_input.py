"""Bad input ends with one line naming the culprit, exit 2, no traceback, outputs intact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.speech import silence, write_wav


def chat(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "duplex", *map(str, args)], capture_output=True, text=True)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def good_wav(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "good.wav", silence(0.5))


def test_missing_input(tmp_path: Path) -> None:
    proc = chat("--input", tmp_path / "nope.wav", "--output", tmp_path / "o.wav")
    assert_one_line_error(proc, "nope.wav", "no such file")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    assert_one_line_error(chat("--input", tmp_path / "empty.wav", "--output", tmp_path / "o.wav"), "empty.wav")


def test_wav_with_no_frames(tmp_path: Path) -> None:
    sf.write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32), 16000)
    proc = chat("--input", tmp_path / "zero.wav", "--output", tmp_path / "o.wav")
    assert_one_line_error(proc, "zero.wav", "no audio")


def test_non_audio_file(tmp_path: Path) -> None:
    (tmp_path / "notes.wav").write_text("this is not audio\n" * 50)
    assert_one_line_error(chat("--input", tmp_path / "notes.wav", "--output", tmp_path / "o.wav"), "notes.wav")


def test_truncated_wav(tmp_path: Path, good_wav: Path) -> None:
    data = good_wav.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:30])
    assert_one_line_error(chat("--input", tmp_path / "cut.wav", "--output", tmp_path / "o.wav"), "cut.wav")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file(tmp_path: Path, good_wav: Path) -> None:
    good_wav.chmod(0)
    assert_one_line_error(chat("--input", good_wav, "--output", tmp_path / "o.wav"), "good.wav")


def test_directory_as_input(tmp_path: Path) -> None:
    assert_one_line_error(chat("--input", tmp_path, "--output", tmp_path / "o.wav"), str(tmp_path))


def test_output_in_missing_folder(tmp_path: Path, good_wav: Path) -> None:
    assert_one_line_error(chat("--input", good_wav, "--output", tmp_path / "no" / "o.wav"), "o.wav")


def test_unknown_config_key(tmp_path: Path, good_wav: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("policy:\n  min_silnce_s: 0.5\n")
    proc = chat("--config", cfg, "--input", good_wav, "--output", tmp_path / "o.wav")
    assert_one_line_error(proc, "c.yaml", "policy.min_silnce_s", "policy.min_silence_s")


def test_out_of_range_value(tmp_path: Path, good_wav: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("policy:\n  min_silence_s: -1\n")
    assert_one_line_error(chat("--config", cfg, "--input", good_wav, "--output", tmp_path / "o.wav"),
                          "policy.min_silence_s", "-1", "range")


def test_wrong_type_and_bad_choice(tmp_path: Path, good_wav: Path) -> None:
    proc = chat("--set", "engine.step_events=maybe", "--print-config")
    assert_one_line_error(proc, "engine.step_events", "true/false")
    assert_one_line_error(chat("--set", "policy.vad=dnn", "--print-config"), "policy.vad", "webrtc")


def test_malformed_set_value_and_a_set_without_a_value() -> None:
    assert_one_line_error(chat("--set", "policy.vad=[", "--print-config"), "--set 'policy.vad=['", "YAML")
    assert_one_line_error(chat("--set", "policy.vad", "--print-config"), "--set 'policy.vad'", "key=value")


def test_malformed_yaml_and_missing_config(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("policy: [unclosed\n")
    assert_one_line_error(chat("--config", cfg, "--print-config"), "c.yaml", "YAML")
    assert_one_line_error(chat("--config", tmp_path / "none.yaml", "--print-config"), "none.yaml")


def test_missing_reply_wav_names_it(tmp_path: Path, good_wav: Path) -> None:
    proc = chat("--set", "backbone=policy", "--set", "policy.responder=wav", "--set", "policy.reply_wav=gone.wav",
                "--input", good_wav, "--output", tmp_path / "o.wav")
    assert_one_line_error(proc, "gone.wav")


def test_bad_input_leaves_an_existing_output_untouched(tmp_path: Path, good_wav: Path) -> None:
    out = tmp_path / "o.wav"
    out.write_bytes(good_wav.read_bytes())
    before = out.read_bytes()
    chat("--input", tmp_path / "nope.wav", "--output", out)
    assert out.read_bytes() == before


def test_interrupted_session_leaves_a_readable_wav(tmp_path: Path, good_wav: Path) -> None:
    long = write_wav(tmp_path / "long.wav", silence(30.0))
    out = tmp_path / "o.wav"
    proc = subprocess.Popen([sys.executable, "-m", "duplex", "--input", str(long), "--output", str(out),
                             "--events", str(tmp_path / "e.jsonl"), "--realtime", "--quiet"])
    try:
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not out.exists() or sf.info(out).frames < 16000 * 2):
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    info = sf.info(out)
    assert info.frames >= 16000 * 2
    audio, _ = sf.read(out)
    assert len(audio) == info.frames
    lines = (tmp_path / "e.jsonl").read_text().splitlines()
    assert lines and all(line.startswith("{") and line.endswith("}") for line in lines)


def test_print_config_shows_defaults_with_docs() -> None:
    proc = chat("--print-config")
    assert proc.returncode == 0
    assert "min_silence_s: 0.64" in proc.stdout and "# silence after" in proc.stdout
