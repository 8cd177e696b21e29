"""Real-broker test helpers: Debian's mosquitto on a free localhost port, and an MQTT watcher.

Each broker runs from a generated config file in the test's temporary folder (anonymous, or
username/password through `mosquitto_passwd`), can be SIGKILLed and restarted on the same port,
and leaves its log beside its config for post-mortems. `Watcher` records every message on a
topic filter with aiomqtt so tests wait on conditions (with generous timeouts), never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audio_io.format import STEP_SAMPLES
from audio_io.wav import WavInput
from duplex.config import MqttConfig
from tests.speech import silence, write_wav

try:
    import aiomqtt

    from duplex.mqtt.bridge import CLOSE_S, closing_within
except ImportError:  # the broker fixtures skip, saying why
    aiomqtt = None  # type: ignore[assignment]

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
CLIENTS = {name: shutil.which(name) or "" for name in ("mosquitto_passwd", "mosquitto_pub", "mosquitto_sub",
                                                        "mosquitto_rr")}


def need_broker() -> None:
    """Skip (saying what to install) where the real broker or the MQTT client library is missing."""
    if MOSQUITTO is None or not all(CLIENTS.values()):
        pytest.skip("needs Debian's mosquitto and mosquitto-clients (see the README's test command)")
    if aiomqtt is None:
        pytest.skip("needs the 'mqtt' extra (aiomqtt)")

ROOT = Path(__file__).resolve().parent.parent
DEVICE = "kiosk-test"
BASE = f"duplex/{DEVICE}"  # the topics of a bridge made with Broker.config()
TIMEOUT = 20.0  # generous: other test runs may be loading the machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Broker:
    """One mosquitto process; `start()` again after `kill()` restarts it on the same port."""

    folder: Path
    users: dict[str, str] = field(default_factory=dict)
    acl: str = ""  # the text of a mosquitto acl_file ('' = no ACL)
    tls: bool = False  # a TLS listener with a certificate from a CA made for the test (ca.crt)
    persistence: bool = False
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / "mosquitto.log"

    def _write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} {self.host}", "log_type all",
                 *(["user root"] if os.geteuid() == 0 else []),  # else it drops to 'mosquitto': no access here
                 f"persistence {'true' if self.persistence else 'false'}"]
        if self.persistence:
            lines += [f"persistence_location {self.folder}/", "autosave_interval 1"]
        if self.users:
            self._write_passwords()
            lines += ["allow_anonymous false", f"password_file {self.folder / 'passwd'}"]
        else:
            lines += ["allow_anonymous true"]
        if self.tls:
            make_certificates(self.folder, self.host)
            lines += [f"cafile {self.folder / 'ca.crt'}", f"certfile {self.folder / 'server.crt'}",
                      f"keyfile {self.folder / 'server.key'}"]
        if self.acl:
            (self.folder / "acl").write_text(self.acl)
            lines += [f"acl_file {self.folder / 'acl'}"]
        conf = self.folder / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def _write_passwords(self) -> None:
        passwd = self.folder / "passwd"
        passwd.unlink(missing_ok=True)
        for i, (user, password) in enumerate(self.users.items()):
            flags = ["-c"] if i == 0 else []
            subprocess.run([CLIENTS["mosquitto_passwd"], *flags, "-b", str(passwd), user, password],
                           check=True, capture_output=True)

    def admit(self, user: str, password: str) -> None:
        """Add a user to the running broker (password file rewritten, then SIGHUP to reload it)."""
        self.users[user] = password
        self._write_passwords()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def start(self) -> None:
        conf = self._write_config()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start: {self.log.read_text()[-2000:]}")
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex((self.host, self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {TIMEOUT} s")

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=TIMEOUT)
        self.proc = None

    def config(self, **overrides: Any) -> MqttConfig:
        """An `mqtt` config section pointing at this broker (first user's credentials, if any)."""
        user, password = next(iter(self.users.items()), ("", ""))
        base = MqttConfig(enabled=True, host=self.host, port=self.port, username=user, password=password,
                          device_id=DEVICE, metrics_interval_s=0.5, reconnect_max_s=1.0)
        return dataclasses.replace(base, **overrides)

    def config_yaml(self, **overrides: Any) -> str:
        """The same section as a kiosk YAML file's text."""
        cfg = self.config(**overrides)
        return "mqtt:\n" + "".join(f"  {f.name}: {json.dumps(getattr(cfg, f.name))}\n"
                                     for f in dataclasses.fields(cfg))

    def client(self, **kw: Any) -> Any:
        user, password = next(iter(self.users.items()), (None, None))
        if self.tls:
            kw["tls_context"] = ssl.create_default_context(cafile=str(self.folder / "ca.crt"))
        return aiomqtt.Client(self.host, self.port, username=user, password=password, **kw)

    def cli(self, tool: str, *args: str) -> list[str]:
        """argv for one of Debian's clients against this broker."""
        argv = [CLIENTS[tool], "-h", self.host, "-p", str(self.port)]
        if self.users:
            user, password = next(iter(self.users.items()))
            argv += ["-u", user, "-P", password]
        if self.tls:
            argv += ["--cafile", str(self.folder / "ca.crt")]
        return [*argv, *args]


def make_certificates(folder: Path, host: str) -> None:
    """A CA and a server certificate for `host` (IP SAN), made with the openssl command."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=duplex test CA",
            "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}", "-keyout", "server.key",
            "-out", "server.csr")
    (folder / "san.ext").write_text(f"subjectAltName=IP:{host}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """An anonymous broker without ACLs."""
    need_broker()
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.kill()


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker that only admits the user `kiosk` (password file made with mosquitto_passwd)."""
    need_broker()
    b = Broker(tmp_path / "auth-broker", users={"kiosk": "s3cret-Pw"})
    b.start()
    yield b
    b.kill()


@dataclass
class Seen:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class Watcher:
    """Records every message under `filters`; reconnects by itself if the broker goes away."""

    def __init__(self, broker: Broker, *filters: str, identifier: str | None = None, persistent: bool = False) -> None:
        self.broker = broker
        self.filters = filters
        self.identifier = identifier
        self.persistent = persistent
        self.seen: list[Seen] = []
        self.connections = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watcher:
        self._task = asyncio.create_task(self._run(), name="test.watcher")
        await self.wait_until(lambda: self.connections > 0, what="the watcher to subscribe")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                client = self.broker.client(identifier=self.identifier, clean_session=not self.persistent)
                async with closing_within(client, CLOSE_S) as c:  # never a test that hangs on its exit
                    for f in self.filters:
                        await c.subscribe(f, qos=1)
                    self.connections += 1
                    self._changed.set()
                    async for m in c.messages:
                        payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                        self.seen.append(Seen(str(m.topic), payload, bool(m.retain), time.monotonic()))
                        self._changed.set()
            except aiomqtt.MqttError:
                await asyncio.sleep(0.02)

    def on(self, topic: str) -> list[Seen]:
        return [s for s in self.seen if s.topic == topic]

    async def wait_until(self, condition: Callable[[], Any], *, timeout: float = TIMEOUT, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while not (result := condition()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}; "
                                     f"seen: {[(s.topic, s.payload[:80]) for s in self.seen[-10:]]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
        return result

    async def wait_for(self, topic: str, predicate: Callable[[Any], bool] = lambda _: True, *,
                       timeout: float = TIMEOUT) -> Any:
        """The first JSON (or text) payload on `topic` that satisfies `predicate`."""
        def find() -> Any:
            for s in self.on(topic):
                value = _decode(s.payload)
                if predicate(value):
                    return value
            return None
        await self.wait_until(lambda: find() is not None, timeout=timeout, what=f"a message on {topic}")
        return find()


def _decode(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")


@contextlib.asynccontextmanager
async def commander(broker: Broker, base: str) -> AsyncIterator[Callable[..., Any]]:
    """send(obj_or_bytes) -> the reply on `<base>/cmd/result` with the same id."""
    async with closing_within(broker.client(), CLOSE_S) as client, Watcher(broker, f"{base}/cmd/result") as results:
        async def send(payload: Any, *, match_id: Any = None) -> Any:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            want = payload.get("id") if isinstance(payload, dict) else match_id
            before = len(results.seen)
            await client.publish(f"{base}/cmd", data, qos=1)
            return await results.wait_until(
                lambda: next((r for s in results.seen[before:] if (r := s.json()).get("id") == want), None),
                what=f"the reply to {data[:60]!r}")
        yield send


class EndlessInput:
    """An InputDevice: a WAV once, then silence until the session is stopped (a quiet kiosk room)."""

    def __init__(self, path: Path) -> None:
        self._wav = WavInput(path)

    async def read(self) -> np.ndarray | None:
        chunk = await self._wav.read()
        return chunk if chunk is not None else np.zeros(STEP_SAMPLES, dtype=np.float32)

    def close(self) -> None:
        self._wav.close()


@pytest.fixture
def question(speech: Callable[..., Path], tmp_path: Path) -> Path:
    """About 5.5 s of session: a spoken question, then room for the echo reply."""
    return write_wav(tmp_path / "question.wav", silence(0.5), speech("What is the weather like today?"), silence(3.0))


TIMING_KEYS = {"step_ms_p50", "step_ms_p99", "realtime_factor", "overruns"}


def comparable(events: list[Any]) -> list[dict[str, Any]]:
    """Event dicts without the wall-clock figures that differ run to run."""
    return [{k: v for k, v in e.to_dict().items() if k not in TIMING_KEYS} for e in events
            if e.type.value != "overrun"]  # a step late on a loaded machine is not a change of behaviour


async def reference_run(question: Path, output: Path | None = None) -> list[Any]:
    """The same input through the CLI's offline path, without any MQTT: the events to expect."""
    from tests.fakes import play_offline

    return (await play_offline(None, WavInput(question), output)).events


def kiosk_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "duplex.kiosk_cli", *args]


def kiosk_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


SCHEMAS = ROOT / "examples" / "schemas"


def check_schema(name: str, payload: bytes | Any) -> None:
    """Validate one payload against examples/schemas/<name>.json."""
    import jsonschema

    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    value = payload.decode() if isinstance(payload, bytes) and name == "status" else payload
    if isinstance(value, bytes):
        value = json.loads(value)
    jsonschema.validate(value, schema)
