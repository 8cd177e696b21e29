"""Full-Duplex-Bench v1 / v1.5 metrics (`fdb_*`), computed without hub models.

The benchmark (github.com/DanielLin94144/Full-Duplex-Bench, `v1_v1.5/evaluation/`) judges a
model's output from ASR word timestamps. Here Silero VAD speech segments (its packaged ONNX model,
`get_speech_timestamps` defaults: threshold 0.5, 250 ms minimum speech, 100 ms minimum silence,
30 ms padding) stand in for the words, so one segment counts as one "word"; every other threshold
is the benchmark's:

- took the turn: no words -> 0; words spanning < 1 s and <= 3 words -> 0; otherwise 1
  (`eval_pause_handling.py`, `eval_smooth_turn_taking.py`, `eval_user_interruption.py`);
- pause handling TOR: over the user's utterance with its pauses (the benchmark's input ends
  with the utterance); smooth turn-taking TOR and latency: the model's output from the turn's
  start to the next user clip, latency = first word - user end, clamped at 0, averaged over the
  turns taken; user interruption TOR and latency: the output after the interruption ends (the
  benchmark crops there before ASR);
- backchannel TOR / frequency (`eval_backchannel.py`, on a monologue): a segment over 3 s takes
  the turn; otherwise each segment's verdict (>= 1 s or > 2 words) overwrites the last, as in the
  benchmark's loop; frequency = short segments per second. The JSD needs the benchmark's ICC
  ground truth and is not computed;
- v1.5 stop and response latency (`get_timing.py`): user segments merged across gaps <= 0.6 s,
  model segments across <= 0.5 s; stop latency = the overlap of the model with the barge-in,
  response latency = barge-in end -> the next model segment.

These rules ignore model speech under 1 s, so aborted false starts disappear here; the strict
metrics in `duplex.scenario.metrics` keep them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audio_io.format import SAMPLE_RATE
from duplex.errors import ConfigError
from duplex.scenario.spec import Role

if TYPE_CHECKING:
    from audio_io.vad import SileroVad
    from duplex.scenario.metrics import Timeline

Span = tuple[float, float]
WINDOW = 512  # Silero's window at 16 kHz
TURN_DURATION_S = 1.0
TURN_WORDS = 3
BACKCHANNEL_TURN_S = 3.0
USER_MERGE_GAP_S = 0.6
MODEL_MERGE_GAP_S = 0.5


@functools.cache
def _silero() -> SileroVad:
    from audio_io.vad import SileroVad

    return SileroVad()


def speech_probs(audio: np.ndarray) -> np.ndarray:
    """Silero's speech probability for every 32 ms window (the last one zero-padded)."""
    vad = _silero()
    vad.reset()
    n = -(-audio.size // WINDOW)
    padded = np.zeros(n * WINDOW, dtype=np.float32)
    padded[: audio.size] = audio
    return np.array([vad.speech_prob(padded[i * WINDOW : (i + 1) * WINDOW]) for i in range(n)], dtype=np.float32)


def speech_timestamps(probs: Sequence[float], n_samples: int, *, threshold: float = 0.5,
                      min_speech_ms: int = 250, min_silence_ms: int = 100, pad_ms: int = 30) -> list[Span]:
    """Silero's segmentation of per-window probabilities into speech spans (seconds).

    Hysteresis: speech starts at >= threshold and ends after `min_silence_ms` below threshold - 0.15;
    spans shorter than `min_speech_ms` are dropped, the rest padded by `pad_ms` (half the gap when
    two spans are closer than twice the pad).
    """
    neg = threshold - 0.15
    min_speech = SAMPLE_RATE * min_speech_ms / 1000
    min_silence = SAMPLE_RATE * min_silence_ms / 1000
    pad = round(SAMPLE_RATE * pad_ms / 1000)
    spans: list[list[int]] = []
    start = temp_end = 0
    triggered = False
    for i, p in enumerate(probs):
        at = i * WINDOW
        if p >= threshold and temp_end:
            temp_end = 0
        if p >= threshold and not triggered:
            triggered, start = True, at
            continue
        if p < neg and triggered:
            if not temp_end:
                temp_end = at
            if at - temp_end < min_silence:
                continue
            if temp_end - start > min_speech:
                spans.append([start, temp_end])
            triggered, temp_end = False, 0
    if triggered and n_samples - start > min_speech:
        spans.append([start, n_samples])
    for i, span in enumerate(spans):
        if i == 0:
            span[0] = max(0, span[0] - pad)
        if i + 1 < len(spans):
            gap = spans[i + 1][0] - span[1]
            if gap < 2 * pad:
                span[1] += gap // 2
                spans[i + 1][0] = max(0, spans[i + 1][0] - gap // 2)
            else:
                span[1] = min(n_samples, span[1] + pad)
                spans[i + 1][0] = max(0, spans[i + 1][0] - pad)
        else:
            span[1] = min(n_samples, span[1] + pad)
    return [(s / SAMPLE_RATE, e / SAMPLE_RATE) for s, e in spans]


class VadTrack:
    """Silero's probabilities for a whole track, computed once; segments of any stretch of it.

    A stretch is segmented on its own (as the benchmark crops before ASR), from the probabilities
    of the windows inside it (the network's state carries over from before the crop: a negligible
    difference that saves running it again per item).
    """

    def __init__(self, audio: np.ndarray) -> None:
        self.n = audio.size
        self.probs = speech_probs(audio) if audio.size >= WINDOW else np.zeros(0, dtype=np.float32)

    def segments(self, t0: float = 0.0, t1: float = float("inf")) -> list[Span]:
        lo = max(0, -(-round(t0 * SAMPLE_RATE) // WINDOW))
        hi = self.probs.size if t1 == float("inf") else min(self.probs.size, round(t1 * SAMPLE_RATE) // WINDOW)
        if hi <= lo:
            return []
        offset = lo * WINDOW / SAMPLE_RATE
        n = min((hi - lo) * WINDOW, self.n - lo * WINDOW)
        return [(offset + s, offset + e) for s, e in speech_timestamps(self.probs[lo:hi], n)]


def took_turn(words: Sequence[Span]) -> bool:
    """The benchmark's TOR rule for one item."""
    if not words:
        return False
    return words[-1][1] - words[0][0] >= TURN_DURATION_S or len(words) > TURN_WORDS


def backchannel_verdict(segments: Sequence[Span]) -> tuple[bool, int]:
    """(took the turn, number of backchannel segments) as `eval_backchannel.py` decides them."""
    tor, count = False, 0
    for s, e in segments:
        if e - s > BACKCHANNEL_TURN_S:
            return True, count
        words = [w for w in segments if w[0] < e and w[1] > s]  # segments stand in for words
        tor = len(words) > 2 or (e - s) >= 1.0  # > 3 words, or >= 1 s, or < 1 s with > 2 words
        count += 1
    return tor, count


def merge(spans: Sequence[Span], gap: float) -> list[Span]:
    out: list[Span] = []
    for s, e in sorted(spans):
        if out and s - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def stop_and_response(user: Sequence[Span], model: Sequence[Span], clip: Span) -> tuple[float | None, float | None]:
    """v1.5 timing for one barge-in: overlap of the model with the user's (merged) segment, and the
    gap from that segment's end to the next model start."""
    mine = [u for u in user if u[1] > clip[0] and u[0] < clip[1]]
    if not mine:
        return None, None
    us, ue = mine[0][0], mine[-1][1]
    stop = next((min(ue, me) - max(us, ms) for ms, me in model if min(ue, me) > max(us, ms)), None)
    response = next((ms - ue for ms, _ in model if ms > ue), None)
    return (None if stop is None else round(stop, 3)), (None if response is None else round(response, 3))


def _mean(xs: Sequence[float]) -> float | None:
    return round(float(np.mean(xs)), 3) if xs else None


def fdb_items(tl: Timeline) -> dict[str, list[float]]:
    """Per-item values of every fdb_* metric (the eval tool pools them across conversations)."""
    model = VadTrack(tl.model_audio)
    items: dict[str, list[float]] = {k: [] for k in (
        "pause_tor", "turn_tor", "turn_latency_s", "interrupt_tor", "interrupt_latency_s",
        "backchannel_tor", "backchannel_freq", "stop_latency_s", "response_latency_s")}
    for f in tl.floors():
        if f.pauses:
            items["pause_tor"].append(float(took_turn(model.segments(f.start, f.end))))
        words = model.segments(f.start, tl.next_start(f, answering=True))
        items["turn_tor"].append(float(took_turn(words)))
        if took_turn(words):
            items["turn_latency_s"].append(round(max(0.0, words[0][0] - f.end), 3))
        if tl.clip(f.clips[0]).role is Role.MONOLOGUE:
            tor, count = backchannel_verdict(model.segments(f.start, f.end))
            items["backchannel_tor"].append(float(tor))
            items["backchannel_freq"].append(round(count / max(f.end - f.start, 1e-9), 4))
    cuts = [c for c in tl.clips if c.role is Role.BARGE_IN and c.start != float("inf")]
    if cuts:
        user = merge(VadTrack(tl.user_audio).segments(), USER_MERGE_GAP_S) if tl.user_audio is not None else []
        merged = merge(model.segments(), MODEL_MERGE_GAP_S)
        for c in cuts:
            words = model.segments(c.end, tl.next_start(c, answering=True))
            items["interrupt_tor"].append(float(took_turn(words)))
            if took_turn(words):
                items["interrupt_latency_s"].append(round(max(0.0, words[0][0] - c.end), 3))
            stop, response = stop_and_response(user, merged, (c.start, c.end))
            if stop is not None:
                items["stop_latency_s"].append(stop)
            if response is not None:
                items["response_latency_s"].append(response)
    return items


def fdb_metrics(tl: Timeline) -> dict[str, Any]:
    """Means of the per-item values as `fdb_*` keys (None where the scenario has no such item)."""
    try:
        items = fdb_items(tl)
    except (ImportError, ConfigError):
        return {"fdb_unavailable": "Silero VAD is not installed: pip install 'duplex[silero]'"}
    out: dict[str, Any] = {f"fdb_{k}": _mean(v) for k, v in items.items()}
    out["fdb_items"] = items
    return out
