"""Drive `duplex-chat` live on the PulseAudio loopback and read the results off the probe recording.

Shared by the loopback tests and `bench/live_loopback.py`: start the runtime as a child process on
the private daemon, wait for its session to start (device streams stall 1.5-2 s at first), play
clips into the virtual microphone at chosen moments, and measure turn and stop latencies on the
two-channel probe recording (left: microphone, right: speaker), which includes every device buffer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.pulse_fixtures import RATE, Pulse
from tests.speech import audible_spans

AUDIBLE_DB = -45.0  # the probe is 16-bit: anything above this is sound a user hears


@dataclass
class Runtime:
    process: subprocess.Popen[str]
    events: Path
    started_at: float = 0.0  # time.monotonic() when the session clock started (approx.)

    def wait_started(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                raise AssertionError(f"duplex-chat exited {self.process.returncode}: {err.strip()[-800:]}")
            if any(e.get("what") == "started" for e in self.read_events()):
                self.started_at = time.monotonic()
                return
            time.sleep(0.05)
        raise AssertionError("the live session did not start in time")

    def wait_event(self, pred: object, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.read_events():
                if pred(e):  # type: ignore[operator]
                    return e
            time.sleep(0.05)
        return None

    def read_events(self) -> list[dict]:
        if not self.events.exists():
            return []
        lines = self.events.read_text().splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def finish(self, timeout: float = 20.0) -> tuple[str, str]:
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError(f"duplex-chat did not end: {err[-800:]}") from None
        assert self.process.returncode == 0, f"duplex-chat exited {self.process.returncode}: {err.strip()[-800:]}"
        return out, err


def start_runtime(pulse: Pulse, folder: Path, *, duration: float, sets: list[str],
                  extra: tuple[str, ...] = ()) -> Runtime:
    events = folder / "events.jsonl"
    cmd = [sys.executable, "-c", "from duplex.cli import main; main()", "--no-tui", *extra,
           "--input-device", "pulse", "--output-device", "pulse", "--events", str(events), "--duration", str(duration),
           "--set", f"live.sample_rate={RATE}"]
    for item in sets:
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, env=pulse.runtime_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    return Runtime(proc, events)


def probe_spans(wav: Path) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Audible spans (s) of the microphone (left) and the speaker (right) on the probe recording."""
    audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    assert rate == 16_000, rate
    return (audible_spans(audio[:, 0], threshold_db=AUDIBLE_DB), audible_spans(audio[:, 1], threshold_db=AUDIBLE_DB))


def merge(spans: list[tuple[float, float]], gap: float = 0.3) -> list[tuple[float, float]]:
    """Join spans separated by less than `gap` (pauses between words) into utterances."""
    out: list[tuple[float, float]] = []
    for a, b in spans:
        if out and a - out[-1][1] < gap:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def first_after(spans: list[tuple[float, float]], t: float) -> tuple[float, float] | None:
    return next(((a, b) for a, b in spans if a >= t), None)


def silent_from(spans: list[tuple[float, float]], t: float) -> float:
    """The moment after `t` from which the channel stays silent for at least 0.3 s."""
    for a, b in merge(spans, gap=0.3):
        if a <= t < b:
            return b
    return t


def locate(wav: Path, clip: Path, after: float = 0.0) -> tuple[float, float]:
    """(onset, end) in seconds of `clip`'s audible part in the probe's microphone channel, found by
    cross-correlation, so exact even with the speaker's echo mixed in."""
    audio, _ = sf.read(str(wav), dtype="float32", always_2d=True)
    mic = audio[int(after * 16_000) :, 0].astype(np.float64)
    ref, _ = sf.read(str(clip), dtype="float64")
    n = 1 << int(np.ceil(np.log2(mic.size + ref.size)))
    corr = np.fft.irfft(np.fft.rfft(mic, n) * np.conj(np.fft.rfft(ref, n)), n)[: mic.size]
    start = after + int(np.argmax(corr)) / 16_000
    spans = audible_spans(ref.astype(np.float32), threshold_db=AUDIBLE_DB)
    return start + spans[0][0], start + spans[-1][1]


def rms_db(x: np.ndarray) -> float:
    return 10 * float(np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))
