"""No input under 1 MB makes a command use more than 500 MB: each case fixed here, measured in a
fresh subprocess by its peak resident set (ru_maxrss), and ending with its one-line answer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.speech import silence, write_wav

LIMIT_MB = 500
MEASURE = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True, "
           "timeout=300); sys.stdout.write(p.stdout + p.stderr); "
           "print('RC', p.returncode, 'PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)")


def peak(*argv: str | Path, stdin: bytes | None = None) -> tuple[int, int, str]:
    """(exit status, peak RSS in MB, stdout and stderr) of one command run in its own process."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, *map(str, argv)], capture_output=True, timeout=400,
                          input=stdin)
    out = proc.stdout.decode()
    *text, last = out.strip().splitlines()
    _, rc, _, mb = last.split()
    return int(rc), int(mb), "\n".join(text)


def one_hz(path: Path) -> Path:
    sf.write(path, np.zeros(74_000, np.float32), 1, subtype="PCM_16")  # 148 KB, "74,000 s"
    assert path.stat().st_size < 1_000_000
    return path


CHAT = (sys.executable, "-m", "duplex")
POLICY = ("--set", "backbone=policy", "--quiet")


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "clip.wav", silence(0.5))


def check(rc: int, mb: int, err: str, *needles: str, status: int = 2) -> None:
    assert rc == status and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert mb < LIMIT_MB, f"{mb} MB"


def test_reply_wav_at_1_hz(tmp_path: Path, clip: Path) -> None:
    check(*peak(*CHAT, "--input", clip, "--set", "policy.responder=wav",
                "--set", f"policy.reply_wav={one_hz(tmp_path / 'r.wav')}", *POLICY), "1 Hz")


def test_say_a_1_hz_file(tmp_path: Path, clip: Path) -> None:
    script = textwrap.dedent(f"""
        import asyncio, sys
        from duplex.config import Config
        from duplex.session import DuplexSession
        async def main():
            async with DuplexSession(config=Config(backbone="policy"), input={str(clip)!r}) as s:
                s.say({str(one_hz(tmp_path / 's.wav'))!r})
        try:
            asyncio.run(main())
        except Exception as exc:
            print(exc, file=sys.stderr)
            sys.exit(2)
    """)
    check(*peak(sys.executable, "-c", script), "1 Hz")


# duplex-test reports a scenario it cannot run as a failed scenario (status 1), naming the problem.


def test_scenario_of_100000_seconds(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("duration: 100000\nuser: []\nexpect: []\n")
    check(*peak(sys.executable, "-m", "duplex.scenario.cli", tmp_path / "s.yaml"), "must be <= 600", status=1)


def test_scenario_noise_file_at_1_hz(tmp_path: Path) -> None:
    one_hz(tmp_path / "n.wav")
    (tmp_path / "s.yaml").write_text("duration: 2\nuser: []\nconfig: {backbone: policy}\n"
                                     "noise: {kind: file, file: n.wav, level_db: -40}\nexpect: []\n")
    check(*peak(sys.executable, "-m", "duplex.scenario.cli", tmp_path / "s.yaml"), "1 Hz", status=1)


def test_scenario_nan_time(tmp_path: Path, clip: Path) -> None:
    (tmp_path / "s.yaml").write_text(f"duration: 5\nuser:\n  - {{audio: {clip}, at: .nan}}\nexpect: []\n")
    check(*peak(sys.executable, "-m", "duplex.scenario.cli", tmp_path / "s.yaml"), "not a finite number", status=1)


def test_a_1_hz_wav_stream_on_stdin(tmp_path: Path) -> None:
    data = one_hz(tmp_path / "q.wav").read_bytes()
    check(*peak(*CHAT, "--input", "-", *POLICY, stdin=data), "1 Hz")


def test_a_stream_of_zeros_and_a_fifo(tmp_path: Path) -> None:
    check(*peak(*CHAT, "--input", "/dev/zero", *POLICY), "not a WAV stream")
    os.mkfifo(tmp_path / "fifo")
    check(*peak(*CHAT, "--input", tmp_path / "fifo", *POLICY), "no data for 10 s")


def test_password_file_of_dev_zero(tmp_path: Path, clip: Path) -> None:
    (tmp_path / "k.yaml").write_text("mqtt:\n  enabled: true\n  password_file: /dev/zero\n")
    check(*peak(sys.executable, "-m", "duplex.kiosk_cli", "--config", tmp_path / "k.yaml", "--input", clip,
                "--once", "--set", "backbone=policy"), "not a regular file")


def test_output_on_the_input(tmp_path: Path, clip: Path) -> None:
    check(*peak(*CHAT, "--input", clip, "--output", clip, *POLICY), "is the input")
