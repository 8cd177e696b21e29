"""Configuration: frozen dataclasses with documented defaults, loaded from YAML and validated.

Every key has a default, a one-line doc and (where it matters) a range or a set of choices, so
`--print-config` can show the effective config and a bad file fails with one line that names the
key and the value. Sections are plain dataclasses; the loader walks them generically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from duplex import yamlsafe
from duplex.backbones import registry
from duplex.backbones.covo.config import CovoConfig
from duplex.backbones.registry import BackboneEntry, register
from duplex.backbones.tiny_fd.config import CUE_CHECKPOINT_HELP, TinyFdConfig
from duplex.errors import ConfigError
from duplex.fields import build, opt, section, show, to_dict

__all__ = ["Config", "EngineConfig", "LiveConfig", "MqttConfig", "PolicyConfig", "build", "dump_yaml",
           "load_config", "opt", "reference_table", "section", "to_dict"]


@dataclass(frozen=True)
class PolicyConfig:
    floor: str = opt("auto", "who times the turns of policy and covo's turn mode: vad = the VAD rules (these keys), tiny-fd = tiny-fd's decisions with its tiny_fd settings (its speech discarded), auto = tiny-fd for covo's turn mode (far fewer starts in thinking pauses, docs/policy.md) and vad for the policy backbone (no torch needed)", choices=("auto", "vad", "tiny-fd"))
    vad: str = opt("webrtc", "voice activity detector", choices=("webrtc", "silero"))
    webrtc_aggressiveness: int = opt(3, "webrtcvad mode: 0 (lenient) .. 3 (strict)", lo=0, hi=3)
    speech_threshold: float = opt(0.5, "VAD probability above which a 160 ms chunk is speech", lo=0.05, hi=0.95)
    min_speech_s: float = opt(0.32, "speech needed before a user utterance counts", lo=0.0, hi=5.0)
    min_silence_s: float = opt(0.64, "silence after the user's speech before the model takes the turn (with cue_words: after a question's opening)", lo=0.16, hi=10.0)
    unfinished_silence_s: float = opt(0.64, "silence needed instead after a statement's opening (cue_words) or, when no words decide, a last fragment whose pitch does not fall (mid-turn pauses); <= min_silence_s: off", lo=0.16, hi=10.0)
    barge_in_s: float = opt(0.16, "user speech over the model that silences it", lo=0.16, hi=5.0)
    backchannel_max_s: float = opt(0.8, "a piece of speech over the reply longer than this is a barge-in (BREAK), shorter ones only hold it (backchannels); 0 = every overlap is a BREAK", lo=0.0, hi=5.0)
    resume_after_s: float = opt(0.8, "silence after a held piece before the reply resumes: longer than a hesitant barge-in's gaps (\"wait, ... no, ...\"); a piece with no voice (a cough) resumes it at once", lo=0.16, hi=5.0)
    min_level_db: float = opt(-45.0, "chunks quieter than this (RMS dBFS) are never speech, whatever the VAD says", lo=-120.0, hi=0.0)
    echo_gate_db: float = opt(-12.0, "while the model speaks, mic level must exceed its own output level plus this to count as the user", lo=-60.0, hi=20.0)
    cues: bool = opt(False, "the cue model (duplex/cue, needs torch) hears the user's last words: after anything but a question or request the turn waits unfinished_silence_s (instead of the pitch cue); a backchannel resumes a held reply at once, a stop word ends it")
    cue_words: bool = opt(False, "a recogniser (pocketsphinx, a process of its own, no torch) hears the words: a question's or request's opening ends the turn after min_silence_s, a statement's opening waits unfinished_silence_s (with cues: unless the network is sure of a question; a held piece heard as a backchannel lets the reply go on at once). Without cues: examples/policy-words-only.yaml, docs/policy.md; with: examples/policy-words.yaml, docs/cue.md")
    cue_checkpoint: str = opt("", CUE_CHECKPOINT_HELP)
    responder: str = opt("echo", "what the model says: echo = the user's last utterance, wav = reply_wav", choices=("echo", "wav"))
    reply_wav: str = opt("", "WAV file the wav responder plays (relative to the config file)")
    max_reply_s: float = opt(12.0, "longest reply, in seconds", lo=0.5, hi=120.0)


register(BackboneEntry("policy", "VAD turn policy", "duplex.backbones.policy:load_policy",
                       ("policy", "tiny_fd")))


@dataclass(frozen=True)
class EngineConfig:
    max_tail_s: float = opt(30.0, "offline: after the input ends, how long to let the model finish", lo=0.0, hi=600.0)
    step_events: bool = opt(False, "publish a 'step' event (compute ms, tokens) every step")
    overrun_ms: float = opt(160.0, "a step whose compute exceeds this is an overrun", lo=1.0, hi=10_000.0)
    lead_in_ms: float = opt(40.0, "offline speakers: silence queued before each turn, so the 3 units of a SHIFT step play without a gap", lo=0.0, hi=640.0)


@dataclass(frozen=True)
class LiveConfig:
    input_device: str = opt("", "microphone: index or name substring ('' = system default; see --list-devices)")
    output_device: str = opt("", "speaker: index or name substring ('' = system default)")
    sample_rate: int = opt(0, "rate the sound card streams are opened at (0 = each device's default; use the sink's own rate)", lo=0, hi=384_000)
    block_ms: int = opt(20, "sound card callback block in ms (time-to-silence after a barge-in is at most one block + 10 ms)", lo=5, hi=160)
    latency: str = opt("high", "PortAudio buffering: high is robust on loaded machines, low saves about 25 ms", choices=("low", "high"))
    jitter_ms: float = opt(160.0, "playout delay before each model turn, so later steps arrive before the speaker runs dry (default one step)", lo=0.0, hi=1280.0)
    aec: str = opt("auto", "acoustic echo cancellation with the played signal as reference (auto = webrtc if livekit is installed, else speex)", choices=("auto", "webrtc", "speex", "none"))
    guard_s: float | None = opt(None, "after the model starts speaking, ignore the microphone this long (null = 0.5 s when aec is none, 0 otherwise)", lo=0.0, hi=3.0)
    stall_s: float = opt(3.0, "a microphone that delivers nothing this long has failed (the session goes DEGRADED and reopens it)", lo=0.5, hi=60.0)
    device_retry_s: float = opt(60.0, "a failed microphone or speaker is reopened (by name, with backoff) this long before the session ends with an error", lo=0.0, hi=86_400.0)
    tui: bool = opt(True, "show the terminal UI in live sessions (off: print the timeline)")


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = opt(False, "run the MQTT bridge (duplex-kiosk; needs the 'mqtt' extra)")
    host: str = opt("localhost", "broker host")
    port: int = opt(1883, "broker port", lo=1, hi=65535)
    username: str = opt("", "broker user ('' = anonymous)")
    password: str = opt("", "broker password")
    password_file: str = opt("", "file whose first line is the broker password (keeps it out of this file)")
    tls: bool = opt(False, "connect with TLS")
    ca_file: str = opt("", "CA bundle for TLS ('' = system)")
    cert_file: str = opt("", "client certificate for TLS ('' = none)")
    key_file: str = opt("", "client key for TLS ('' = none)")
    topic_prefix: str = opt("duplex", "topics live under <prefix>/<device_id>/")
    device_id: str = opt("kiosk-1", "this runtime's id in topic names")
    client_id: str = opt("", "MQTT client id ('' = duplex-<device_id>)")
    keepalive_s: int = opt(15, "MQTT keepalive: a silent broker is given up after 1.5x this", lo=5, hi=3600)
    reconnect_min_s: float = opt(0.25, "first retry delay after the broker is lost (doubles each failure)", lo=0.05, hi=60.0)
    reconnect_max_s: float = opt(2.0, "longest retry delay", lo=0.1, hi=600.0)
    metrics_interval_s: float = opt(5.0, "how often metrics are published", lo=0.5, hi=3600.0)
    max_payload_bytes: int = opt(4096, "larger commands are refused", lo=64, hi=1_000_000)
    max_commands_per_s: float = opt(50.0, "sustained command rate; commands beyond it (and the burst) are dropped, counted", lo=1.0, hi=10_000.0)
    command_burst: int = opt(20, "commands accepted at once before the rate limit applies", lo=1, hi=10_000)
    event_queue: int = opt(1000, "events waiting to be published; beyond it the oldest are dropped, counted", lo=10, hi=1_000_000)
    autostart: bool = opt(True, "kiosk: start a session as soon as the runtime starts (else wait for a 'start' command)")
    restart_delay_s: float = opt(2.0, "kiosk: restart a failed session after this (doubling per failure, up to 60 s); 0 = never", lo=0.0, hi=600.0)


@dataclass(frozen=True)
class Config:
    backbone: str = opt("tiny-fd", f"model: {registry.describe()}", choices=registry.choices())
    policy: PolicyConfig = section(PolicyConfig, "VAD turn policy backbone")
    engine: EngineConfig = section(EngineConfig, "step loop")
    live: LiveConfig = section(LiveConfig, "sound devices and terminal UI")
    mqtt: MqttConfig = section(MqttConfig, "MQTT bridge for kiosks")
    covo: CovoConfig = section(CovoConfig, "Covo-Audio backbone")
    tiny_fd: TinyFdConfig = section(TinyFdConfig, "tiny-fd, the built-in full-duplex model")
    base_dir: str = field(default=".", metadata={"doc": "", "hidden": True})

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else Path(self.base_dir) / path


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                sets: list[str] | None = None) -> Config:
    """The fields' defaults, then the YAML file, then a mapping of overrides, then `key=value` strings."""
    data: dict[str, Any] = {}
    source = "config"
    base_dir = "."
    if path is not None:
        p = Path(path)
        source = str(p)
        base_dir = str(p.parent)
        data = read_yaml_mapping(p)
    if overrides:
        data = _merge(data, dict(overrides))
    for item in sets or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value")
        node: dict[str, Any] = {}
        cursor = node
        parts = key.strip().split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        try:
            cursor[parts[-1]] = yamlsafe.safe_load(raw) if raw.strip() else ""
        except yamlsafe.YamlLimitError as exc:
            raise ConfigError(f"--set {show(item)}: the value is {exc.problem}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from exc
        data = _merge(data, node)
    if sets:  # a bad value may come from the file or from a --set: name both
        source = f"{source} + --set" if path is not None else "--set"
    cfg = build(Config, data, source=source)
    return dataclasses.replace(cfg, base_dir=base_dir)


def read_yaml_mapping(p: Path) -> dict[str, Any]:
    """A config file's top-level mapping, read with bounds (size, nesting, alias expansion)."""
    loaded = yamlsafe.read_file(p, error=ConfigError, what="config file").data
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{p}: expected a mapping of keys, got {type(loaded).__name__}")
    return loaded or {}


def dump_yaml(cfg: Config) -> str:
    """The effective config as YAML, each key followed by its doc as a comment."""
    lines: list[str] = []
    _dump(cfg, lines, 0)
    return "\n".join(lines) + "\n"


def _dump(obj: Any, lines: list[str], depth: int) -> None:
    pad = "  " * depth
    for f in dataclasses.fields(obj):
        if f.metadata.get("hidden"):
            continue
        value = getattr(obj, f.name)
        doc = f.metadata.get("doc", "")
        if dataclasses.is_dataclass(value):
            lines.append(f"{pad}{f.name}:  # {doc}")
            _dump(value, lines, depth + 1)
        else:
            rendered = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
            extra = f" [{', '.join(map(str, f.metadata['choices']))}]" if f.metadata.get("choices") else ""
            lines.append(f"{pad}{f.name}: {rendered}  # {doc}{extra}")


def reference_table(cls: type = Config, prefix: str = "") -> str:
    """Markdown rows (key, default, meaning) for the README's configuration reference."""
    rows = [] if prefix else ["| key | default | meaning |", "|---|---|---|"]
    defaults = cls()
    for f in dataclasses.fields(cls):
        if f.metadata.get("hidden"):
            continue
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            rows.append(reference_table(type(value), f"{prefix}{f.name}."))
            continue
        doc = f.metadata.get("doc", "")
        if f.metadata.get("choices"):
            doc += f" ({' / '.join(map(str, f.metadata['choices']))})"
        if f.metadata.get("lo") is not None:
            doc += f" [{f.metadata['lo']}, {f.metadata['hi']}]"
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:36] + "…'"
        shown = shown.replace("|", "\\|").replace("\\n", " ")
        rows.append(f"| `{prefix}{f.name}` | `{shown}` | {doc} |")
    return "\n".join(rows)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
