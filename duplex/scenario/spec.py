"""Scenario files (YAML, the contract in DESIGN.md) parsed into checked, typed values.

Every problem is reported as `file:line: key: problem`, so a user can jump to it. Clip paths are
relative to the scenario file. Expectations name clips by their 1-based position in `user`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audio_io.wav import probe
from duplex import yamlsafe
from duplex.errors import AudioFileError, ScenarioError

MAX_DURATION_S = 600.0  # a scripted session is rendered in memory: 10 min is ~75 MB, 100,000 s was 11.9 GiB


class Trigger(enum.Enum):
    """Engine events a clip can be scheduled after."""

    SPEAKING_STARTED = "speaking_started"
    SPEAKING_STOPPED = "speaking_stopped"
    BARGE_IN = "barge_in"
    SHIFT = "shift"
    EOT = "eot"


class Role(enum.Enum):
    """What a clip is, for the metrics (docs/metrics.md).

    turn: the user holds the floor from its first to its last audible sample, inner pauses
    included, then expects a reply. monologue: like turn, and consecutive monologue clips are one
    floor (the gaps between them belong to the user); the reply is due after the last one.
    barge_in: a cut-in over the model's reply. backchannel / noise: the reply should go on.
    """

    TURN = "turn"
    BARGE_IN = "barge_in"
    BACKCHANNEL = "backchannel"
    MONOLOGUE = "monologue"
    NOISE = "noise"


@dataclass(frozen=True, slots=True)
class After:
    event: Trigger
    nth: int = 1
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class ClipSpec:
    index: int  # 1-based, as expectations name it
    audio: Path
    at: float | None = None
    after: After | None = None
    gain_db: float = 0.0
    role: Role = Role.TURN


GENERATED_NOISES = ("white", "pink")  # the noises a scenario (or `duplex.eval --noise`) makes itself
QUIETEST_NOISE_DB = -120.0  # a noise level's lower bound; the upper is full scale, 0 dBFS


@dataclass(frozen=True, slots=True)
class NoiseSpec:
    kind: str  # white | pink | file
    level_db: float
    file: Path | None = None


@dataclass(frozen=True, slots=True)
class EchoSpec:
    gain_db: float
    delay_ms: float


class Check(enum.Enum):
    SPEAKING_STARTED = "speaking_started"  # {after_user_end: i, within: s}
    SILENT = "silent"  # {after_user_start: i, within: s}
    NO_BARGE_IN = "no_barge_in"  # {during_user: i}
    NO_SPEAKING = "no_speaking"  # {during_user: i} or {from: s, to: s}
    BARGE_IN = "barge_in"  # {after_user_start: i, within: s}
    TURN_LATENCY = "turn_latency"  # {max: s}: every turn clip answered within max
    STOP_LATENCY = "stop_latency"  # {max: s}: every barge-in clip silences the model within max
    FALSE_BARGE_INS = "false_barge_ins"  # {max: n}
    TAKEOVERS = "takeovers"  # {max: n}
    OVERRUNS = "overruns"  # {max: n}
    FALSE_STARTS = "false_starts"  # {max: n}: audible model onsets while the user holds the floor
    RESUMES_OVER_BARGE_IN = "resumes_over_barge_in"  # {max: n}: onsets inside a barge-in after the model went quiet
    OVERLAP = "overlap"  # {max: s}: model audio over any one barge-in utterance


# For each check: its parameters and whether each is required.
CHECK_PARAMS: dict[Check, dict[str, bool]] = {
    Check.SPEAKING_STARTED: {"after_user_end": True, "within": True},
    Check.SILENT: {"after_user_start": True, "within": True},
    Check.NO_BARGE_IN: {"during_user": True},
    Check.NO_SPEAKING: {"during_user": False, "from": False, "to": False},
    Check.BARGE_IN: {"after_user_start": True, "within": True},
    Check.TURN_LATENCY: {"max": True},
    Check.STOP_LATENCY: {"max": True},
    Check.FALSE_BARGE_INS: {"max": True},
    Check.TAKEOVERS: {"max": True},
    Check.OVERRUNS: {"max": True},
    Check.FALSE_STARTS: {"max": True},
    Check.RESUMES_OVER_BARGE_IN: {"max": True},
    Check.OVERLAP: {"max": True},
}
CLIP_PARAMS = {"after_user_end", "after_user_start", "during_user"}


@dataclass(frozen=True, slots=True)
class Expectation:
    check: Check
    params: Mapping[str, float]
    line: int

    def describe(self) -> str:
        args = ", ".join(f"{k}: {_num(v)}" for k, v in self.params.items())
        return f"{self.check.value} {{{args}}}"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    file: Path
    duration: float
    user: tuple[ClipSpec, ...]
    expect: tuple[Expectation, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    noise: NoiseSpec | None = None
    echo: EchoSpec | None = None
    seed: int = 0
    slow: bool = False


class _Lines:
    """Line numbers of every key, from the YAML node tree."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.lines[(*path, key.value)] = key.start_mark.line + 1
                self._walk(value, (*path, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))

    def at(self, path: tuple[Any, ...]) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


def load_scenario(path: Path) -> Scenario:
    path = Path(path)
    document = yamlsafe.read_file(path, error=ScenarioError, what="scenario file")  # bounded, parsed once
    return _Parser(path, _Lines(document.node)).scenario(document.data)


class _Parser:
    def __init__(self, path: Path, lines: _Lines) -> None:
        self.path = path
        self.lines = lines

    def fail(self, where: tuple[Any, ...], problem: str) -> ScenarioError:
        key = ".".join(str(p) if not isinstance(p, int) else f"[{p + 1}]" for p in where).replace(".[", "[")
        return ScenarioError(f"{self.path}:{self.lines.at(where)}: {key or 'scenario'}: {problem}")

    def mapping(self, value: Any, where: tuple[Any, ...], allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail((*where, key), f"unknown key (expected one of {', '.join(sorted(allowed))})")
        return value

    def number(self, value: Any, where: tuple[Any, ...], *, lo: float = 0.0, hi: float = math.inf,
               integer: bool = False) -> float:
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            raise self.fail(where, f"{value!r} is not a {'whole number' if integer else 'number'}")
        if not math.isfinite(value):  # NaN passes every comparison: refuse it (and infinity) by name
            raise self.fail(where, f"{value!r} is not a finite number")
        if value < lo:
            raise self.fail(where, f"{value!r} must be >= {lo:g}")
        if value > hi:
            raise self.fail(where, f"{value!r} must be <= {hi:g}")
        return value

    def scenario(self, data: Any) -> Scenario:
        top = self.mapping(data, (), {"name", "duration", "config", "user", "noise", "echo", "expect", "seed", "slow"})
        for key in ("duration", "user", "expect"):
            if key not in top:
                raise self.fail((), f"missing required key '{key}'")
        duration = self.number(top["duration"], ("duration",), lo=0.16, hi=MAX_DURATION_S)
        users = top["user"] if top["user"] is not None else []
        if not isinstance(users, list):
            raise self.fail(("user",), "expected a list of clips (empty for a silent user)")
        clips: list[ClipSpec] = []
        for i, raw in enumerate(users):
            clips.extend(self.clip(raw, i, duration, first_index=len(clips) + 1))
        expects = top["expect"]
        if not isinstance(expects, list):
            raise self.fail(("expect",), "expected a list of expectations")
        config = top.get("config") or {}
        if not isinstance(config, Mapping):
            raise self.fail(("config",), "expected a mapping of config overrides")
        return Scenario(
            name=str(top.get("name") or self.path.stem),
            file=self.path,
            duration=float(duration),
            user=tuple(clips),
            expect=tuple(self.expectation(e, i, len(clips)) for i, e in enumerate(expects)),
            config=dict(config),
            noise=self.noise(top["noise"]) if top.get("noise") is not None else None,
            echo=self.echo(top["echo"]) if top.get("echo") is not None else None,
            seed=int(self.number(top.get("seed", 0), ("seed",), integer=True)),
            slow=bool(top.get("slow", False)),
        )

    def clip(self, raw: Any, i: int, duration: float, first_index: int) -> list[ClipSpec]:
        """One clip entry; `repeat: {count, every}` expands it into `count` clips."""
        where = ("user", i)
        c = self.mapping(raw, where, {"audio", "at", "after", "gain_db", "role", "repeat"})
        if "audio" not in c:
            raise self.fail(where, "missing 'audio' (a WAV path relative to the scenario file)")
        audio = (self.path.parent / str(c["audio"])).resolve()
        if not audio.is_file():
            raise self.fail((*where, "audio"), f"clip not found: {audio}")
        if ("at" in c) == ("after" in c):
            raise self.fail(where, "give exactly one of 'at' (seconds) or 'after' (an engine event)")
        at = after = None
        try:
            length = probe(audio).duration
        except AudioFileError as exc:
            raise self.fail((*where, "audio"), exc.problem) from exc
        if length > duration:
            raise self.fail((*where, "audio"), f"clip is {length:.2f} s, longer than the session ({duration:g} s)")
        if "at" in c:
            at = float(self.number(c["at"], (*where, "at")))
            if at + length > duration:
                raise self.fail(
                    (*where, "at"), f"clip runs to {at + length:.2f} s, past the session end ({duration:g} s)"
                )
        else:
            a = self.mapping(c["after"], (*where, "after"), {"event", "nth", "delay"})
            names = [t.value for t in Trigger]
            if a.get("event") not in names:
                raise self.fail(
                    (*where, "after", "event"), f"unknown event {a.get('event')!r} (one of {', '.join(names)})"
                )
            after = After(
                Trigger(a["event"]),
                int(self.number(a.get("nth", 1), (*where, "after", "nth"), lo=1, integer=True)),
                float(self.number(a.get("delay", 0.0), (*where, "after", "delay"))),
            )
        roles = [r.value for r in Role]
        role = c.get("role", "turn")
        if role not in roles:
            raise self.fail((*where, "role"), f"unknown role {role!r} (one of {', '.join(roles)})")
        gain = float(self.number(c.get("gain_db", 0.0), (*where, "gain_db"), lo=-120.0, hi=60.0))
        count, every = 1, 0.0
        if "repeat" in c:
            r = self.mapping(c["repeat"], (*where, "repeat"), {"count", "every"})
            if at is None:
                raise self.fail((*where, "repeat"), "repeat needs an absolute 'at'")
            count = int(self.number(r.get("count"), (*where, "repeat", "count"), lo=1, integer=True))
            every = float(self.number(r.get("every"), (*where, "repeat", "every"), lo=0.16))
            last = at + (count - 1) * every + length
            if last > duration:
                raise self.fail(
                    (*where, "repeat"), f"the last repeat runs to {last:.2f} s, past the session end ({duration:g} s)"
                )
        return [
            ClipSpec(
                index=first_index + j,
                audio=audio,
                at=None if at is None else at + j * every,
                after=after,
                gain_db=gain,
                role=Role(role),
            )
            for j in range(count)
        ]

    def noise(self, raw: Any) -> NoiseSpec:
        n = self.mapping(raw, ("noise",), {"kind", "level_db", "file"})
        kind = n.get("kind")
        if kind not in (*GENERATED_NOISES, "file"):
            raise self.fail(("noise", "kind"), f"{kind!r} is not white, pink or file")
        level = float(self.number(n.get("level_db", -40.0), ("noise", "level_db"), lo=QUIETEST_NOISE_DB))
        if level > 0:
            raise self.fail(("noise", "level_db"), f"{level:g} dBFS is above full scale")
        file = None
        if kind == "file":
            if "file" not in n:
                raise self.fail(("noise",), "kind: file needs 'file'")
            file = (self.path.parent / str(n["file"])).resolve()
            if not file.is_file():
                raise self.fail(("noise", "file"), f"noise file not found: {file}")
        return NoiseSpec(kind=kind, level_db=level, file=file)

    def echo(self, raw: Any) -> EchoSpec:
        e = self.mapping(raw, ("echo",), {"gain_db", "delay_ms"})
        gain = float(self.number(e.get("gain_db", -20.0), ("echo", "gain_db"), lo=-120.0))
        if gain > 0:
            raise self.fail(("echo", "gain_db"), f"{gain:g} dB would amplify the speaker")
        return EchoSpec(gain_db=gain, delay_ms=float(self.number(e.get("delay_ms", 60.0), ("echo", "delay_ms"))))

    def expectation(self, raw: Any, i: int, clips: int) -> Expectation:
        where = ("expect", i)
        if not isinstance(raw, Mapping) or len(raw) != 1:
            raise self.fail(where, "each expectation is a mapping with one check, e.g. {silent: {...}}")
        ((name, params),) = raw.items()
        names = [c.value for c in Check]
        if name not in names:
            raise self.fail((*where, name), f"unknown check (one of {', '.join(names)})")
        check = Check(name)
        spec = CHECK_PARAMS[check]
        p = self.mapping(params if params is not None else {}, (*where, name), set(spec))
        for key, required in spec.items():
            if required and key not in p:
                raise self.fail((*where, name), f"missing '{key}'")
        values: dict[str, float] = {}
        for key, value in p.items():
            values[key] = self.number(value, (*where, name, key), integer=key in CLIP_PARAMS)
            if key in CLIP_PARAMS and not 1 <= value <= clips:
                raise self.fail((*where, name, key), f"no user clip {value} (the scenario has {clips})")
        if check is Check.NO_SPEAKING and ("during_user" in values) == ("from" in values or "to" in values):
            raise self.fail((*where, name), "give either during_user or from/to")
        return Expectation(check=check, params=values, line=self.lines.at((*where, name)))


def _num(v: float) -> str:
    return f"{v:g}"
