"""A private PulseAudio daemon wired as a sound card loopback, for live tests without a sound card.

Topology (all at one rate, so nothing resamples inside the server):

    paplay ──► duplex_user (remap of probe's left) ──┐
                                                      ├─► probe (2-ch null sink) ──► probe.monitor ──► parecord
    runtime ─► duplex_speaker (remap of probe's right)┘                 │ left only
                                                           duplex_mic (remapped source) ──► runtime

One `parecord` of `probe.monitor` therefore holds, sample-aligned, what the microphone heard (left)
and what the speaker played (right): latencies read off it include every buffer a user would
hear. `echo(gain_db)` adds a speaker-to-microphone leak (module-loopback into duplex_user).
The daemon runs in the foreground as our child, with its own XDG_RUNTIME_DIR under tmp.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

RATE = 48_000
TOOLS = ("pulseaudio", "pactl", "paplay", "parecord")
ALSA_PULSE_PLUGIN = "libasound_module_pcm_pulse.so"


def missing_reason() -> str | None:
    """Why live device tests cannot run here (None when they can)."""
    absent = [t for t in TOOLS if shutil.which(t) is None]
    if absent:
        return f"{', '.join(absent)} not installed (apt-get install pulseaudio pulseaudio-utils)"
    if not any(glob.glob(f"{d}/alsa-lib/{ALSA_PULSE_PLUGIN}") for d in ("/usr/lib/*", "/usr/lib", "/usr/lib64")):
        return "ALSA's pulse plugin is not installed (apt-get install libasound2-plugins)"
    probe = subprocess.run([sys.executable, "-c", "import sounddevice"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"sounddevice/PortAudio unavailable (apt-get install libportaudio2; pip install sounddevice): " \
               f"{probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else ''}"
    return None


@dataclass
class Pulse:
    root: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def pactl(self, *args: str) -> str:
        done = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    def play(self, wav: Path) -> subprocess.Popen[bytes]:
        """Start playing `wav` into the virtual microphone (returns at once)."""
        return self._spawn(["paplay", "--device=duplex_user", str(wav)])

    def record(self, wav: Path) -> subprocess.Popen[bytes]:
        """Record probe.monitor (left: microphone, right: speaker) at 16 kHz until stopped."""
        return self._spawn(["parecord", "--device=probe.monitor", "--channels=2", "--rate=16000",
                            "--format=s16le", "--file-format=wav", "--latency-msec=20", str(wav)])

    def echo(self, gain_db: float, latency_ms: int = 30) -> None:
        """Leak the speaker into the microphone at `gain_db` (a laptop on speakers, no headset)."""
        self.pactl("load-module", "module-loopback", "source=duplex_speaker.monitor", "sink=duplex_user",
                   f"latency_msec={latency_ms}", "source_dont_move=true", "sink_dont_move=true", "remix=no")
        for _ in range(50):
            for line in self.pactl("list", "short", "sink-inputs").splitlines():
                cols = line.split("\t")  # index, sink, client, driver, spec
                if len(cols) > 3 and cols[3] == "module-loopback.c":
                    self.pactl("set-sink-input-volume", cols[0], f"{gain_db}dB")
                    return
            time.sleep(0.1)
        raise RuntimeError("the echo loopback never appeared")

    def restart(self, down_s: float = 1.0) -> None:
        """Kill the daemon (every stream fails at once), wait `down_s`, start it again as before."""
        self.process.kill()
        self.process.wait(timeout=10)
        time.sleep(down_s)
        fresh = start_pulse(self.root)
        self.process = fresh.process

    def suspend(self, sink: str, on: bool) -> None:
        """Suspend (or resume) a sink: its streams stop being called, their audio is held."""
        self.pactl("suspend-sink", sink, "1" if on else "0")

    def unload(self, name: str) -> list[str]:
        """Unload the module that made sink or source `name` (a device unplugged); returns what
        `reload` needs to load it again. PulseAudio moves that device's streams elsewhere."""
        for line in self.pactl("list", "short", "modules").splitlines():
            cols = line.split("\t")  # index, module, arguments
            if len(cols) > 2 and (f"sink_name={name} " in cols[2] + " " or f"source_name={name} " in cols[2] + " "):
                self.pactl("unload-module", cols[0])
                return [cols[1], *cols[2].split()]
        raise RuntimeError(f"no module made {name}")

    def reload(self, module: list[str]) -> None:
        """Load again a module `unload` took away (the device plugged back in)."""
        self.pactl("load-module", *module)

    def runtime_env(self) -> dict[str, str]:
        """Environment for a runtime process: ALSA's 'pulse' device reaches this daemon."""
        return dict(self.env)

    def _spawn(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.children.append(proc)
        return proc

    def close(self) -> None:
        for proc in [*self.children, self.process]:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def start_pulse(root: Path, rate: int = RATE) -> Pulse:
    root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env.update(XDG_RUNTIME_DIR=str(root), HOME=str(root), PULSE_SERVER=f"unix:{root}/pulse/native")
    (root / "pulse").mkdir(exist_ok=True)
    log = root / "pulseaudio.log"
    process = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--system=false", "--disallow-exit",
         "--use-pid-file=false", f"--log-target=file:{log}",
         f"--load=module-native-protocol-unix socket={root}/pulse/native"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pulse = Pulse(root=root, env=env, process=process)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            tail = log.read_text()[-500:] if log.exists() else ""
            raise RuntimeError(f"pulseaudio exited ({process.returncode}): {tail}")
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            break
        if time.monotonic() > deadline:
            pulse.close()
            raise RuntimeError("pulseaudio did not answer within 15 s")
        time.sleep(0.1)
    pulse.pactl("load-module", "module-null-sink", "sink_name=probe", f"rate={rate}", "channels=2",
                "channel_map=front-left,front-right")
    for name, side in (("duplex_user", "front-left"), ("duplex_speaker", "front-right")):
        pulse.pactl("load-module", "module-remap-sink", f"sink_name={name}", "master=probe", "channels=1",
                    f"master_channel_map={side}", "channel_map=mono", "remix=no")
    pulse.pactl("load-module", "module-remap-source", "source_name=duplex_mic", "master=probe.monitor",
                "channels=1", "master_channel_map=front-left", "channel_map=mono", "remix=no")
    pulse.pactl("set-default-sink", "duplex_speaker")
    pulse.pactl("set-default-source", "duplex_mic")
    return pulse


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[Pulse]:
    """A running private PulseAudio loopback; skipped only where PulseAudio or PortAudio is absent."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = start_pulse(tmp_path / "pulse")
    try:
        yield server
    finally:
        server.close()
