"""Run one scenario: script the microphone, drive the engine offline, check the expectations.

A scenario that cannot run as written (bad file, missing clip, bad config override, a trigger
that never fired) fails with a message naming the problem; it never stops the rest of a suite.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audio_io.clip import load_clip
from audio_io.format import SAMPLE_RATE
from audio_io.levels import audible_spans
from audio_io.scripted import EchoPath, EchoTap, ScheduledClip, ScriptedMicrophone, noise_signal
from audio_io.wav import MemoryOutput
from duplex.backbones import Model, load_model
from duplex.config import Config, load_config, to_dict
from duplex.errors import USER_ERRORS, DuplexError
from duplex.events import Control, Event, Speaker
from duplex.scenario.expect import Outcome, evaluate
from duplex.scenario.metrics import INNER_PAUSE_S, ClipTruth, Timeline, compute_metrics
from duplex.scenario.spec import CLIP_PARAMS, MAX_DURATION_S, Scenario, Trigger, load_scenario
from duplex.session import DuplexSession, summary_of
from duplex.tokens import Kind
from duplex.worker import ModelWorker


def trigger_of(event: Event) -> Trigger | None:
    """The scenario trigger an event fires, if any."""
    match event:
        case Speaker(audible=True):
            return Trigger.SPEAKING_STARTED
        case Speaker(audible=False):
            return Trigger.SPEAKING_STOPPED
        case Control(token=Kind.BREAK):
            return Trigger.BARGE_IN
        case Control(token=Kind.SHIFT):
            return Trigger.SHIFT
        case Control(token=Kind.EOT):
            return Trigger.EOT
    return None


@dataclass(slots=True)
class ScenarioResult:
    name: str
    file: Path
    passed: bool
    failures: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    timeline: Timeline | None = None
    mic_audio: np.ndarray | None = None
    wall_s: float = 0.0
    slow: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "file": str(self.file), "passed": self.passed, "failures": self.failures,
                "expectations": [o.to_dict() for o in self.outcomes], "metrics": self.metrics,
                "events": [e.to_dict() for e in self.events], "wall_s": round(self.wall_s, 3)}


class ModelCache:
    """Models keyed by their effective config, reset between scenarios (loading can be slow)."""

    def __init__(self) -> None:
        self._models: dict[str, Model] = {}

    def get(self, cfg: Config) -> Model:
        key = json.dumps(to_dict(dataclasses.replace(cfg, engine=type(cfg.engine)())), sort_keys=True) + cfg.base_dir
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = load_model(cfg)
        else:  # on the model's own thread, like every call into it
            worker = ModelWorker.of(model)
            worker.call(model.backbone.reset)
            worker.call(model.vocoder.reset)
        return model


def run_scenario_file(path: Path, *, config: Path | None = None, cache: ModelCache | None = None) -> ScenarioResult:
    started = time.perf_counter()
    try:
        scenario = load_scenario(path)
        result = run_scenario(scenario, config=config, cache=cache)
    except USER_ERRORS as exc:
        result = ScenarioResult(name=Path(path).stem, file=Path(path), passed=False, failures=[str(exc)])
    result.wall_s = time.perf_counter() - started
    return result


def run_scenario(scenario: Scenario, *, config: Path | None = None, cache: ModelCache | None = None) -> ScenarioResult:
    try:
        cfg = load_config(config, overrides=scenario.config)
    except DuplexError as exc:
        raise type(exc)(f"{scenario.file}: config: {exc}") from exc
    # The session lasts exactly `duration`: no offline tail after the script ends.
    cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, max_tail_s=0.0))
    model = (cache or ModelCache()).get(cfg)
    clips = [ScheduledClip(load_clip(c.audio, max_s=MAX_DURATION_S, what="clip") * np.float32(10 ** (c.gain_db / 20)),
                           start=round(c.at * SAMPLE_RATE) if c.at is not None else None) for c in scenario.user]
    n = round(scenario.duration * SAMPLE_RATE) + SAMPLE_RATE
    noise = None
    if scenario.noise:
        source = load_clip(scenario.noise.file, max_s=MAX_DURATION_S, what="noise") if scenario.noise.file else None
        noise = noise_signal(scenario.noise.kind, scenario.noise.level_db, n, scenario.seed, source)
    echo = EchoPath(scenario.echo.gain_db, scenario.echo.delay_ms) if scenario.echo else None
    memory = MemoryOutput()
    output = EchoTap(memory, echo) if echo else memory
    seen: dict[Trigger, int] = {}

    def fire_triggers(now: float) -> None:
        for event in watch.pending():
            trigger = trigger_of(event)
            if trigger is None:
                continue
            seen[trigger] = seen.get(trigger, 0) + 1
            for i, spec in enumerate(scenario.user):
                if spec.after and spec.after.event is trigger and spec.after.nth == seen[trigger]:
                    mic.trigger(i, event.t + spec.after.delay)

    mic = ScriptedMicrophone(clips, duration=scenario.duration, noise=noise, echo=echo, before_read=fire_triggers)
    session = DuplexSession(config=cfg, input=mic, output=output, model=model)
    watch = session.events(maxsize=0)
    events = asyncio.run(session.play())
    return judge(scenario, clips, mic, memory.audio(), events, summary_of(events))


def judge(scenario: Scenario, clips: list[ScheduledClip], mic: ScriptedMicrophone, model_audio: np.ndarray,
          events: list[Event], summary: dict[str, Any]) -> ScenarioResult:
    failures: list[str] = []
    truths: list[ClipTruth] = []
    total = mic.total / SAMPLE_RATE
    user = np.zeros(mic.total, dtype=np.float32)  # the clean user track (no noise, no echo), for fdb_*
    for spec, clip in zip(scenario.user, clips, strict=True):
        if clip.start is None:
            assert spec.after is not None
            failures.append(f"clip {spec.index} never played: event {spec.after.event.value} "
                            f"#{spec.after.nth} did not happen")
            truths.append(ClipTruth(spec.index, spec.role, float("inf"), float("inf"), float("inf")))
            continue
        placed = clip.start / SAMPLE_RATE
        spans = audible_spans(clip.audio) or [(0.0, clip.audio.size / SAMPLE_RATE)]
        if placed + clip.audio.size / SAMPLE_RATE > total + 1e-9:
            failures.append(f"clip {spec.index} runs past the session end ({placed + clip.audio.size / SAMPLE_RATE:.2f}"
                            f" s > {total:.2f} s)")
        pauses = tuple((placed + a[1], placed + b[0]) for a, b in zip(spans, spans[1:], strict=False)
                       if b[0] - a[1] >= INNER_PAUSE_S)
        truths.append(ClipTruth(spec.index, spec.role, placed + spans[0][0], placed + spans[-1][1], placed, pauses))
        user[clip.start : clip.start + clip.audio.size] += clip.audio[: max(0, user.size - clip.start)]
    timeline = Timeline.build(truths, model_audio, events, summary, user_audio=user)
    outcomes = []
    for exp in scenario.expect:
        names_clip = [int(v) for k, v in exp.params.items() if k in CLIP_PARAMS]
        if any(truths[i - 1].start == float("inf") for i in names_clip):
            continue  # already reported: the clip it names never played
        outcome = evaluate(exp, timeline)
        outcomes.append(outcome)
        if not outcome.passed:
            failures.append(f"line {exp.line}: {exp.describe()}: {outcome.message}")
    metrics = compute_metrics(timeline)
    return ScenarioResult(name=scenario.name, file=scenario.file, passed=not failures, failures=failures,
                          outcomes=outcomes, metrics=metrics, events=events, timeline=timeline,
                          mic_audio=mic.recorded, slow=scenario.slow)
