"""Duplex metrics from ground truth (clip times from the script) and what the speaker played.

Two families, never mixed under one name (docs/metrics.md):

- **strict** metrics say what a user hears. The onset detector: 20 ms frames, audible when the
  RMS is above -50 dBFS (`audio_io.levels`); inaudible gaps shorter than 0.1 s stay inside one
  segment (stop closures inside a word), and a segment counts once it holds >= 60 ms of audible
  frames (shorter ones are clicks). Its start is an *onset*. A model that goes quiet for 0.1 s
  and comes back has made a new onset: nothing longer is merged away, so a resume inside a
  barge-in stays visible. `false_starts`, `resumes_over_barge_in`, `overlap_s`, turn latency
  median/p90 and continuation over backchannels and noises are built on it.
- **`fdb_*`** metrics follow Full-Duplex-Bench v1/v1.5 (`duplex.scenario.fdb`), which ignore
  model speech under 1 s and so hide aborted false starts.

The older event-level figures (`turn_latency_s`, `stop_latency_s`, `takeovers`, ...) stay for the
existing expectations; their spans merge gaps under 0.2 s.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audio_io.levels import audible_spans
from duplex.events import Event, EventType
from duplex.scenario.spec import Role

MERGE_GAP_S = 0.2
BARGE_IN_GRACE_S = 0.5  # a BREAK this soon after a clip ends still answers that clip

BRIDGE_S = 0.1  # strict: inaudible gaps shorter than this stay inside one segment
MIN_ONSET_S = 0.06  # strict: audible frames a segment needs to count as an onset
CONTINUE_WINDOW_S = 0.5  # strict: the reply must be audible again this soon after a backchannel ends
# strict: no backbone can have reacted to the user sooner: the 160 ms chunk in which they start may hold
# too little speech to hear, the next one does, and the output changes from the step after it
REACTION_S = 0.32
INNER_PAUSE_S = 0.3  # a silence this long inside a clip is a pause (the clip is a "turn with pauses")

FLOOR_ROLES = (Role.TURN, Role.MONOLOGUE)
GOES_ON_ROLES = (Role.BACKCHANNEL, Role.NOISE)


def speech_segments(audio: np.ndarray) -> list[tuple[float, float]]:
    """The strict detector: audible segments (gaps < BRIDGE_S bridged) with >= MIN_ONSET_S audible."""
    out: list[tuple[float, float, float]] = []  # start, end, audible seconds
    for s, e in audible_spans(audio):
        if out and s - out[-1][1] < BRIDGE_S - 1e-9:
            out[-1] = (out[-1][0], e, out[-1][2] + e - s)
        else:
            out.append((s, e, e - s))
    return [(s, e) for s, e, loud in out if loud >= MIN_ONSET_S - 1e-9]


@dataclass(frozen=True, slots=True)
class ClipTruth:
    """Where a user clip's speech really was on the session clock."""

    index: int
    role: Role
    start: float  # first audible sample of the clip
    end: float  # last audible sample of the clip
    placed_at: float  # where the clip (with its leading silence) was placed
    pauses: tuple[tuple[float, float], ...] = ()  # inner silences >= INNER_PAUSE_S, session clock

    def covers(self, t: float, grace: float = 0.0) -> bool:
        return self.start <= t <= self.end + grace


@dataclass(frozen=True, slots=True)
class Floor:
    """A stretch where the user holds the floor: one turn clip, or a run of monologue clips."""

    start: float
    end: float
    clips: tuple[int, ...]
    pauses: tuple[tuple[float, float], ...]  # inner pauses and monologue gaps


@dataclass(frozen=True, slots=True)
class Timeline:
    """Everything a check or a metric needs, computed once per run."""

    clips: Sequence[ClipTruth]
    model_spans: Sequence[tuple[float, float]]  # merged audible spans of the speaker (0.2 s gaps)
    model_audio: np.ndarray
    breaks: Sequence[float]  # times of BREAK tokens
    events: Sequence[Event]
    summary: dict[str, Any]
    segments: Sequence[tuple[float, float]] = ()  # strict segments of the speaker (onset detector)
    user_audio: np.ndarray | None = None  # the clean user track (clips only), for fdb_* metrics
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, clips: Sequence[ClipTruth], model_audio: np.ndarray, events: Sequence[Event],
              summary: dict[str, Any], user_audio: np.ndarray | None = None) -> Timeline:
        breaks = [e.t for e in events if e.type is EventType.CONTROL and e.data.get("token") == "BREAK"]
        spans = audible_spans(model_audio, merge_gap_s=MERGE_GAP_S)
        return cls(clips, spans, model_audio, breaks, events, summary, speech_segments(model_audio), user_audio)

    def clip(self, index: int) -> ClipTruth:
        return self.clips[index - 1]

    def next_start(self, clip: ClipTruth | Floor, *, answering: bool = False) -> float:
        """When the next user clip starts (or the session ends): the window for a reply.

        With `answering`, backchannels and noises do not close the window (the reply goes on).
        """
        later = [c.start for c in self.clips if c.start > clip.end and not (answering and c.role in GOES_ON_ROLES)]
        return min(later, default=float("inf"))

    def onset_after(self, t: float, before: float = float("inf")) -> float | None:
        """First model speech onset in (t, before)."""
        for start, _ in self.model_spans:
            if t < start < before:
                return start
        return None

    def span_at(self, t: float) -> tuple[float, float] | None:
        for span in self.model_spans:
            if span[0] <= t < span[1]:
                return span
        return None

    def turn_latency(self, clip: ClipTruth) -> float | None:
        onset = self.onset_after(clip.end, self.next_start(clip))
        return None if onset is None else onset - clip.end

    def stop_latency(self, clip: ClipTruth) -> float | None:
        """Clip start -> model silent, for a clip that starts while the model is audible."""
        span = self.span_at(clip.start)
        return None if span is None else span[1] - clip.start

    def talked_over(self, clip: ClipTruth) -> bool:
        """The model started speaking while this clip was being spoken."""
        return any(clip.start < start < clip.end for start, _ in self.model_spans)

    # --- strict -------------------------------------------------------------------------------

    def floors(self) -> list[Floor]:
        """Turn clips, and runs of consecutive monologue clips, as the stretches the user holds."""
        out: list[Floor] = []
        played = sorted((c for c in self.clips if c.start != float("inf")), key=lambda c: c.start)
        run: list[ClipTruth] = []

        def close() -> None:
            if run:
                gaps = tuple((a.end, b.start) for a, b in zip(run, run[1:], strict=False) if b.start > a.end)
                pauses = tuple(p for c in run for p in c.pauses) + gaps
                out.append(Floor(run[0].start, run[-1].end, tuple(c.index for c in run), tuple(sorted(pauses))))
                run.clear()

        for c in played:
            if c.role is Role.MONOLOGUE:
                run.append(c)
                continue
            if c.role is Role.TURN:
                close()
                run.append(c)
                close()
            elif c.role is Role.BARGE_IN:
                close()  # a barge-in ends a monologue run; backchannels and noises do not
        close()
        return out

    def false_starts(self) -> list[tuple[float, Floor]]:
        """Onsets (segment starts) strictly inside a floor."""
        return [(s, f) for f in self.floors() for s, _ in self.segments if f.start < s < f.end]

    def strict_turn_latency(self, floor: Floor) -> float | None:
        """Floor end -> first audible model sample (0 when the model is already speaking)."""
        limit = self.next_start(floor, answering=True)
        for s, e in self.segments:
            if e > floor.end and s < limit:
                return max(0.0, s - floor.end)
        return None

    def overlap(self, clip: ClipTruth) -> float:
        """Seconds of audible model frames (20 ms) inside the clip's utterance."""
        return sum(max(0.0, min(e, clip.end) - max(s, clip.start)) for s, e in audible_spans(self.model_audio)
                   if e > clip.start and s < clip.end)

    def resumes(self, clip: ClipTruth) -> list[float]:
        """Onsets inside a barge-in utterance after the model went quiet for it.

        The model goes quiet for the barge-in at the end of the segment it is speaking when the
        user starts, or of one it starts within `REACTION_S` of that (a reply caught between two
        words goes on with the next before any backbone can have heard the user: that is talking
        over the user, counted in `overlap_s`, not coming back after having stopped)."""
        quiet = clip.start
        for s, e in self.segments:
            if e > clip.start and s < clip.start + REACTION_S:
                quiet = max(quiet, e)
        return [s for s, _ in self.segments if quiet < s < clip.end]

    def over_reply(self, clip: ClipTruth) -> bool:
        """Did the clip begin over the reply? The model was audible as it began, or had gone quiet
        for an earlier backchannel or noise over the reply and not come back yet (a held reply: a
        second "yeah" while the reply waits out the first is over the reply as much as the first)."""
        if any(s <= clip.start < e + BRIDGE_S for s, e in self.segments):
            return True
        quiet = max((e for _, e in self.segments if e <= clip.start), default=None)
        return quiet is not None and any(
            other.role in GOES_ON_ROLES and other.start < clip.start
            and other.start <= quiet <= other.end + REACTION_S and self.over_reply(other)
            for other in self.clips)

    def ended_by(self, clip: ClipTruth) -> bool | None:
        """For a backchannel/noise that begins over the reply (`over_reply`): did a BREAK for it end
        the reply? (None when there was no reply to end.) Unlike `continued`, a reply that goes
        quiet for a while and then goes on has not been ended."""
        if not self.over_reply(clip):
            return None
        return any(clip.covers(t, BARGE_IN_GRACE_S) for t in self.breaks)

    def continued(self, clip: ClipTruth) -> bool | None:
        """For a backchannel/noise over the reply: no BREAK for it and the reply audible right after.

        None when there was no reply to continue (`over_reply`).
        """
        ended = self.ended_by(clip)
        if ended is None:
            return None
        if ended:
            return False
        lo, hi = clip.end, clip.end + CONTINUE_WINDOW_S
        return any(s < hi and e > lo for s, e in self.segments)


def _pct(xs: Sequence[float], q: float) -> float | None:
    if not xs:
        return None
    return round(float(np.percentile(np.asarray(xs), q, method="linear")), 3)


def strict_metrics(tl: Timeline) -> dict[str, Any]:
    floors = tl.floors()
    starts = tl.false_starts()
    cuts = [c for c in tl.clips if c.role is Role.BARGE_IN and c.start != float("inf")]
    latencies = [lat for f in floors if (lat := tl.strict_turn_latency(f)) is not None]
    overlaps = [round(tl.overlap(c), 3) for c in cuts]
    resumes = [s for c in cuts for s in tl.resumes(c)]
    goes_on = {role: [v for c in tl.clips if c.role is role and (v := tl.continued(c)) is not None]
               for role in GOES_ON_ROLES}
    ended = {role: [v for c in tl.clips if c.role is role and (v := tl.ended_by(c)) is not None]
             for role in GOES_ON_ROLES}
    with_pauses = [f for f in floors if f.pauses]
    return {
        "false_starts": len(starts),
        "false_start_at_s": [round(s, 2) for s, _ in starts],
        "floors": len(floors),
        "floors_with_pauses": len(with_pauses),
        "floors_with_false_start": len({f.start for _, f in starts}),
        "paused_floors_with_false_start": len({f.start for _, f in starts if f.pauses}),
        "turns_answered": len(latencies),
        "strict_turn_latency_s": [round(x, 3) for x in latencies],
        "turn_latency_median_s": round(statistics.median(latencies), 3) if latencies else None,
        "turn_latency_p90_s": _pct(latencies, 90),
        "resumes_over_barge_in": len(resumes),
        "resume_at_s": [round(s, 2) for s in resumes],
        "barge_ins_with_resume": sum(bool(tl.resumes(c)) for c in cuts),
        "overlap_s": overlaps,
        "overlap_mean_s": round(float(np.mean(overlaps)), 3) if overlaps else None,
        "continued_over_backchannel": sum(goes_on[Role.BACKCHANNEL]),
        "backchannels_over_reply": len(goes_on[Role.BACKCHANNEL]),
        "continued_over_noise": sum(goes_on[Role.NOISE]),
        "noises_over_reply": len(goes_on[Role.NOISE]),
        "replies_ended_by_backchannel": sum(ended[Role.BACKCHANNEL]),
        "replies_ended_by_noise": sum(ended[Role.NOISE]),
        "unprompted_breaks": sum(not any(c.covers(t, BARGE_IN_GRACE_S) for c in tl.clips) for t in tl.breaks),
    }


def event_metrics(tl: Timeline) -> dict[str, Any]:
    """The older figures (spans merged across 0.2 s gaps, BREAK tokens), cheap to compute."""
    turns = [c for c in tl.clips if c.role is Role.TURN]
    cuts = [c for c in tl.clips if c.role is Role.BARGE_IN]
    backchannels = [c for c in tl.clips if c.role is Role.BACKCHANNEL]
    turn_latency = [lat for c in turns if (lat := tl.turn_latency(c)) is not None]
    stop_latency = [lat for c in tl.clips if c.role not in GOES_ON_ROLES
                    and (lat := tl.stop_latency(c)) is not None]
    answering = [c for c in tl.clips if c.role not in GOES_ON_ROLES]
    false_breaks = [t for t in tl.breaks if not any(c.covers(t, BARGE_IN_GRACE_S) for c in answering)]
    overlapped_bc = [c for c in backchannels if tl.span_at(c.start) is not None]
    bc_stopped = [c for c in overlapped_bc if any(c.covers(t, BARGE_IN_GRACE_S) for t in tl.breaks)]
    takeovers = [c for c in answering if tl.talked_over(c)]
    return {
        "turn_latency_s": [round(x, 3) for x in turn_latency],
        "turns_taken": len(turn_latency),
        "turns": len(turns),
        "stop_latency_s": [round(x, 3) for x in stop_latency],
        "barge_ins": len(tl.breaks),
        "barge_in_clips": len(cuts),
        "false_barge_ins": len(false_breaks),
        "takeovers": len(takeovers),
        "takeover_rate": round(sum(tl.talked_over(c) for c in turns) / len(turns), 3) if turns else 0.0,
        "backchannels": len(backchannels),
        "backchannel_stop_rate": round(len(bc_stopped) / len(overlapped_bc), 3) if overlapped_bc else 0.0,
        "model_speech_s": round(sum(e - s for s, e in tl.model_spans), 2),
        "step_ms_p50": tl.summary.get("step_ms_p50", 0.0),
        "step_ms_p99": tl.summary.get("step_ms_p99", 0.0),
        "overruns": tl.summary.get("overruns", 0),
        "realtime_factor": tl.summary.get("realtime_factor", 0.0),
    }


def compute_metrics(tl: Timeline) -> dict[str, Any]:
    """Everything a report carries: the event figures, the strict family and the fdb_* family."""
    out = event_metrics(tl)
    out.update(strict_metrics(tl))
    if tl.user_audio is not None:
        from duplex.scenario.fdb import fdb_metrics

        out.update(fdb_metrics(tl))
    return out
