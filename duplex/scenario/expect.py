"""Expectations checked against a run's timeline; a failure says which check and by how much."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio_io.format import SAMPLE_RATE
from audio_io.levels import audible_spans
from duplex.scenario.metrics import BARGE_IN_GRACE_S, Timeline, event_metrics
from duplex.scenario.spec import Check, Expectation, Role


@dataclass(frozen=True, slots=True)
class Outcome:
    expectation: Expectation
    passed: bool
    message: str
    window: tuple[float, float] | None = None  # the stretch of session time the check looked at

    def to_dict(self) -> dict[str, object]:
        return {
            "check": self.expectation.describe(),
            "line": self.expectation.line,
            "passed": self.passed,
            "message": self.message,
        }


def evaluate(exp: Expectation, tl: Timeline) -> Outcome:
    p = exp.params
    match exp.check:
        case Check.SPEAKING_STARTED:
            return _speaking_started(exp, tl, int(p["after_user_end"]), p["within"])
        case Check.SILENT:
            return _silent(exp, tl, int(p["after_user_start"]), p["within"])
        case Check.BARGE_IN:
            clip = tl.clip(int(p["after_user_start"]))
            window = (clip.start, clip.start + p["within"])
            hits = [t for t in tl.breaks if window[0] <= t <= window[1]]
            if hits:
                return Outcome(exp, True, f"BREAK {hits[0] - clip.start:.2f} s after clip {clip.index} started", window)
            later = [t for t in tl.breaks if t > window[1]]
            detail = f"the first came {later[0] - window[0]:.2f} s after" if later else "none came"
            return Outcome(
                exp, False, f"no BREAK within {p['within']:.2f} s of clip {clip.index}'s start ({detail})", window
            )
        case Check.NO_BARGE_IN:
            clip = tl.clip(int(p["during_user"]))
            window = (clip.start, clip.end + BARGE_IN_GRACE_S)
            hits = [t for t in tl.breaks if window[0] <= t <= window[1]]
            if hits:
                return Outcome(
                    exp, False, f"BREAK at {hits[0]:.2f} s, {hits[0] - clip.start:.2f} s into clip {clip.index}", window
                )
            return Outcome(exp, True, f"no BREAK during clip {clip.index}", window)
        case Check.NO_SPEAKING:
            if "during_user" in p:
                clip = tl.clip(int(p["during_user"]))
                window, what = (clip.start, clip.end), f"clip {clip.index}"
            else:
                window = (p.get("from", 0.0), p.get("to", float("inf")))
                what = f"{window[0]:g}-{window[1]:g} s"
            loud = _audible_in(tl.model_audio, *window)
            if loud:
                total = sum(e - s for s, e in loud)
                return Outcome(
                    exp, False, f"model audible during {what}: from {loud[0][0]:.2f} s, {total:.2f} s in all", window
                )
            return Outcome(exp, True, f"model silent during {what}", window)
        case _:
            return _aggregate(exp, tl)


def _speaking_started(exp: Expectation, tl: Timeline, index: int, within: float) -> Outcome:
    clip = tl.clip(index)
    window = (clip.end, clip.end + within)
    latency = tl.turn_latency(clip)
    if latency is None:
        return Outcome(exp, False, f"model never started speaking after clip {index} ended", window)
    if latency > within:
        return Outcome(
            exp,
            False,
            f"model started {latency:.2f} s after clip {index} ended "
            f"(limit {within:.2f} s, over by {latency - within:.2f} s)",
            window,
        )
    return Outcome(exp, True, f"model started {latency:.2f} s after clip {index} ended", window)


def _silent(exp: Expectation, tl: Timeline, index: int, within: float) -> Outcome:
    clip = tl.clip(index)
    window = (clip.start + within, max(clip.end, clip.start + within))
    loud = _audible_in(tl.model_audio, *window)
    if loud:
        until = loud[-1][1] - clip.start
        return Outcome(
            exp,
            False,
            f"model still audible {until:.2f} s after clip {index} started "
            f"(limit {within:.2f} s, over by {until - within:.2f} s)",
            window,
        )
    latency = tl.stop_latency(clip)
    note = f"silent {latency:.2f} s after clip {index} started" if latency is not None else "model was not speaking"
    return Outcome(exp, True, note, window)


def _aggregate(exp: Expectation, tl: Timeline) -> Outcome:
    limit = exp.params["max"]
    if exp.check is Check.TURN_LATENCY:
        turns = [c for c in tl.clips if c.role is Role.TURN]
        worst, missed = 0.0, []
        for c in turns:
            lat = tl.turn_latency(c)
            if lat is None:
                missed.append(c.index)
            else:
                worst = max(worst, lat)
        if missed:
            return Outcome(exp, False, f"no reply after clip(s) {', '.join(map(str, missed[:10]))}")
        if worst > limit:
            return Outcome(
                exp, False, f"slowest reply {worst:.2f} s (limit {limit:.2f} s, over by {worst - limit:.2f} s)"
            )
        return Outcome(exp, True, f"all {len(turns)} turns answered, slowest {worst:.2f} s")
    if exp.check is Check.STOP_LATENCY:
        cuts = [c for c in tl.clips if c.role is Role.BARGE_IN]
        lats = [(c.index, tl.stop_latency(c)) for c in cuts]
        worst = max((lat for _, lat in lats if lat is not None), default=0.0)
        if worst > limit:
            return Outcome(
                exp, False, f"slowest stop {worst:.2f} s (limit {limit:.2f} s, over by {worst - limit:.2f} s)"
            )
        return Outcome(exp, True, f"{len(cuts)} barge-ins, slowest stop {worst:.2f} s")
    if exp.check is Check.FALSE_STARTS:
        starts = [(s, f.clips[0]) for s, f in tl.false_starts()]
        return _counted(exp, "false_starts", starts, limit, "model onsets",
                        f"over {len(tl.floors())} user turn(s)")
    if exp.check is Check.RESUMES_OVER_BARGE_IN:
        cuts = [c for c in tl.clips if c.role is Role.BARGE_IN and c.start != float("inf")]
        found = [(s, c.index) for c in cuts for s in tl.resumes(c)]
        return _counted(exp, "resumes_over_barge_in", found, limit, "model came back",
                        f"over {len(cuts)} barge-in(s)")
    if exp.check is Check.OVERLAP:
        cuts = [c for c in tl.clips if c.role is Role.BARGE_IN and c.start != float("inf")]
        worst = max(((tl.overlap(c), c.index) for c in cuts), default=(0.0, 0))
        if worst[0] > limit:
            return Outcome(exp, False, f"model audible {worst[0]:.2f} s over barge-in clip {worst[1]} "
                           f"(limit {limit:.2f} s, over by {worst[0] - limit:.2f} s)")
        return Outcome(exp, True, f"{len(cuts)} barge-ins, most overlap {worst[0]:.2f} s")
    key = {Check.FALSE_BARGE_INS: "false_barge_ins", Check.TAKEOVERS: "takeovers", Check.OVERRUNS: "overruns"}[
        exp.check
    ]
    value = event_metrics(tl)[key]
    if value > limit:
        return Outcome(exp, False, _over(key, value, limit))
    return Outcome(exp, True, f"{key} = {value}")


def _counted(exp: Expectation, key: str, found: list[tuple[float, int]], limit: float, what: str,
             context: str) -> Outcome:
    """A count of timed findings against its limit; over it, say where (the first five, with clips)."""
    if len(found) > limit:
        where = ", ".join(f"{t:.2f} s (clip {clip})" for t, clip in found[:5])
        return Outcome(exp, False, f"{_over(key, len(found), limit)}: {what} at {where}")
    return Outcome(exp, True, f"{key} = {len(found)} {context}")


def _over(key: str, value: float, limit: float) -> str:
    return f"{key} = {value} (limit {limit:g}, over by {value - limit:g})"


def _audible_in(audio: np.ndarray, t0: float, t1: float) -> list[tuple[float, float]]:
    lo = max(0, round(t0 * SAMPLE_RATE))
    hi = min(audio.size, round(t1 * SAMPLE_RATE)) if t1 != float("inf") else audio.size
    if hi <= lo:
        return []
    return [(t0 + s, t0 + e) for s, e in audible_spans(audio[lo:hi])]
