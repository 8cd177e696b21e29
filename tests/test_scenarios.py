"""The scenario runner: reports, failure messages with margins, bad scenarios, plots, pytest plugin."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from audio_io.scripted import EchoPath, ScheduledClip, ScriptedMicrophone, noise_signal
from duplex.scenario.runner import run_scenario_file

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "examples" / "scenarios"
CLIPS = SUITE / "clips"


def duplex_test(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    code = "from duplex.scenario.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def scenario(tmp: Path, name: str, text: str) -> Path:
    (tmp / "clips").mkdir(exist_ok=True)
    for clip in ("weather.wav", "stop.wav", "mmhmm.wav"):
        if not (tmp / "clips" / clip).exists():
            shutil.copy(CLIPS / clip, tmp / "clips" / clip)
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return path


BARGE = """name: {name}
duration: 12.0
user:
  - audio: clips/weather.wav
    at: 0.5
  - audio: clips/stop.wav
    role: barge_in
    after: {{event: speaking_started, nth: 1, delay: 1.0}}
expect:
{expect}
"""


def test_a_deliberately_wrong_expectation_says_which_and_by_how_much(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        "wrong",
        BARGE.format(
            name="too strict",
            expect="""\
  - speaking_started: {after_user_end: 1, within: 0.1}
  - silent: {after_user_start: 2, within: 0.05}
  - no_barge_in: {during_user: 2}""",
        ),
    )
    result = run_scenario_file(path)
    assert not result.passed
    assert len(result.failures) == 3
    started, silent, barge = result.failures
    assert started.startswith("line 10: speaking_started {after_user_end: 1, within: 0.1}: model started")
    assert "(limit 0.10 s, over by" in started
    assert "silent {after_user_start: 2, within: 0.05}" in silent and "over by" in silent
    assert "no_barge_in {during_user: 2}: BREAK at" in barge


def test_the_same_scenario_with_fair_expectations_passes(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        "fair",
        BARGE.format(
            name="fair",
            expect="""\
  - speaking_started: {after_user_end: 1, within: 1.0}
  - silent: {after_user_start: 2, within: 0.4}
  - barge_in: {after_user_start: 2, within: 1.5}""",
        ),
    )
    result = run_scenario_file(path)
    assert result.passed, result.failures
    assert result.metrics["barge_ins"] == 1 and result.metrics["false_barge_ins"] == 0
    assert 0 < result.metrics["stop_latency_s"][0] <= 0.4


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        (
            "missing_clip",
            "duration: 5\nuser:\n  - audio: clips/nope.wav\n    at: 0\nexpect: []\n",
            ":3: user[1].audio: clip not found",
        ),
        (
            "too_long",
            "duration: 1.0\nuser:\n  - audio: clips/weather.wav\n    at: 0\nexpect: []\n",
            "longer than the session",
        ),
        (
            "past_end",
            "duration: 3.0\nuser:\n  - audio: clips/weather.wav\n    at: 2.0\nexpect: []\n",
            "past the session end",
        ),
        (
            "bad_event",
            "duration: 5\nuser:\n  - audio: clips/mmhmm.wav\n    after: {event: speaking_begun}\nexpect: []\n",
            ":4: user[1].after.event: unknown event 'speaking_begun'",
        ),
        (
            "negative",
            "duration: 5\nuser:\n  - audio: clips/mmhmm.wav\n    at: -1\nexpect: []\n",
            ":4: user[1].at: -1 must be >= 0",
        ),
        ("malformed", "duration: 5\nuser: [\n", "malformed YAML"),
        ("bad_check", "duration: 5\nuser: []\nexpect:\n  - silence: {}\n", ":4: expect[1].silence: unknown check"),
        ("bad_clip_ref", "duration: 5\nuser: []\nexpect:\n  - no_barge_in: {during_user: 3}\n", "no user clip 3"),
        ("bad_config", "duration: 5\nconfig: {policy: {vad: dnn}}\nuser: []\nexpect: []\n", "policy.vad"),
    ],
)
def test_bad_scenarios_fail_alone_and_name_the_problem(tmp_path: Path, name: str, text: str, needle: str) -> None:
    bad = scenario(tmp_path, name, text)
    good = scenario(tmp_path, "good", "duration: 2.0\nuser: []\nexpect:\n  - no_speaking: {from: 0, to: 2}\n")
    # the policy backbone: what is tested is the validation, not the model (and it needs no torch import)
    proc = duplex_test(bad, good, "--config", ROOT / "examples" / "policy.yaml", "--report", tmp_path / "r.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    by_name = {Path(s["file"]).stem: s for s in report["scenarios"]}
    assert by_name["good"]["passed"]
    assert not by_name[name]["passed"]
    assert needle in by_name[name]["failures"][0], by_name[name]["failures"]
    assert str(bad) in by_name[name]["failures"][0] or name == "bad_config"


def test_a_trigger_that_never_fires_is_reported(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        "never",
        """duration: 3.0
user:
  - audio: clips/mmhmm.wav
    after: {event: barge_in, nth: 2}
expect:
  - no_barge_in: {during_user: 1}
""",
    )
    result = run_scenario_file(path)
    assert result.failures == ["clip 1 never played: event barge_in #2 did not happen"]


def test_every_check_that_names_a_clip_that_never_played_is_left_out(tmp_path: Path) -> None:
    """The model never spoke (silence: no turn), so the barge-in clip timed from its speech never
    played: the checks that name it (any of their clip keys) are reported once, as that clip, and
    none of them is evaluated on a clip that has no time (`silent` and `speaking_started` crashed
    duplex-test with an OverflowError before round 17)."""
    path = scenario(
        tmp_path,
        "unplayed",
        """duration: 3.0
user:
  - audio: clips/mmhmm.wav
    role: barge_in
    after: {event: speaking_started, nth: 1, delay: 1.0}
expect:
  - silent: {after_user_start: 1, within: 0.3}
  - speaking_started: {after_user_end: 1, within: 1.0}
  - barge_in: {after_user_start: 1, within: 1.0}
  - no_speaking: {during_user: 1}
  - false_barge_ins: {max: 0}
""",
    )
    result = run_scenario_file(path, config=ROOT / "examples" / "policy.yaml")
    assert result.failures == ["clip 1 never played: event speaking_started #1 did not happen"]
    assert [o.expectation.check.value for o in result.outcomes] == ["false_barge_ins"]


def known_failures(backbone: str = "tiny-fd") -> set[str]:
    """Scenario stems listed as known failures of `backbone` in examples/scenarios/conftest.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("scenario_known_failures", SUITE / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {stem for stem, by in module.XFAIL.items() if backbone in by}


def test_report_junit_and_plots_for_the_suite(tmp_path: Path) -> None:
    # Four of the suite's scenarios: every scenario already runs as its own item (examples/scenarios);
    # this is about the report, the JUnit file and the plots, which four exercise as well as sixteen.
    expected_to_pass = sorted(p for p in SUITE.glob("*.yaml") if p.stem not in known_failures())[:4]
    proc = duplex_test(
        *expected_to_pass,
        "--skip-slow",
        "--report",
        tmp_path / "r.json",
        "--junit",
        tmp_path / "j.xml",
        "--plot",
        tmp_path / "plots",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["failed"] == 0 and report["summary"]["passed"] == len(expected_to_pass) == 4
    for s in report["scenarios"]:
        assert {"name", "file", "passed", "failures", "metrics", "events"} <= s.keys()
        assert {
            "turn_latency_s",
            "stop_latency_s",
            "barge_ins",
            "false_barge_ins",
            "takeovers",
            "step_ms_p50",
            "step_ms_p99",
            "realtime_factor",
        } <= s["metrics"].keys()
        assert all({"t", "type"} <= e.keys() for e in s["events"])
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert suite.tag == "testsuite" and int(suite.get("failures")) == 0
    assert len(suite.findall("testcase")) == len(report["scenarios"])
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert len(pngs) == len(report["scenarios"])
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 20_000 for p in pngs)


def test_failing_suite_exits_nonzero_and_junit_records_the_failure(tmp_path: Path) -> None:
    path = scenario(
        tmp_path, "wrong", BARGE.format(name="strict", expect="  - silent: {after_user_start: 2, within: 0.01}")
    )
    proc = duplex_test(path, "--junit", tmp_path / "j.xml")
    assert proc.returncode == 1
    failure = ET.parse(tmp_path / "j.xml").getroot().find("testcase/failure")
    assert failure is not None and "over by" in failure.get("message")


def test_missing_path_is_a_one_line_error(tmp_path: Path) -> None:
    proc = duplex_test(tmp_path / "nowhere")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"duplex-test: error: {tmp_path / 'nowhere'}: no such scenario file or folder"


def test_pytest_collects_the_suite_as_items() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "", str(SUITE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    items = [line for line in proc.stdout.splitlines() if ".yaml::" in line]
    assert len(items) == len(list(SUITE.glob("*.yaml")))
    assert any("ten_minutes.yaml::ten_minutes" in line for line in items)


def test_pytest_reports_a_failing_scenario_with_its_message(tmp_path: Path) -> None:
    dest = tmp_path / "examples" / "scenarios"
    dest.mkdir(parents=True)
    scenario(
        dest, "strict", BARGE.format(name="strict", expect="  - speaking_started: {after_user_end: 1, within: 0.05}")
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(dest)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout
    assert "scenario strict.yaml failed" in proc.stdout and "over by" in proc.stdout


def test_echo_path_delays_and_attenuates_what_was_played() -> None:
    echo = EchoPath(gain_db=-20, delay_ms=50)
    mic = ScriptedMicrophone([], duration=0.48, echo=echo)
    import asyncio

    block = np.ones(2560, dtype=np.float32)
    echo.played(block)
    chunk = asyncio.run(mic.read())
    delay = 800
    assert np.all(chunk[:delay] == 0) and np.allclose(chunk[delay:], 0.1)


def test_clips_mix_at_their_times_and_late_triggers_start_at_once() -> None:
    import asyncio

    clip = ScheduledClip(np.full(1000, 0.5, dtype=np.float32), start=2000)
    late = ScheduledClip(np.full(100, 0.25, dtype=np.float32))
    mic = ScriptedMicrophone([clip, late], duration=0.32)
    first = asyncio.run(mic.read())
    mic.trigger(1, 0.01)  # in the past: starts at the next chunk, and says how late
    second = asyncio.run(mic.read())
    assert np.all(first[2000:] == 0.5) and np.all(first[:2000] == 0)
    assert np.all(second[100:440] == 0.5) and np.all(second[:100] == 0.75) and late.late_by == 2560 - 160
    assert asyncio.run(mic.read()) is None


@pytest.mark.parametrize("kind", ["white", "pink"])
def test_noise_has_the_requested_level_and_is_seeded(kind: str) -> None:
    from audio_io.format import dbfs

    a = noise_signal(kind, -40.0, 48_000, seed=1)
    assert dbfs(a) == pytest.approx(-40.0, abs=0.1)
    assert np.array_equal(a, noise_signal(kind, -40.0, 48_000, seed=1))
    assert not np.array_equal(a, noise_signal(kind, -40.0, 48_000, seed=2))
    if kind == "pink":
        spectrum = np.abs(np.fft.rfft(a)) ** 2
        low, high = spectrum[100:1000].mean(), spectrum[10_000:20_000].mean()
        assert low > 10 * high
