"""Golden recordings of what the runtime produces offline: the event stream and the speaker's audio.

A refactor must leave both unchanged: `tests/test_golden.py` replays every example scenario and
`duplex-chat --input examples/audio/conversation.wav` (default config and examples/policy.yaml)
and compares with the files under `tests/golden/`. A deliberate behaviour change regenerates them:

    .venv/bin/python -m tests.golden --update            # every case but the slow one
    .venv/bin/python -m tests.golden --update --slow     # ten_minutes.yaml too

What is compared: every event's `to_dict()` (the JSONL line) in order, and the sha256 of the
speaker's samples (float32, bit for bit). What is not: figures of wall-clock compute, which
differ run to run on the same input: the `step_ms_p50`, `step_ms_p99`, `overruns` and
`realtime_factor` of the `session stopped` event (replaced by "*"), and `overrun` events (a step
is an overrun when its compute took longer than `engine.overrun_ms` of wall time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
SCENARIOS = ROOT / "examples" / "scenarios"
CONVERSATION = ROOT / "examples" / "audio" / "conversation.wav"
WALL_CLOCK_FIELDS = ("step_ms_p50", "step_ms_p99", "overruns", "realtime_factor")
SLOW = ("ten_minutes",)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    kind: str  # "scenario" | "chat"
    source: Path
    config: Path | None = None

    @property
    def slow(self) -> bool:
        return self.name.removeprefix("scenario-") in SLOW


def cases() -> list[Case]:
    out = [Case("chat-default", "chat", CONVERSATION), Case("chat-policy", "chat", CONVERSATION,
                                                            ROOT / "examples" / "policy.yaml")]
    out += [Case(f"scenario-{p.stem}", "scenario", p) for p in sorted(SCENARIOS.glob("*.yaml"))]
    return out


def normalise(event: dict[str, Any]) -> dict[str, Any] | None:
    """The event without its wall-clock figures; None for an event that only wall time decides."""
    if event.get("type") == "overrun":
        return None
    if event.get("type") == "session" and event.get("what") == "stopped":
        return {k: "*" if k in WALL_CLOCK_FIELDS else v for k, v in event.items()}
    return event


def digest(audio: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()


def record(case: Case) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Run one case now: its raw event dicts and the speaker's samples."""
    if case.kind == "scenario":
        from duplex.scenario.runner import run_scenario_file

        result = run_scenario_file(case.source)
        assert result.timeline is not None, result.failures
        return [e.to_dict() for e in result.events], result.timeline.model_audio
    from audio_io.wav import load_mono16k
    from duplex.cli import chat_main

    with tempfile.TemporaryDirectory() as tmp:
        out, events = Path(tmp) / "out.wav", Path(tmp) / "events.jsonl"
        argv = ["--input", str(case.source), "--output", str(out), "--events", str(events), "--quiet"]
        if case.config is not None:
            argv += ["--config", str(case.config)]
        assert chat_main(argv) == 0
        lines = [json.loads(line) for line in events.read_text().splitlines()]
        return lines, load_mono16k(out)


def observed(case: Case) -> dict[str, Any]:
    """What the golden file of `case` holds: normalised events, audio digest and length."""
    events, audio = record(case)
    kept = [n for e in events if (n := normalise(e)) is not None]
    return {"case": case.name, "audio_sha256": digest(audio), "samples": int(audio.size), "events": kept}


def path_of(case: Case) -> Path:
    return GOLDEN / f"{case.name}.jsonl"


def write(data: dict[str, Any], path: Path) -> None:
    """One header line (case, digest, length), then one event per line: diffs read event by event."""
    header = {k: v for k, v in data.items() if k != "events"}
    lines = [json.dumps(header, separators=(",", ":"))]
    lines += [json.dumps(e, separators=(",", ":")) for e in data["events"]]
    path.write_text("\n".join(lines) + "\n")


def read(path: Path) -> dict[str, Any]:
    header, *events = [json.loads(line) for line in path.read_text().splitlines()]
    return {**header, "events": events}


def main() -> None:
    p = argparse.ArgumentParser(description="Regenerate the golden event streams and audio digests.")
    p.add_argument("--update", action="store_true", help="rewrite tests/golden/*.jsonl from this checkout")
    p.add_argument("--slow", action="store_true", help="include the slow cases (ten_minutes)")
    p.add_argument("names", nargs="*", help="only these cases (e.g. scenario-turn_taking)")
    args = p.parse_args()
    GOLDEN.mkdir(exist_ok=True)
    for case in cases():
        if (args.names and case.name not in args.names) or (case.slow and not args.slow and not args.names):
            continue
        data = observed(case)
        if args.update:
            write(data, path_of(case))
            print(f"wrote {path_of(case).relative_to(ROOT)}: {len(data['events'])} events, {data['samples']} samples")
        else:
            same = path_of(case).exists() and read(path_of(case)) == data
            print(f"{case.name}: {'same' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
