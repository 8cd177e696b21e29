"""Paths first, then files: no output may destroy an input or another output, and a writer that
fails mid-session ends it with one line, exit 2, and what was written still valid."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.speech import silence, write_wav
from tests.test_bad_input import assert_one_line_error

POLICY = ("--set", "backbone=policy", "--quiet")


def run(module: str, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def chat(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run("duplex", *args)


@pytest.fixture
def user_wav(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_wav(tmp_path / "x.wav", (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32))


@contextlib.contextmanager
def tmpfs(folder: Path, *options: str) -> Iterator[Path]:
    """A small tmpfs mounted on `folder` (root only); skips the test where mounting is impossible."""
    folder.mkdir()
    opts = ",".join(("size=64k", *options))
    if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "relative"])
def test_output_equal_to_the_input_is_refused_and_the_input_kept(tmp_path: Path, user_wav: Path, how: str) -> None:
    before = user_wav.read_bytes()
    target: Path | str = user_wav
    if how == "symlink":
        target = tmp_path / "link.wav"
        target.symlink_to(user_wav)
    elif how == "hardlink":
        target = tmp_path / "hard.wav"
        os.link(user_wav, target)
    elif how == "relative":
        target = os.path.relpath(user_wav)
    assert_one_line_error(chat("--input", user_wav, "--output", target, *POLICY), "--output", "is the input")
    assert user_wav.read_bytes() == before


def test_events_equal_to_the_input_or_the_output(tmp_path: Path, user_wav: Path) -> None:
    before = user_wav.read_bytes()
    out = tmp_path / "o.wav"
    out.write_bytes(before)
    assert_one_line_error(chat("--input", user_wav, "--output", out, "--events", user_wav, *POLICY),
                          "--events", "is the input")
    assert_one_line_error(chat("--input", user_wav, "--output", out, "--events", out, *POLICY),
                          "--events", "is also --output")
    assert user_wav.read_bytes() == before and out.read_bytes() == before


def test_kiosk_output_equal_to_its_input(user_wav: Path) -> None:
    before = user_wav.read_bytes()
    proc = run("duplex.kiosk_cli", "--input", user_wav, "--output", user_wav, "--once", "--set", "backbone=policy")
    assert_one_line_error(proc, "--output", "is the input")
    assert user_wav.read_bytes() == before


def test_kiosk_output_checked_at_start_not_per_session(tmp_path: Path, user_wav: Path) -> None:
    """Without --once a bad --output used to fail every session and loop on restarts."""
    proc = run("duplex.kiosk_cli", "--input", user_wav, "--output", tmp_path / "no" / "o.wav",
               "--set", "backbone=policy", timeout=60)
    assert proc.stdout == ""  # nothing started: the path is refused before any session (checked first: the bug)
    assert_one_line_error(proc, "--output", "does not exist")


def test_bad_events_path_leaves_an_existing_output_untouched(tmp_path: Path, user_wav: Path) -> None:
    out = tmp_path / "o.wav"
    out.write_bytes(user_wav.read_bytes())
    proc = chat("--input", user_wav, "--output", out, "--events", "/nope/e.jsonl", *POLICY)
    assert out.read_bytes() == user_wav.read_bytes()  # checked first: old main cut it to 44 bytes
    assert_one_line_error(proc, "--events", "/nope", "does not exist")


def test_events_in_a_read_only_folder(tmp_path: Path, user_wav: Path) -> None:
    out = tmp_path / "o.wav"
    out.write_bytes(b"keep me")
    with tmpfs(tmp_path / "ro", "ro") as ro:
        proc = chat("--input", user_wav, "--output", out, "--events", ro / "e.jsonl", *POLICY)
    assert_one_line_error(proc, "--events", "not writable", "Read-only")
    assert out.read_bytes() == b"keep me"


def test_events_under_a_file(tmp_path: Path, user_wav: Path) -> None:
    (tmp_path / "f").write_text("a file, not a folder")
    assert_one_line_error(chat("--input", user_wav, "--events", tmp_path / "f" / "e.jsonl", *POLICY),
                          "--events", "is not a folder")


@pytest.mark.parametrize("name, needle", [("o/reply", "no extension"), ("/dev/null", "no extension"),
                                          ("o.txt", "'.txt'"), ("o.mp3", "'.mp3'"), ("o.flac", "'.flac'")])
def test_output_must_be_a_wav(tmp_path: Path, user_wav: Path, name: str, needle: str) -> None:
    (tmp_path / "o").mkdir()
    path = name if name.startswith("/") else tmp_path / name
    assert_one_line_error(chat("--input", user_wav, "--output", path, *POLICY), "--output", needle, ".wav")
    assert not (tmp_path / "o.flac").exists() and not (tmp_path / "o.mp3").exists()


def test_devices_and_folders_are_not_outputs(tmp_path: Path, user_wav: Path) -> None:
    assert_one_line_error(chat("--input", user_wav, "--events", "/dev/full", *POLICY), "/dev/full", "not a regular")
    assert_one_line_error(chat("--input", user_wav, "--events", tmp_path, *POLICY), "is a folder")


def test_full_disk_under_the_output_wav(tmp_path: Path) -> None:
    user = write_wav(tmp_path / "long.wav", silence(8.0))  # 256 KB of reply WAV: four times the tmpfs
    with tmpfs(tmp_path / "small") as small:
        proc = chat("--input", user, "--output", small / "o.wav", *POLICY)
        assert_one_line_error(proc, "o.wav", "writing failed", "disk full")
        info = sf.info(str(small / "o.wav"))  # still a valid WAV: its header covers what was written
        assert 0.5 < info.duration < 2.1
        assert sf.read(str(small / "o.wav"))[0].size == info.frames


def test_full_disk_under_the_event_log(tmp_path: Path, user_wav: Path) -> None:
    with tmpfs(tmp_path / "small", "size=4k") as small:
        proc = chat("--input", write_wav(tmp_path / "long.wav", silence(20.0)), "--events", small / "e.jsonl",
                    "--set", "engine.step_events=true", *POLICY)
        assert_one_line_error(proc, "e.jsonl", "event log failed", "lines are kept")
        lines = (small / "e.jsonl").read_text().splitlines()
    assert len(lines) > 10
    assert all(json.loads(line)["type"] for line in lines)  # every line whole


def test_scenario_report_may_not_overwrite_a_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("duration: 1\nconfig: {backbone: policy}\nuser: []\nexpect: []\n")  # a scenario that runs
    before = scenario.read_bytes()
    proc = run("duplex.scenario.cli", scenario, "--report", scenario)
    assert_one_line_error(proc, "--report", "is the input")
    proc = run("duplex.scenario.cli", scenario, "--report", tmp_path / "r.json", "--junit", tmp_path / "r.json")
    assert_one_line_error(proc, "--junit", "is also --report")
    proc = run("duplex.scenario.cli", scenario, "--plot", scenario)
    assert_one_line_error(proc, "--plot", "is the input")
    assert scenario.read_bytes() == before


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_duration_that_would_never_end_or_means_nothing_is_refused(value: str) -> None:
    """`--duration 0` used to mean 'no limit' (the session never stopped)."""
    assert_one_line_error(chat("--duration", value, "--set", "backbone=policy"), "--duration", "above 0")


def test_record_must_be_a_folder_that_can_be_made(tmp_path: Path) -> None:
    """Checked before any sound device is opened (no devices are needed for the refusal)."""
    (tmp_path / "f").write_text("a file")
    assert_one_line_error(chat("--record", tmp_path / "f", "--set", "backbone=policy"), "--record", "not a folder")
    assert_one_line_error(chat("--record", tmp_path / "f" / "rec", "--set", "backbone=policy"), "--record",
                          "is not a folder")
    assert_one_line_error(chat("--record", tmp_path / "rec", "--events", tmp_path / "rec" / "mic.wav",
                               "--set", "backbone=policy"), "--events", "is also")
