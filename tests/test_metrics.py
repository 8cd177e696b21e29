"""Strict and fdb_* metrics on hand-made signals with known answers (docs/metrics.md)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from audio_io.format import SAMPLE_RATE
from audio_io.wav import load_mono16k
from duplex.events import from_dict
from duplex.scenario import fdb
from duplex.scenario.expect import evaluate
from duplex.scenario.metrics import ClipTruth, Timeline, compute_metrics, speech_segments, strict_metrics
from duplex.scenario.spec import Check, Expectation, Role

CLIPS = Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "clips"


def track(seconds: float, *bursts: tuple[float, float]) -> np.ndarray:
    """Silence with a -20 dBFS tone in each (start, end) burst."""
    audio = np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)
    for s, e in bursts:
        lo, hi = round(s * SAMPLE_RATE), round(e * SAMPLE_RATE)
        audio[lo:hi] = 0.1 * np.sin(2 * np.pi * 220 * np.arange(hi - lo) / SAMPLE_RATE)
    return audio


def clip(index: int, role: Role, start: float, end: float, *pauses: tuple[float, float]) -> ClipTruth:
    return ClipTruth(index, role, start, end, start, tuple(pauses))


def timeline(audio: np.ndarray, clips: list[ClipTruth], breaks: tuple[float, ...] = (),
             user: np.ndarray | None = None) -> Timeline:
    events = [from_dict({"t": t, "type": "control", "token": "BREAK"}) for t in breaks]
    return Timeline.build(clips, audio, events, {}, user_audio=user)


def test_onset_detector_bridges_closures_drops_clicks_and_keeps_short_stops() -> None:
    audio = track(3.0, (0.2, 0.5), (0.56, 0.8), (1.0, 1.04), (1.5, 1.56), (1.8, 2.0), (2.12, 2.4))
    # 60 ms gap bridged; a 40 ms click dropped; a 60 ms burst counts; a 120 ms gap is a new onset.
    found = [edge for segment in speech_segments(audio) for edge in segment]
    assert found == pytest.approx([0.2, 0.8, 1.5, 1.56, 1.8, 2.0, 2.12, 2.4])


def test_a_short_start_in_a_turn_pause_is_a_false_start_and_the_turn_latency_counts_from_its_end() -> None:
    turn = clip(1, Role.TURN, 0.5, 4.0, (1.5, 2.3))
    tl = timeline(track(8.0, (1.8, 1.9), (4.4, 6.0)), [turn])
    m = strict_metrics(tl)
    assert m["false_starts"] == 1 and m["false_start_at_s"] == [1.8]
    assert m["floors_with_pauses"] == 1 and m["floors_with_false_start"] == 1
    assert m["turn_latency_median_s"] == pytest.approx(0.4)
    outcome = evaluate(Expectation(Check.FALSE_STARTS, {"max": 0}, 7), tl)
    assert not outcome.passed
    assert outcome.message == "false_starts = 1 (limit 0, over by 1): model onsets at 1.80 s (clip 1)"


def test_monologue_gaps_belong_to_the_user_and_the_reply_is_due_after_the_last_sentence() -> None:
    clips = [clip(1, Role.MONOLOGUE, 0.5, 2.0), clip(2, Role.MONOLOGUE, 2.45, 4.0), clip(3, Role.MONOLOGUE, 4.45, 6.0)]
    tl = timeline(track(10.0, (2.1, 2.3), (6.3, 8.0)), clips)
    (floor,) = tl.floors()
    assert (floor.start, floor.end, floor.clips) == (0.5, 6.0, (1, 2, 3))
    assert floor.pauses == ((2.0, 2.45), (4.0, 4.45))
    m = strict_metrics(tl)
    assert m["false_starts"] == 1 and m["turns_answered"] == 1
    assert m["turn_latency_median_s"] == pytest.approx(0.3)
    # The same clips as separate turns: the gap is the model's to take; no false start.
    turns = [clip(c.index, Role.TURN, c.start, c.end) for c in clips]
    assert strict_metrics(timeline(track(10.0, (2.1, 2.3), (6.3, 8.0)), turns))["false_starts"] == 0


def test_turn_latency_median_and_p90() -> None:
    clips = [clip(1, Role.TURN, 0.5, 1.0), clip(2, Role.TURN, 4.0, 4.5), clip(3, Role.TURN, 8.0, 8.5)]
    tl = timeline(track(12.0, (1.2, 3.0), (4.9, 7.0), (9.5, 11.0)), clips)
    m = strict_metrics(tl)
    assert m["turn_latency_median_s"] == pytest.approx(0.4)
    assert m["turn_latency_p90_s"] == pytest.approx(0.88)  # 0.4 + 0.8 * (1.0 - 0.4)
    # A model still speaking when the user ends answers at once (the start was a false start).
    talking = timeline(track(4.0, (0.8, 3.0)), [clip(1, Role.TURN, 0.5, 1.0)])
    assert strict_metrics(talking)["turn_latency_median_s"] == 0.0


def test_resume_and_overlap_inside_a_barge_in() -> None:
    cut = clip(2, Role.BARGE_IN, 2.5, 5.5)
    tl = timeline(track(8.0, (0.5, 2.8), (3.8, 4.3)), [clip(1, Role.TURN, 0.0, 0.3), cut])
    m = strict_metrics(tl)
    assert m["resumes_over_barge_in"] == 1 and m["resume_at_s"] == [3.8]
    assert m["overlap_s"] == [pytest.approx(0.8)]
    resumed = evaluate(Expectation(Check.RESUMES_OVER_BARGE_IN, {"max": 0}, 3), tl)
    assert not resumed.passed
    assert resumed.message == "resumes_over_barge_in = 1 (limit 0, over by 1): model came back at 3.80 s (clip 2)"
    over = evaluate(Expectation(Check.OVERLAP, {"max": 0.3}, 4), tl)
    assert not over.passed and "over by 0.50 s" in over.message
    between_words = timeline(track(8.0, (0.5, 2.45), (2.75, 2.9), (3.8, 4.3)), [clip(1, Role.TURN, 0.0, 0.3), cut])
    m = strict_metrics(between_words)  # the next word 0.25 s into the barge-in is not a resume; 3.8 is
    assert m["resume_at_s"] == [3.8] and m["overlap_s"] == [pytest.approx(0.65, abs=0.02)]
    clean = timeline(track(8.0, (0.5, 2.8), (6.0, 7.0)), [clip(1, Role.TURN, 0.0, 0.3), cut])
    assert strict_metrics(clean)["resumes_over_barge_in"] == 0
    assert evaluate(Expectation(Check.RESUMES_OVER_BARGE_IN, {"max": 0}, 3), clean).passed


def test_continuation_over_backchannels_and_noises() -> None:
    reply = (1.0, 6.0)
    bcs = [clip(2, Role.BACKCHANNEL, 2.0, 2.4), clip(3, Role.NOISE, 4.0, 4.3)]
    first = clip(1, Role.TURN, 0.0, 0.8)
    went_on = strict_metrics(timeline(track(8.0, reply), [first, *bcs]))
    assert (went_on["continued_over_backchannel"], went_on["continued_over_noise"]) == (1, 1)
    stopped = strict_metrics(timeline(track(8.0, (1.0, 2.2), (4.0, 6.0)), [first, *bcs]))
    assert (stopped["continued_over_backchannel"], stopped["backchannels_over_reply"]) == (0, 1)
    assert (stopped["continued_over_noise"], stopped["noises_over_reply"]) == (1, 1)
    assert (stopped["replies_ended_by_backchannel"], stopped["replies_ended_by_noise"]) == (0, 0)  # it went on
    broke = strict_metrics(timeline(track(8.0, reply), [first, *bcs], breaks=(4.1,)))
    assert (broke["continued_over_backchannel"], broke["continued_over_noise"]) == (1, 0)
    assert (broke["replies_ended_by_backchannel"], broke["replies_ended_by_noise"]) == (0, 1)
    quiet = strict_metrics(timeline(track(8.0, (1.0, 1.5)), [first, *bcs]))
    assert quiet["backchannels_over_reply"] == quiet["noises_over_reply"] == 0  # nothing to go on with


def test_a_backchannel_while_the_reply_is_held_for_another_is_over_the_reply() -> None:
    first = clip(1, Role.TURN, 0.0, 0.8)
    mmhmm, yeah = clip(2, Role.BACKCHANNEL, 2.0, 2.4), clip(3, Role.BACKCHANNEL, 2.9, 3.3)
    held = (1.0, 2.1)  # quiet for "mm-hmm"; "yeah" comes before it is back
    broke = timeline(track(8.0, held, (4.3, 5.0)), [first, mmhmm, yeah], breaks=(3.0,))
    assert broke.over_reply(yeah)
    m = strict_metrics(broke)
    counts = (m["backchannels_over_reply"], m["replies_ended_by_backchannel"], m["continued_over_backchannel"])
    assert counts == (2, 1, 0)
    assert m["unprompted_breaks"] == 0
    went_on = strict_metrics(timeline(track(8.0, held, (3.5, 6.0)), [first, mmhmm, yeah]))
    assert (went_on["backchannels_over_reply"], went_on["replies_ended_by_backchannel"]) == (2, 0)
    assert went_on["continued_over_backchannel"] == 1  # the second: audible again 0.2 s after it
    # A reply that had simply ended (its quiet began before any backchannel): nothing to end or go on with.
    ended = timeline(track(8.0, (1.0, 1.8)), [first, mmhmm, yeah])
    assert not ended.over_reply(mmhmm) and not ended.over_reply(yeah)
    # A BREAK with no user sound near it (the speaker's own echo) is unprompted.
    assert strict_metrics(timeline(track(8.0, (1.0, 5.0)), [first, mmhmm], breaks=(4.0,)))["unprompted_breaks"] == 1


def test_took_turn_follows_the_benchmark_thresholds() -> None:
    assert not fdb.took_turn([])
    assert not fdb.took_turn([(1.0, 1.5)])  # < 1 s, 1 word
    assert not fdb.took_turn([(1.0, 1.2), (1.3, 1.5), (1.6, 1.9)])  # < 1 s, 3 words
    assert fdb.took_turn([(1.0, 1.1), (1.2, 1.3), (1.4, 1.5), (1.6, 1.7)])  # 4 words
    assert fdb.took_turn([(1.0, 2.0)])  # 1 s
    assert fdb.backchannel_verdict([(1.0, 1.4), (3.0, 3.5)]) == (False, 2)
    assert fdb.backchannel_verdict([(1.0, 2.2), (3.0, 3.5)]) == (False, 2)  # the last verdict wins
    assert fdb.backchannel_verdict([(1.0, 1.4), (3.0, 6.5)]) == (True, 1)  # > 3 s takes the turn


def test_silero_segmentation_hysteresis_min_speech_and_padding() -> None:
    w = fdb.WINDOW / SAMPLE_RATE
    probs = [0.0] * 10 + [0.9] * 20 + [0.4] * 2 + [0.9] * 10 + [0.1] * 10 + [0.9] * 5 + [0.0] * 10
    spans = fdb.speech_timestamps(probs, len(probs) * fdb.WINDOW)
    # 0.4 is above threshold - 0.15: no end; the 5-window (160 ms) burst is under 250 ms: dropped.
    assert len(spans) == 1 and spans[0] == pytest.approx((10 * w - 0.03, 42 * w + 0.03))
    assert fdb.merge([(0.0, 1.0), (1.5, 2.0), (2.6, 3.0)], 0.5) == [(0.0, 2.0), (2.6, 3.0)]


def test_segments_match_the_silero_package_on_speech() -> None:
    pytest.importorskip("silero_vad")
    torch = pytest.importorskip("torch")
    from silero_vad import get_speech_timestamps, load_silero_vad

    audio = np.concatenate([np.zeros(8000, np.float32)] + [load_mono16k(CLIPS / f"{n}.wav") for n in
                                                            ("weather", "stop", "paused", "mmhmm", "hesitant")])
    with warnings.catch_warnings():  # the package's own importlib.resources.path deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        model = load_silero_vad(onnx=True)
    ref = get_speech_timestamps(torch.from_numpy(audio), model, return_seconds=True, time_resolution=3)
    mine = fdb.VadTrack(audio).segments()
    assert len(mine) == len(ref) >= 5
    for (s, e), r in zip(mine, ref, strict=True):
        assert (s, e) == (pytest.approx(r["start"], abs=0.002), pytest.approx(r["end"], abs=0.002))


def test_v15_stop_and_response_latency() -> None:
    user, model = [(2.5, 5.5)], [(0.5, 2.8), (6.0, 8.0)]
    assert fdb.stop_and_response(user, model, (2.5, 5.5)) == (pytest.approx(0.3), pytest.approx(0.5))
    assert fdb.stop_and_response(user, [(6.0, 8.0)], (2.5, 5.5)) == (None, pytest.approx(0.5))


def speech_track(seconds: float, *pieces: tuple[str, float]) -> np.ndarray:
    audio = np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)
    for name, at in pieces:
        clip_audio = load_mono16k(CLIPS / f"{name}.wav")
        lo = round(at * SAMPLE_RATE)
        audio[lo : lo + clip_audio.size] += clip_audio
    return audio


def test_a_resume_inside_a_barge_in_is_caught_strictly_and_hidden_by_the_benchmark_rules() -> None:
    pytest.importorskip("silero_vad")
    weather = load_mono16k(CLIPS / "weather.wav")
    # The reply ("What is the weather...") is cut 0.4 s into the barge-in, then the model comes back
    # with a 0.6 s "mm-hmm" while the user is still talking, then answers after the user ends.
    cut_at = 2.1
    model = speech_track(12.0, ("mmhmm", 3.6), ("weather", 7.6))
    model[round(0.3 * SAMPLE_RATE) : round(0.3 * SAMPLE_RATE) + weather.size] = weather  # to 2.52 s
    user = speech_track(12.0, ("stop", cut_at))
    cut = ClipTruth(2, Role.BARGE_IN, cut_at + 0.05, cut_at + 2.99, cut_at)
    tl = timeline(model, [clip(1, Role.TURN, 0.0, 0.2), cut], breaks=(cut_at + 0.3,), user=user)
    m = compute_metrics(tl)
    assert m["resumes_over_barge_in"] == 1  # strict: the "mm-hmm" at 3.6 s
    assert m["fdb_stop_latency_s"] == pytest.approx(0.4, abs=0.1)  # v1.5: only the first overlap
    assert m["fdb_interrupt_tor"] == 1.0  # v1: the answer after the barge-in; the resume is not seen
    assert m["stop_latency_s"] == [pytest.approx(0.35, abs=0.1)]  # the old 0.2 s-merged figure misses it too


def test_an_aborted_start_in_a_pause_is_a_strict_false_start_but_no_fdb_takeover() -> None:
    pytest.importorskip("silero_vad")
    model = speech_track(10.0, ("mmhmm", 1.7), ("weather", 5.0))
    user = speech_track(10.0, ("paused", 0.0))
    paused = clip(1, Role.TURN, 0.05, 4.55, (1.0, 1.45), (2.5, 3.1))
    tl = timeline(model, [paused], user=user)
    m = compute_metrics(tl)
    assert m["false_starts"] == 1
    assert m["fdb_pause_tor"] == 0.0  # under 1 s and one "word": the benchmark sees no takeover
    assert m["fdb_turn_tor"] == 1.0 and m["fdb_turn_latency_s"] == 0.0  # first word before the end: clamped


def test_reports_carry_both_families_and_scenarios_can_expect_the_strict_ones(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "clips").mkdir()
    for name in ("mono1", "mono2", "stop", "weather"):
        (tmp_path / "clips" / f"{name}.wav").write_bytes((CLIPS / f"{name}.wav").read_bytes())
    (tmp_path / "strict.yaml").write_text("""name: strict expectations
duration: 12.0
config: {backbone: policy}
user:
  - {audio: clips/mono1.wav, at: 0.5, role: monologue}
  - {audio: clips/mono2.wav, at: 3.27, role: monologue}
  - {audio: clips/stop.wav, role: barge_in, after: {event: speaking_started, nth: 1, delay: 0.5}}
expect:
  - false_starts: {max: 0}
  - resumes_over_barge_in: {max: 0}
  - overlap: {max: 5}
""")
    code = "from duplex.scenario.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "strict.yaml"), "--report",
                           str(tmp_path / "r.json"), "--junit", str(tmp_path / "j.xml")],
                          capture_output=True, text=True, cwd=root)
    assert proc.returncode in (0, 1), proc.stderr
    (scenario,) = json.loads((tmp_path / "r.json").read_text())["scenarios"]
    checks = [e["check"] for e in scenario["expectations"]]
    assert checks == ["false_starts {max: 0}", "resumes_over_barge_in {max: 0}", "overlap {max: 5}"]
    m = scenario["metrics"]
    assert m["floors"] == 1 and m["floors_with_pauses"] == 1  # two monologue clips: one floor, one gap
    for key in ("false_starts", "resumes_over_barge_in", "overlap_s", "turn_latency_median_s",
                "turn_latency_p90_s", "continued_over_backchannel", "fdb_turn_tor", "fdb_pause_tor",
                "fdb_stop_latency_s", "fdb_interrupt_tor"):
        assert key in m, key
    props = {p.get("name") for p in ET.parse(tmp_path / "j.xml").getroot().iter("property")}
    assert {"false_starts", "resumes_over_barge_in", "overlap_s", "fdb_turn_tor", "fdb_stop_latency_s"} <= props


def test_a_strict_check_needs_its_bound_and_old_roles_stay_valid(tmp_path: Path) -> None:
    from duplex.errors import ScenarioError
    from duplex.scenario.spec import load_scenario

    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "stop.wav").write_bytes((CLIPS / "stop.wav").read_bytes())
    base = "duration: 8.0\nuser:\n  - {audio: clips/stop.wav, at: 0.5, role: %s}\nexpect:\n  - %s\n"
    path = tmp_path / "s.yaml"
    path.write_text(base % ("backchannel", "false_starts: {max: 0}"))
    assert load_scenario(path).user[0].role is Role.BACKCHANNEL
    path.write_text(base % ("noise", "resumes_over_barge_in: {}"))
    with pytest.raises(ScenarioError, match=r"s.yaml:5: expect\[1\].resumes_over_barge_in: missing 'max'"):
        load_scenario(path)
    path.write_text(base % ("talker", "false_starts: {max: 0}"))
    with pytest.raises(ScenarioError, match="unknown role 'talker' .*monologue, noise"):
        load_scenario(path)
