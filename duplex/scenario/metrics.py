"""Duplex metrics from ground truth (clip times from the script) and what the speaker played.

Names follow Full-Duplex-Bench where they overlap (turn-taking latency, interruption stop latency,
takeover rate, backchannel handling). "Audible" is `audio_io.levels`' definition (20 ms RMS above
-50 dBFS); model speech spans are merged across gaps shorter than 0.2 s (gaps inside a reply are
not the model stopping).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from audio_io.levels import audible_spans
from duplex.events import Event, EventType
from duplex.scenario.spec import Role

MERGE_GAP_S = 0.2
BARGE_IN_GRACE_S = 0.5  # a BREAK this soon after a clip ends still answers that clip


@dataclass(frozen=True, slots=True)
class ClipTruth:
    """Where a user clip's speech really was on the session clock."""

    index: int
    role: Role
    start: float  # first audible sample of the clip
    end: float  # last audible sample of the clip
    placed_at: float  # where the clip (with its leading silence) was placed

    def covers(self, t: float, grace: float = 0.0) -> bool:
        return self.start <= t <= self.end + grace


@dataclass(frozen=True, slots=True)
class Timeline:
    """Everything a check or a metric needs, computed once per run."""

    clips: Sequence[ClipTruth]
    model_spans: Sequence[tuple[float, float]]  # merged audible spans of the speaker
    model_audio: np.ndarray
    breaks: Sequence[float]  # times of BREAK tokens
    events: Sequence[Event]
    summary: dict[str, Any]

    @classmethod
    def build(cls, clips: Sequence[ClipTruth], model_audio: np.ndarray, events: Sequence[Event],
              summary: dict[str, Any]) -> Timeline:
        breaks = [e.t for e in events if e.type is EventType.CONTROL and e.data.get("token") == "BREAK"]
        spans = audible_spans(model_audio, merge_gap_s=MERGE_GAP_S)
        return cls(clips, spans, model_audio, breaks, events, summary)

    def clip(self, index: int) -> ClipTruth:
        return self.clips[index - 1]

    def next_start(self, clip: ClipTruth) -> float:
        """When the next user clip starts (or the session ends): the window for a reply."""
        later = [c.start for c in self.clips if c.start > clip.end]
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


def compute_metrics(tl: Timeline) -> dict[str, Any]:
    turns = [c for c in tl.clips if c.role is Role.TURN]
    cuts = [c for c in tl.clips if c.role is Role.BARGE_IN]
    backchannels = [c for c in tl.clips if c.role is Role.BACKCHANNEL]
    turn_latency = [lat for c in turns if (lat := tl.turn_latency(c)) is not None]
    stop_latency = [lat for c in tl.clips if c.role is not Role.BACKCHANNEL
                    and (lat := tl.stop_latency(c)) is not None]
    answering = [c for c in tl.clips if c.role is not Role.BACKCHANNEL]
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
