"""The live terminal UI (rich) and the session metrics it shows, plus the plain-text fallback.

`SessionMetrics` folds the engine's events and the devices' counters into what a person wants to
see: who has the floor, turn and stop latencies, barge-ins, device health. `LiveView` draws it a
few times a second from the event loop (drawing reads plain attributes; the audio threads never
wait for it) and turns keys into session commands (`duplex.commands`): m mute/unmute, s stop the model, r reset,
q quit. `PlainView` prints the timeline line by line when there is no terminal (or --no-tui).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import termios
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from duplex.commands import Command, Mute, Reset, Stop, StopSpeaking, Unmute
from duplex.events import (
    CommandApplied,
    Control,
    Device,
    Error,
    Event,
    Hold,
    Mic,
    Overrun,
    Speaker,
    StateChanged,
    Subscription,
)
from duplex.events import Text as TextEvent
from duplex.stats import DeviceStats, SessionStats
from duplex.timeline import describe
from duplex.tokens import Kind

if TYPE_CHECKING:
    from audio_io.live_input import LiveInput
    from audio_io.live_output import LiveOutput

KEYS: dict[str, Command] = {"s": StopSpeaking(), " ": StopSpeaking(), "r": Reset(), "q": Stop()}
"""The UI's keys (m toggles Mute / Unmute)."""


class HasStats(Protocol):
    def stats(self) -> SessionStats: ...

PHASE_STYLE = {"IDLE": "grey50", "LISTENING": "bold green", "SPEAKING": "bold magenta",
               "DRAINING": "bold blue", "DEGRADED": "bold red"}
RECENT_SPEECH_S = 3.0  # a user utterance this recent explains a model turn (turn latency)
REPLYING = ("SPEAKING", "DRAINING")  # phases in which the model's reply is under way


@dataclass
class SessionMetrics:
    """Everything the UI and the exit summary show; updated from events, read by the views."""

    mic: LiveInput
    speaker: LiveOutput
    session: HasStats
    aec: str = "none"
    guard_s: float = 0.0
    phase: str = "IDLE"
    turns: int = 0
    barge_ins: int = 0
    errors: list[str] = field(default_factory=list)
    turn_latency_s: list[float] = field(default_factory=list)
    stop_latency_s: list[float] = field(default_factory=list)
    timeline: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    transcript: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    mic_open: bool = True
    lines_total: int = 0  # timeline lines ever added (the deque keeps the last 200)
    device_events: int = 0  # device lost / recovered events
    audible: bool = False
    _silent_at: float = -1.0
    _cut_from: float | None = None  # start of the user's speech that cut the model off
    _held = False  # the reply is paused to hear the user out: its next sound goes on, it is no new turn

    async def follow(self, events: Subscription) -> None:
        async for event in events:
            self.add(event)

    def add(self, event: Event) -> None:
        t = event.t
        match event:
            case StateChanged(dst=phase):
                self.phase = phase.value
                self._held = self._held and phase.value in REPLYING
            case Control(token=Kind.BREAK) if self.phase in REPLYING:
                self.barge_ins += 1
                self._cut_from = self.mic.speech_started if self.mic.speech_started >= 0 else t
                self._line(t, "barge-in: you cut in")
                if not self.audible and self._silent_at >= self._cut_from:  # it had already paused
                    self._stopped(self._silent_at)
            case Hold(held=True):
                self._held = True
                self._line(t, "model holds: hears you out")
            case Hold(held=False) if self.phase in REPLYING:  # (a BREAK that ended it has its own line)
                self._line(t, "model goes on")
            case Speaker(audible=True) if self._held and self.phase in REPLYING:
                self._held = False
                self.audible = True  # the same reply, going on: not a turn, and no turn latency
            case Speaker(audible=True):
                self._held = False
                self.turns += 1
                self.audible = True
                gap = t - self.mic.speech_ended
                latency = f" ({gap * 1000:.0f} ms after you)" if 0 <= gap <= RECENT_SPEECH_S else ""
                if latency:
                    self.turn_latency_s.append(gap)
                self._line(t, f"model speaks{latency}")
            case Speaker(audible=False):
                self.audible = False
                self._silent_at = t
                self._line(t, "model silent")
                if self._cut_from is not None:
                    self._stopped(t)
            case TextEvent(text=text):
                self.transcript.append(text)
            case Mic(open=is_open):
                self.mic_open = is_open
                self._line(t, f"microphone {'unmuted' if is_open else 'muted'}")
            case Error(message=message):
                self.errors.append(message)
                self._line(t, f"error: {message}")
            case Device(what=what, message=message):
                self.device_events += 1
                self._line(t, f"device {what}: {message}")
            case Overrun() | CommandApplied():
                self._line(t, describe(event))
            case _:
                pass

    def _stopped(self, t: float) -> None:
        assert self._cut_from is not None
        self.stop_latency_s.append(max(0.0, t - self._cut_from))
        self._line(t, f"stop latency {(t - self._cut_from) * 1000:.0f} ms (your speech -> model silent)")
        self._cut_from = None

    def _line(self, t: float, text: str) -> None:
        self.timeline.append(f"{t:7.2f}  {text}")
        self.lines_total += 1

    def figures(self) -> dict[str, object]:
        """The numbers of the summary (also what `--no-tui` prints at the end)."""
        stats = self.session.stats()
        devices = DeviceStats.read(self.mic, self.speaker, aec=self.aec, guard_s=self.guard_s)
        return {
            "turns": self.turns, "barge_ins": self.barge_ins,
            "turn_latency_ms": _ms(self.turn_latency_s), "stop_latency_ms": _ms(self.stop_latency_s),
            "time_to_silence_ms": _ms(self.speaker.time_to_silence()), "step_ms_p50": round(stats.step_ms_p50, 2),
            "step_ms_p99": round(stats.step_ms_p99, 2), "overruns": stats.overruns, **devices.to_dict(),
            **self.mic.echo_figures(),
        }


def _ms(values: list[float]) -> list[int]:
    return [round(v * 1000) for v in values]


def summary_lines(metrics: SessionMetrics) -> list[str]:
    f = metrics.figures()
    last = {k: v[-1] if isinstance(v, list) and v else v for k, v in f.items()}
    return [
        f"session: {f['turns']} model turns, {f['barge_ins']} barge-ins, "
        f"{metrics.session.stats().session_s:.1f} s",
        f"latency: turn {_spread(f['turn_latency_ms'])}, stop {_spread(f['stop_latency_ms'])}, "
        f"time-to-silence {_spread(f['time_to_silence_ms'])}, device buffering {last['device_latency_ms']} ms",
        f"compute: step p50 {f['step_ms_p50']} ms, p99 {f['step_ms_p99']} ms, overruns {f['overruns']}",
        f"devices: speaker underruns {f['speaker_underruns']}, xruns {f['speaker_xruns']}; "
        f"mic overflows {f['mic_overflows']}, dropped chunks {f['mic_dropped_chunks']}; "
        f"echo cancellation {f['aec']}, guard {f['guard_s']} s",
    ]


def _spread(values: object) -> str:
    if not isinstance(values, list) or not values:
        return "-"
    ordered = sorted(values)
    return f"median {ordered[len(ordered) // 2]} ms (max {ordered[-1]}, n={len(ordered)})"


def meter(level: float, width: int = 30) -> Text:
    """A level bar from -60 to 0 dBFS."""
    import math

    db = 20 * math.log10(max(level, 1e-6))
    filled = max(0, min(width, round((db + 60) / 60 * width)))
    style = "red" if db > -3 else "yellow" if db > -12 else "green"
    return Text("█" * filled, style=style) + Text("·" * (width - filled), style="grey30") + Text(f" {db:6.1f} dB")


class LiveView:
    """The rich UI: redrawn at `fps`, keys read from the terminal without blocking the loop."""

    KEYS = "m mute/unmute · s stop the model · r reset · q quit"

    def __init__(self, metrics: SessionMetrics, submit: Callable[[Command], None], *, fps: float = 5.0) -> None:
        self.metrics, self.submit, self.fps = metrics, submit, fps

    def render(self) -> Group:
        m = self.metrics
        f = m.figures()
        state = Text(f" {m.phase} ", style=PHASE_STYLE.get(m.phase, "bold") + " reverse")
        if not m.mic_open:
            state += Text("  MIC MUTED", style="bold red")
        levels = Table.grid(padding=(0, 1))
        levels.add_row("mic", meter(m.mic.level), "speech" if m.mic.speech else "")
        levels.add_row("speaker", meter(m.speaker.level), "")
        figures = Table.grid(padding=(0, 2))
        last = {k: (v[-1] if v else "-") if isinstance(v, list) else v for k, v in f.items()}
        figures.add_row(f"turn latency {last['turn_latency_ms']} ms", f"stop latency {last['stop_latency_ms']} ms",
                        f"time-to-silence {last['time_to_silence_ms']} ms")
        figures.add_row(f"step p50 {f['step_ms_p50']} ms", f"p99 {f['step_ms_p99']} ms",
                        f"overruns {f['overruns']}  underruns {f['speaker_underruns']}")
        figures.add_row(f"turns {f['turns']}", f"barge-ins {f['barge_ins']}", f"aec {f['aec']}")
        timeline = Text("\n".join(list(m.timeline)[-10:]) or "(talk to it)")
        parts: list[object] = [Panel(state, title="duplex", subtitle=self.KEYS), levels, figures,
                               Panel(timeline, title="timeline")]
        if m.transcript:
            parts.append(Panel(Text(" ".join(m.transcript)[-400:]), title="transcript"))
        return Group(*parts)  # type: ignore[arg-type]

    async def run(self) -> None:
        with self._keys(), Live(self.render(), refresh_per_second=self.fps, transient=False) as live:
            while True:
                await asyncio.sleep(1 / self.fps)
                live.update(self.render())

    @contextlib.contextmanager
    def _keys(self):  # type: ignore[no-untyped-def]
        """cbreak mode and a loop reader on stdin, restored on the way out."""
        if not sys.stdin.isatty():
            yield
            return
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        loop = asyncio.get_running_loop()
        tty.setcbreak(fd)
        loop.add_reader(fd, self._on_key, fd)
        try:
            yield
        finally:
            loop.remove_reader(fd)
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    def _on_key(self, fd: int) -> None:
        import os

        key = os.read(fd, 1).decode(errors="ignore").lower()
        command = KEYS.get(key)
        if key == "m":
            command = Unmute() if not self.metrics.mic_open else Mute()
        if command is not None:
            self.submit(command)


class PlainView:
    """No terminal UI: print each timeline line as it happens."""

    def __init__(self, metrics: SessionMetrics) -> None:
        self.metrics = metrics
        self.console = Console(highlight=False)

    async def run(self) -> None:
        shown = 0
        try:
            while True:
                await asyncio.sleep(0.2)
                shown = self._print_new(shown)
        finally:
            self._print_new(shown)

    def _print_new(self, shown: int) -> int:
        lines = list(self.metrics.timeline)
        new = min(len(lines), self.metrics.lines_total - shown)
        for line in lines[len(lines) - new :]:
            self.console.print(line)
        return self.metrics.lines_total
