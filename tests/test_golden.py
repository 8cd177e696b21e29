"""The golden test: every example scenario and `duplex-chat --input conversation.wav` produce exactly
the recorded event stream and, bit for bit, the recorded speaker audio (see tests/golden.py for what
is normalised and how to regenerate after a deliberate behaviour change)."""

from __future__ import annotations

import json

import pytest

from tests import golden

CASES = [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in golden.cases()]


@pytest.mark.parametrize("case", CASES)
def test_output_matches_the_golden_recording(case: golden.Case) -> None:
    path = golden.path_of(case)
    assert path.exists(), f"no golden file {path.name}: run `python -m tests.golden --update {case.name}`"
    expected = golden.read(path)
    got = golden.observed(case)
    lines = [json.dumps(e, separators=(",", ":")) for e in got["events"]]  # key order is part of the contract
    assert lines == path.read_text().splitlines()[1:], f"{case.name}: the event stream changed"
    assert (got["samples"], got["audio_sha256"]) == (expected["samples"], expected["audio_sha256"]), \
        f"{case.name}: the speaker audio changed"


def test_normalising_hides_only_wall_clock_figures() -> None:
    stopped = {"t": 1.0, "type": "session", "what": "stopped", "steps": 7, "step_ms_p50": 3.2,
               "step_ms_p99": 9.1, "overruns": 1, "realtime_factor": 40.0}
    assert golden.normalise(stopped) == {**stopped, "step_ms_p50": "*", "step_ms_p99": "*", "overruns": "*",
                                         "realtime_factor": "*"}
    assert golden.normalise({"t": 0.3, "type": "overrun", "step": 1, "ms": 170.0}) is None
    started = {"t": 0.0, "type": "speaker", "what": "started"}
    assert golden.normalise(started) == started
