"""Small hostile inputs stay small: config YAML, config values, checkpoint config.json, audio files.

Memory is measured in a child process (its own peak RSS from getrusage, under an address-space
cap so a regression fails instead of exhausting the machine) or with tracemalloc in-process.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
import time
import tracemalloc
import typing
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_io.errors import AudioFileError
from audio_io.format import SAMPLE_RATE
from audio_io.wav import WavInput, load_mono16k, probe
from duplex.config import Config, load_config
from duplex.errors import CheckpointError, ConfigError

ROOT = Path(__file__).resolve().parents[1]
MB = 1 << 20

# Runs one duplex-chat command line in this child and prints its exit status and peak RSS (KiB).
CHILD = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a regression fails, the machine survives
    from duplex.cli import main
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    except MemoryError:
        code = "MemoryError"
    print(f"@@ {code}", file=sys.stderr)
""")
# Runs CHILD as its own child and prints that child's peak RSS (KiB). A process's ru_maxrss starts
# from its parent's at fork, so measuring in a child of the (large) pytest process would count
# pytest's own memory; this small launcher's RUSAGE_CHILDREN counts the command alone.
LAUNCH = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
          "print(f'@@rss {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}', file=sys.stderr)")


def run_child(*args: str | Path, timeout: float = 120) -> tuple[object, float, str, float]:
    """(exit status, peak RSS in MB, the other stderr lines, wall seconds) of `duplex-chat args`."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", LAUNCH, sys.executable, "-c", CHILD, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    wall = time.monotonic() - started
    lines = proc.stderr.strip().splitlines()
    tag = [line for line in lines if line.startswith("@@ ")]
    peak = [line for line in lines if line.startswith("@@rss ")]
    assert tag and peak, proc.stderr[-2000:]
    code, rss = tag[-1].split()[1], peak[-1].split()[1]
    rest = "\n".join(line for line in lines if not line.startswith("@@"))
    return (int(code) if code.lstrip("-").isdigit() else code), int(rss) / 1024, rest, wall


def alias_bomb(levels: int = 9) -> str:
    """`levels` levels of nine aliases each, all under `backbone` (about 700 bytes; 9**9 values expanded)."""
    lines = ["backbone:", "  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_before_expansion(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    assert bomb.stat().st_size < 800
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"bomb\.yaml:\d+: malformed YAML \(aliases expand to more than") as info:
        load_config(bomb)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 10.0 and peak < 20 * MB, (elapsed, peak)  # landed main: 52 s and 5.9 GB
    assert "lol" not in str(info.value) and "\n" not in str(info.value)  # no repr of the value
    code, rss, err, _ = run_child("--config", bomb, "--print-config")
    assert code == 2 and rss < 500, (code, rss, err)
    assert err.count("\n") == 0 and "aliases expand" in err


def test_a_5000_deep_yaml_list_is_one_line_not_a_recursion_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("policy:\n  vad: " + "[" * 5000 + "]" * 5000 + "\n")
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"deep\.yaml:2: malformed YAML \(nested deeper than 64 levels"):
        load_config(deep)
    assert time.perf_counter() - started < 10.0  # generous: a shared machine; PyYAML alone was quadratic here
    code, rss, err, _ = run_child("--config", deep, "--print-config")
    assert code == 2 and "Traceback" not in err and "nested deeper" in err and rss < 500


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_config_loads(path: Path) -> None:
    """The README points at each of them: a key renamed or a value out of bounds must fail here."""
    cfg = load_config(path)
    if path.stem == "tiny-fd-loud-room":
        assert cfg.backbone == "tiny-fd" and cfg.tiny_fd.vad == "silero"


def test_set_values_are_bounded_too() -> None:
    with pytest.raises(ConfigError, match="--set 'policy.vad=.*': the value is nested deeper than 64 levels"):
        load_config(sets=["policy.vad=" + "[" * 200 + "]" * 200])
    with pytest.raises(ConfigError, match=r"policy\.vad = \[\[\[.* is not a string"):  # shallow: the usual check
        load_config(sets=["policy.vad=" + "[" * 10 + "]" * 10])


def float_keys(cls: type = Config, prefix: str = "") -> list[str]:
    """Every float (or optional float) key in the config tree."""
    hints = typing.get_type_hints(cls)
    keys: list[str] = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("hidden"):
            continue
        hint = hints[f.name]
        if f.metadata.get("section"):
            keys += float_keys(hint, f"{prefix}{f.name}.")
        elif hint is float or float in typing.get_args(hint):
            keys.append(f"{prefix}{f.name}")
    return keys


def test_every_float_key_is_found() -> None:
    keys = float_keys()
    assert {"engine.max_tail_s", "engine.lead_in_ms", "policy.min_silence_s", "policy.min_level_db",
            "policy.speech_threshold", "live.guard_s", "tiny_fd.shift_threshold", "covo.temperature"} <= set(keys)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN"])
def test_nan_and_inf_are_refused_in_every_numeric_key(value: str) -> None:
    for key in float_keys():
        with pytest.raises(ConfigError, match=rf"^--set: {key} = (nan|inf|-inf) is not a finite number$"):
            load_config(sets=[f"{key}={value}"])


def test_nan_through_the_cli_is_one_line_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("engine:\n  max_tail_s: .nan\n")
    proc = subprocess.run([sys.executable, "-m", "duplex", "--config", str(cfg), "--print-config"],
                          capture_output=True, text=True)
    expected = f"duplex-chat: error: {cfg}: engine.max_tail_s = nan is not a finite number"
    assert proc.returncode == 2 and proc.stderr.strip() == expected


@pytest.fixture
def checkpoint_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "units.safetensors"):
        (folder / name).symlink_to(ROOT / "checkpoints" / "tiny-fd" / name)
    return folder


def set_net(folder: Path, **net: object) -> None:
    meta = json.loads((folder / "config.json").read_text())
    meta["net"].update(net)
    (folder / "config.json").unlink()
    (folder / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(("net", "needle"), [
    ({"hidden": -5}, "net.hidden = -5 is not a whole number in [8, 4096]"),
    ({"layers": 10**9}, "net.layers = 1000000000 is not a whole number"),
    ({"n_units": "many"}, "net.n_units = 'many' is not a whole number"),
    ({"heads": 0}, "net.heads = 0 is not a whole number"),
    ({"max_positions": True}, "net.max_positions = True"),
    ({"ffn": 3.5}, "net.ffn = 3.5"),
    ({"hidden": 162}, "net.hidden = 162 is not a multiple of 2 x net.heads"),
    ({"kv_heads": 3}, "net.kv_heads = 3 does not divide net.heads = 4"),
    ({"dropout": 1}, "net.dropout: unknown key"),
])
def test_a_bad_tiny_fd_config_json_names_the_file_and_key(checkpoint_copy: Path, net: dict, needle: str) -> None:
    from duplex.backbones.tiny_fd.checkpoint import read_config

    set_net(checkpoint_copy, **net)
    with pytest.raises(CheckpointError) as info:
        read_config(checkpoint_copy)
    message = str(info.value)
    assert message.startswith(str(checkpoint_copy / "config.json")) and needle in message and "\n" not in message


def test_net_defaults_match_the_model() -> None:
    pytest.importorskip("torch")
    from duplex.backbones.tiny_fd.checkpoint import NET_FIELDS
    from duplex.backbones.tiny_fd.model import NetConfig

    defaults = {f.name: None if f.default is dataclasses.MISSING else f.default for f in dataclasses.fields(NetConfig)}
    assert defaults == {key: default for key, (default, _, _) in NET_FIELDS.items()}


def test_a_bad_tiny_fd_config_json_through_the_cli_is_one_line_exit_2(checkpoint_copy: Path, tmp_path: Path) -> None:
    set_net(checkpoint_copy, hidden=-5)
    wav = tmp_path / "in.wav"
    sf.write(wav, np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    proc = subprocess.run([sys.executable, "-m", "duplex", "--set", f"tiny_fd.checkpoint={checkpoint_copy}",
                           "--input", str(wav), "--output", str(tmp_path / "o.wav")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "config.json: net.hidden = -5" in proc.stderr


def wav_at(path: Path, rate: int, seconds: float, channels: int = 1) -> Path:
    frames = max(1, int(rate * seconds))
    data = (0.1 * np.sin(np.arange(frames) * 0.01)).astype(np.float32)
    sf.write(path, np.repeat(data[:, None], channels, axis=1), rate, subtype="PCM_16")
    return path


@pytest.mark.parametrize("rate", [1, 4000, 7999, 384_001, 768_000])
def test_sample_rates_outside_8_to_384_khz_are_refused_naming_the_file(tmp_path: Path, rate: int) -> None:
    path = wav_at(tmp_path / f"r{rate}.wav", rate, 0.5 if rate > 100 else 100)
    for load in (probe, load_mono16k, WavInput):
        with pytest.raises(AudioFileError, match=rf"r{rate}\.wav: sample rate {rate} Hz is outside 8000\.\.384000 Hz"):
            load(path)


def test_a_148_kb_wav_at_1_hz_is_one_line_and_small_as_input(tmp_path: Path) -> None:
    """Landed main took 3.1 GB here (the input converted 8192 s at a time)."""
    path = wav_at(tmp_path / "slow.wav", 1, 74_000)
    assert 140_000 < path.stat().st_size < 160_000
    code, rss, err, _ = run_child("--set", "backbone=policy", "--input", path, "--output", tmp_path / "o.wav")
    assert code == 2 and rss < 500, (code, rss, err)
    assert err.count("\n") == 0 and "slow.wav: sample rate 1 Hz" in err


def peak_bytes(fn: typing.Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_audio_is_converted_in_bounded_blocks(tmp_path: Path) -> None:
    """Memory follows the 16 kHz output, not the input: a 384 kHz stereo file costs what its 16 kHz result does."""
    path = wav_at(tmp_path / "hi.wav", 384_000, 20.0, channels=2)  # 29 MB of PCM, 123 MB as float32 frames
    output = 20 * SAMPLE_RATE * 4  # 1.3 MB at 16 kHz
    assert peak_bytes(lambda: load_mono16k(path)) < 2 * output + 6 * MB
    assert peak_bytes(lambda: load_mono16k(path, max_seconds=1.0)) < 6 * MB
    assert load_mono16k(path, max_seconds=1.0).size == SAMPLE_RATE

    def stream() -> None:
        wav = WavInput(path)
        while wav.read_now() is not None:
            pass
        wav.close()

    assert peak_bytes(stream) < 6 * MB  # a stream holds one block, whatever the length


def test_blockwise_conversion_matches_the_file(tmp_path: Path) -> None:
    path = wav_at(tmp_path / "cd.wav", 44_100, 3.0, channels=2)
    audio = load_mono16k(path)
    assert abs(audio.size - 3 * SAMPLE_RATE) <= 1
    expected = (0.1 * np.sin(np.arange(audio.size) * 0.01 * 44_100 / SAMPLE_RATE)).astype(np.float32)
    assert np.max(np.abs(audio[100:-100] - expected[100:-100])) < 2e-3


def test_scenario_yaml_is_bounded_too(tmp_path: Path) -> None:
    from duplex.errors import ScenarioError
    from duplex.scenario.spec import load_scenario

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("duration: 5\nuser: []\nexpect: []\nconfig:\n" + alias_bomb().replace("backbone:", "  policy:")
                    .replace("\n  a", "\n    a"))
    started = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"bomb\.yaml:\d+: malformed YAML \(aliases expand to more than"):
        load_scenario(bomb)
    deep = tmp_path / "deep.yaml"
    deep.write_text("duration: 5\nuser: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ScenarioError, match=r"deep\.yaml:2: malformed YAML \(nested deeper than 64 levels"):
        load_scenario(deep)
    assert time.perf_counter() - started < 10.0


def test_a_noise_file_read_only_as_far_as_the_scenario_lasts_gives_the_same_noise(tmp_path: Path) -> None:
    from audio_io.scripted import noise_signal

    path = wav_at(tmp_path / "noise.wav", 22_050, 7.0)
    n = 3 * SAMPLE_RATE + 17
    whole = noise_signal("file", -30.0, n, 0, load_mono16k(path))
    assert np.array_equal(noise_signal("file", -30.0, n, 0, load_mono16k(path, max_seconds=n / SAMPLE_RATE)), whole)
