"""The covo benchmarks run end to end on CPU with the tiny configs (what CI runs; the GPU run is in docs/covo.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parent.parent


def test_covo_step_runs_end_to_end_on_cpu_with_the_tiny_config() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "covo_step.py"), "--config", "tiny", "--random-init",
                           "--device", "cpu", "--steps", "3", "--repeats", "1", "--t2w-prompt-units", "4"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert set(out["native"]) >= {"eager", "static", "p99_ratio_eager_over_best"}
    assert out["turn"]["static"]["first_audible_ms_p50"] >= out["turn"]["static"]["first_unit_ms_p50"] > 0
    assert out["token2wav"]["first_chunk_ms_p50"] > 0 and out["token2wav"]["ms_per_unit_ratio_eager_over_streaming"] > 0


def test_covo_step_refuses_7b_without_a_gpu_in_one_line() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "covo_step.py"), "--config", "7b", "--random-init",
                           "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "needs a CUDA GPU" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # a ramp of sessions (15 s): the batching itself is tests/test_batched_covo.py
def test_covo_capacity_ramps_batched_lanes_on_cpu_with_the_tiny_config() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "covo_capacity.py"), "--config", "tiny", "--device",
                           "cpu", "--seconds", "1.5", "--start-n", "1", "--max-n", "2"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["bench"] == "covo_capacity" and out["levels"][0]["n"] == 1
    assert out["levels"][0]["steps_measured"] > 0 and out["max_realtime_conversations"] >= 1  # one conversation: ~30 ms


def test_covo_capacity_refuses_7b_without_a_gpu_in_one_line() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "covo_capacity.py"), "--config", "7b",
                           "--random-init", "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "needs a CUDA GPU" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
