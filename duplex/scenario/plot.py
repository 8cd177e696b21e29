"""One PNG timeline per scenario: what the user said, what the model said, and why it failed.

Rows, top to bottom: the microphone (clips, noise and echo) and the model's output as level
envelopes in dBFS with the clips marked; controller states as coloured bands; control tokens as
markers; each expectation's window shaded green (held) or red (failed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audio_io.levels import WINDOW_S, envelope
from duplex.events import Control, StateChanged
from duplex.scenario.runner import ScenarioResult

STATE_COLOURS = {"IDLE": "#bbbbbb", "LISTENING": "#8ecae6", "SPEAKING": "#ffb703", "DRAINING": "#fb8500",
                 "DEGRADED": "#d62828"}
TOKEN_COLOURS = {"SHIFT": "#2a9d8f", "BREAK": "#d62828", "EOT": "#6c757d"}


def _db(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    env = envelope(audio)
    return np.arange(env.size) * WINDOW_S, 20 * np.log10(np.maximum(env, 1e-5))


def plot_result(result: ScenarioResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = result.timeline
    if tl is None or result.mic_audio is None:
        return
    end = max(result.mic_audio.size, tl.model_audio.size) / 16_000
    fig, axes = plt.subplots(4, 1, figsize=(14, 7.5), sharex=True,
                             gridspec_kw={"height_ratios": [3, 3, 0.8, 1.6]})
    mic_ax, model_ax, state_ax, exp_ax = axes
    verdict = "PASS" if result.passed else "FAIL"
    fig.suptitle(f"{result.name}  [{verdict}]  ({result.file.name})", color="green" if result.passed else "red")

    for ax, audio, label, colour in ((mic_ax, result.mic_audio, "microphone dBFS", "#1d3557"),
                                     (model_ax, tl.model_audio, "model output dBFS", "#e76f51")):
        t, db = _db(audio)
        ax.fill_between(t, -100, db, color=colour, alpha=0.7, linewidth=0)
        ax.axhline(-50, color="k", linestyle=":", linewidth=0.8)
        ax.set_ylim(-80, 0)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for clip in tl.clips:
        if np.isfinite(clip.start):
            mic_ax.axvspan(clip.start, clip.end, color="#a8dadc", alpha=0.4)
            mic_ax.text(clip.start, -5, f"{clip.index} {clip.role.value}", fontsize=8, va="top")

    states = [(e.t, e.dst.value) for e in tl.events if isinstance(e, StateChanged)]
    for (t0, state), (t1, _) in zip(states, [*states[1:], (end, "")], strict=True):
        state_ax.axvspan(t0, t1, color=STATE_COLOURS.get(state, "#ffffff"))
        if t1 - t0 > end / 60:
            state_ax.text((t0 + t1) / 2, 0.5, state, ha="center", va="center", fontsize=7)
    state_ax.set_yticks([])
    state_ax.set_ylabel("state")

    for e in tl.events:
        if isinstance(e, Control):
            colour = TOKEN_COLOURS.get(e.token.value, "k")
            for ax in (model_ax, state_ax):
                ax.axvline(e.t, color=colour, linewidth=1.2)
            model_ax.text(e.t, -8, e.token.value, color=colour, fontsize=8, rotation=90, va="top")

    for row, outcome in enumerate(result.outcomes):
        colour = "#2a9d8f" if outcome.passed else "#d62828"
        if outcome.window is None:  # a whole-session check: a label only
            exp_ax.text(end / 200, row, f"{outcome.expectation.describe()}: {outcome.message}", va="center",
                        fontsize=7, color=colour)
            continue
        t0, t1 = outcome.window
        t1 = min(t1, end)
        exp_ax.barh(row, max(t1 - t0, end / 300), left=t0, color="#2a9d8f" if outcome.passed else "#d62828",
                    alpha=0.8)
        exp_ax.text(max(t1, t0) + end / 200, row, outcome.expectation.describe(), va="center", fontsize=7)
        for ax in (mic_ax, model_ax):
            ax.axvspan(t0, t1, color="#2a9d8f" if outcome.passed else "#d62828", alpha=0.08)
    exp_ax.set_yticks([])
    exp_ax.set_ylim(-0.8, max(len(result.outcomes), 1) - 0.2)
    exp_ax.invert_yaxis()
    exp_ax.set_ylabel("expectations")
    exp_ax.set_xlabel("session time (s)")
    exp_ax.set_xlim(0, end)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
