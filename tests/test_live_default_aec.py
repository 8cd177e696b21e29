"""The default config, live, on a headset and on speakers: barge-ins stop the reply, echo does not.

Issue 10 item 5: the default echo canceller used to eat the user's barge-in when there was no echo
to cancel (a headset: 0 barge-ins, the reply played to its end), while `live.aec=none` would let
the model interrupt itself on speakers. One config must do both; the echo-path gate
(`audio_io.echo_path`) measures the coupling and bypasses the canceller when there is none.
Run on the private PulseAudio loopback with nothing but the default config (and the sink's rate).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live_harness import locate, probe_spans, silent_from
from tests.pulse_fixtures import Pulse, pulse  # noqa: F401  (fixture)
from tests.test_live_loopback import DEVICE_ALLOWANCE_S, converse, read_events

CUT = "Hold on a second, let me interrupt you right there."
STOP_TARGET_S = 0.3  # issue 10: reply audible over a barge-in, mean <= 0.3 s (here: one barge-in)


@pytest.mark.slow
@pytest.mark.parametrize("echo_db", [None, -10.0], ids=["headset", "speakers-10dB"])
def test_default_config_stops_for_a_barge_in_and_not_for_its_echo(
        pulse: Pulse, speech, tmp_path: Path, echo_db: float | None) -> None:  # noqa: F811
    if echo_db is not None:
        pulse.echo(echo_db)
    probe, question, stop, _ = converse(pulse, speech, tmp_path, duration=11.0, cut_after_s=1.5, sets=[], cut=CUT)
    events = read_events(tmp_path)
    breaks = [e for e in events if e.get("token") == "BREAK"]
    summary = next(e for e in events if e.get("what") == "live")
    assert summary["aec"] != "none", summary  # the default config cancels echo
    _, q_end = locate(probe, question)
    s_start, _ = locate(probe, stop, after=q_end)
    assert len(breaks) == 1, f"expected exactly the user's barge-in, got {breaks} (summary {summary})"
    answer = next(e for e in events if e.get("type") == "speaker" and e.get("what") == "started")
    assert breaks[0]["t"] >= answer["t"] + 1.0, f"the reply broke on its own echo before the user cut in: {breaks}"
    _, spk = probe_spans(probe)
    assert any(a < s_start for a, _ in spk), "the model never answered"
    stopped = silent_from(spk, s_start) - s_start
    assert stopped <= STOP_TARGET_S + DEVICE_ALLOWANCE_S, f"reply audible {stopped:.2f} s over the barge-in"
    assert summary.get("echo_path") == ("absent" if echo_db is None else "present"), summary  # the gate's verdict
