"""The MQTT bridge: a host's events out to a broker, commands in, and a broker that may come and go.

The conversation must never notice the broker. Events reach the bridge through a bounded bus
subscription and are published or, while the broker is away, only counted; on reconnect one
summary event says what was missed (no unbounded queue, no replay). Commands are rate-limited at
the door, parsed strictly (`protocol.parse_command`) and always answered on `cmd/result`. The
broker publishes `offline` on `status` through the last will when the process dies.

Background work runs in one TaskGroup, inside one task started on entry: the connection loop
(connect, announce, serve commands, back off), the event forwarder, the metrics ticker and the
rate-limit notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from duplex.config import MqttConfig
from duplex.errors import ConfigError
from duplex.events import Event, Subscription
from duplex.mqtt.guards import RetainedCommands, auth_message, read_password_file, refusal_code
from duplex.mqtt.limits import Backoff, CommandCounters, GateQueue, TokenBucket
from duplex.mqtt.protocol import (
    OFFLINE,
    ONLINE,
    CommandError,
    Host,
    Outage,
    StateTracker,
    Topics,
    drop_notice,
    parse_command,
    reply,
)

try:
    import aiomqtt
except ImportError as exc:  # the core never imports this module; only an enabled bridge does
    raise ConfigError("mqtt.enabled needs the 'mqtt' extra: pip install 'duplex[mqtt]' (aiomqtt)") from exc

log = logging.getLogger("duplex.mqtt")

INCOMING_QUEUE = 256  # commands admitted by the rate limit and waiting to be answered
DRAIN_S = 2.0  # on exit, how long to keep publishing events still queued
CLOSE_S = 5.0  # how long a client's exit may wait for its disconnect to complete


class Link(enum.Enum):
    CONNECTING = "connecting"
    ONLINE = "online"
    REFUSED = "refused"  # the broker refused the credentials: not retried
    CLOSED = "closed"


@dataclass(slots=True)
class BridgeCounters:
    connects: int = 0
    reconnects: int = 0
    published: int = 0
    missed_offline: int = 0  # events counted instead of published while the broker was away
    last_outage_s: float = 0.0


@dataclass(slots=True)
class _Connection:
    client: aiomqtt.Client
    lost: asyncio.Event


@contextlib.asynccontextmanager
async def closing_within(client: aiomqtt.Client, seconds: float) -> AsyncIterator[aiomqtt.Client]:
    """`async with client`, with an exit that gives up after `seconds`: aiomqtt's own exit waits for
    its disconnect with no limit, and a kiosk whose broker stalls must still shut down (and a
    cancelled connection loop still end)."""
    await client.__aenter__()
    try:
        yield client
    except BaseException as exc:
        await _exit_within(client, seconds, exc)
        raise
    await _exit_within(client, seconds, None)


async def _exit_within(client: aiomqtt.Client, seconds: float, exc: BaseException | None) -> None:
    try:
        await asyncio.wait_for(client.__aexit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None),
                               seconds)
    except TimeoutError:
        log.warning("the MQTT client's disconnect did not complete within %.0f s; dropped", seconds)


class MqttBridge:
    """`async with MqttBridge(config=cfg.mqtt, host=host):` mirrors `host` on the broker until exit.

    Entering never fails because of the broker: an unreachable broker is retried with backoff
    while the host carries on. Enter the bridge before the host starts its first session so that
    nothing is missed.
    """

    def __init__(self, *, config: MqttConfig, host: Host, base_dir: str | Path = ".") -> None:
        self.config = config
        self.topics = Topics.for_config(config)
        self._host = host
        self._base = Path(base_dir)
        self._password = self._read_password()
        self._tls = self._tls_context()
        self.link = Link.CONNECTING
        self.last_error = ""
        self.refused = asyncio.Event()  # set when the broker refused the credentials (see guards.py)
        self.retained = RetainedCommands()
        self._accepted = False  # the broker took these credentials once in this process
        self.counters = BridgeCounters()
        self.commands = CommandCounters()
        self._bucket = TokenBucket(rate=config.max_commands_per_s, burst=config.command_burst)
        self._backoff = Backoff(low=config.reconnect_min_s, high=config.reconnect_max_s)
        self._state = StateTracker()
        self._outage = Outage(since=time.monotonic())
        self._conn: _Connection | None = None
        self._lock = asyncio.Lock()  # one writer at a time for events/state, so order is kept
        self._events: Subscription | None = None
        self._dropped_seen = 0
        self._closing = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    @property
    def online(self) -> bool:
        return self.link is Link.ONLINE

    # ---- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        events = self._host.bus.subscribe(maxsize=self.config.event_queue)
        self._events = events
        self._runner = asyncio.create_task(self._run(events), name=f"duplex.mqtt[{self.config.device_id}]")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._runner is not None
        self._closing.set()
        await asyncio.wait([self._runner])  # it drains, says offline, ends its tasks
        failure = None if self._runner.cancelled() else self._runner.exception()
        if failure is not None:
            raise failure

    async def _run(self, events: Subscription) -> None:
        """The bridge's tasks in one TaskGroup, until `__aexit__` asks to close."""
        name = f"duplex.mqtt[{self.config.device_id}]"
        async with asyncio.TaskGroup() as tasks:
            forwarder = tasks.create_task(self._forward_events(events), name=f"{name}.events")
            loops = [
                tasks.create_task(self._connection_loop(), name=f"{name}.connection"),
                tasks.create_task(self._metrics_loop(), name=f"{name}.metrics"),
                tasks.create_task(self._notice_loop(), name=f"{name}.notices"),
            ]
            await self._closing.wait()
            events.close()  # the forwarder publishes what is queued, then ends
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(forwarder), DRAIN_S)
                conn = self._conn
                if conn is not None:  # a clean exit is not a death: say offline ourselves
                    await asyncio.wait_for(self._send(conn, self.topics.status, OFFLINE, qos=1, retain=True),
                                           DRAIN_S)
            except TimeoutError:
                log.warning("the broker did not take 'offline' within %.0f s", DRAIN_S)
            finally:
                self.link = Link.CLOSED
                for task in (forwarder, *loops):
                    task.cancel()

    # ---- connection -----------------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        gate = GateQueue(INCOMING_QUEUE, bucket=self._bucket, counters=self.commands)
        return aiomqtt.Client(
            cfg.host, cfg.port, username=cfg.username or None, password=self._password,
            identifier=cfg.client_id or f"duplex-{cfg.device_id}", keepalive=cfg.keepalive_s,
            will=aiomqtt.Will(self.topics.status, OFFLINE, qos=1, retain=True),
            queue_type=lambda maxsize: gate,  # type: ignore[arg-type]  # aiomqtt calls queue_type(maxsize=...)
            tls_context=self._tls, timeout=10.0, logger=logging.getLogger("duplex.mqtt.client"),
        )

    async def _connection_loop(self) -> None:
        while True:
            try:
                async with closing_within(self._client(), CLOSE_S) as client:
                    await self._serve(_Connection(client, asyncio.Event()))
            except aiomqtt.MqttError as exc:
                if refusal_code(exc) is not None and not self._accepted:
                    self._refuse(exc)
                    return
                self._failed(exc)
            await asyncio.sleep(self._backoff.next())

    def _refuse(self, exc: aiomqtt.MqttError) -> None:
        cfg = self.config
        self.last_error = auth_message(cfg.host, cfg.port, cfg.username, exc)
        self.link = Link.REFUSED
        log.error("%s", self.last_error)
        self.refused.set()

    async def _serve(self, conn: _Connection) -> None:
        try:
            async with self._lock:
                await self._announce(conn)
                self._conn = conn
            await self._answer_commands(conn)
        finally:
            if self._conn is conn:  # was online: from now on, events are counted, not sent
                self._conn = None
                self._outage.since = time.monotonic()
                self.link = Link.CONNECTING
            conn.lost.set()

    async def _announce(self, conn: _Connection) -> None:
        """Subscribe, then state and (after an outage) the summary, then `online`: ready for commands."""
        client, outage, now = conn.client, self._outage, time.monotonic()
        await client.subscribe(self.topics.cmd, qos=1)
        await client.publish(self.topics.state, self._state.to_bytes(), qos=1, retain=True)
        if self.counters.connects or outage.missed or outage.failed_attempts:
            await client.publish(self.topics.event, outage.summary(now, self._state), qos=1)
            self.counters.last_outage_s = round(now - outage.since, 3)
            log.info("back online after %.2f s; %d events summarised", now - outage.since, outage.missed)
        self.counters.reconnects += 1 if self.counters.connects else 0
        self.counters.connects += 1
        self._accepted = True
        self._outage = Outage(since=now)  # empty: collects what the next outage misses
        self._backoff.reset()
        self.link, self.last_error = Link.ONLINE, ""
        await client.publish(self.topics.status, ONLINE, qos=1, retain=True)
        log.info("online at %s:%d under %s/", self.config.host, self.config.port, self.topics.base)

    def _failed(self, exc: aiomqtt.MqttError) -> None:
        error = str(exc) or type(exc).__name__
        if error != self.last_error:
            log.warning("broker %s:%d: %s; retrying with backoff", self.config.host, self.config.port, error)
        self._outage.failed_attempts += 1
        self.last_error = error

    # ---- commands -------------------------------------------------------------------------

    async def _answer_commands(self, conn: _Connection) -> None:
        async for message in conn.client.messages:
            payload = message.payload if isinstance(message.payload, (bytes, bytearray)) else b""
            if message.retain:  # replayed by the broker at every subscribe: never a command of the moment
                if self.retained.first_sight(bytes(payload)):
                    log.warning("ignored a retained command on %s", self.topics.cmd)
                    self.commands.refused += 1
                    self.commands.answered += 1
                    await conn.client.publish(self.topics.cmd_result, self._retained_reply(bytes(payload)), qos=1)
                continue
            answer = self._answer(bytes(payload))
            self.commands.answered += 1
            await conn.client.publish(self.topics.cmd_result, answer, qos=1)

    def _retained_reply(self, payload: bytes) -> bytes:
        try:
            request_id = parse_command(payload, max_bytes=self.config.max_payload_bytes).id
        except CommandError as exc:
            request_id = exc.id
        return reply(request_id, error=RetainedCommands.error(self.topics.cmd))

    def _answer(self, payload: bytes) -> bytes:
        request = None
        try:
            request = parse_command(payload, max_bytes=self.config.max_payload_bytes)
            self._host.command(request.cmd)
        except CommandError as exc:
            self.commands.refused += 1
            return reply(request.id if request else exc.id, cmd=request.cmd if request else exc.cmd, error=str(exc))
        except Exception as exc:  # a bug must cost one reply, never the bridge
            log.exception("command %s failed", request)
            self.commands.refused += 1
            return reply(request.id if request else None, error=f"internal error: {type(exc).__name__}")
        return reply(request.id, cmd=request.cmd)

    async def _notice_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            conn, dropped = self._conn, self.commands.dropped_unreported
            if conn is not None and dropped:
                self.commands.dropped_unreported = 0
                await self._send(conn, self.topics.cmd_result, drop_notice(dropped), qos=1)

    # ---- events and metrics ---------------------------------------------------------------

    async def _forward_events(self, events: Subscription) -> None:
        async for event in events:
            async with self._lock:
                overflowed, self._dropped_seen = events.dropped - self._dropped_seen, events.dropped
                await self._forward(event, overflowed)

    async def _forward(self, event: Event, overflowed: int) -> None:
        changed = self._state.feed(event)
        conn = self._conn
        if conn is not None and await self._send(conn, self.topics.event, event.to_json().encode(), qos=0):
            self.counters.published += 1
            if changed:
                await self._send(conn, self.topics.state, self._state.to_bytes(), qos=1, retain=True)
            return
        self._outage.add(event, overflowed)
        self.counters.missed_offline += 1 + overflowed

    async def _metrics_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.metrics_interval_s)
            conn = self._conn
            if conn is not None:
                payload = json.dumps(self.metrics(), separators=(",", ":")).encode()
                await self._send(conn, self.topics.metrics, payload, qos=0)

    def metrics(self) -> dict[str, Any]:
        """The `metrics` payload: the host's figures plus the bridge's own counters."""
        events = self._events
        bridge = {**asdict(self.counters), **asdict(self.commands), "link": self.link.value,
                  "events_dropped": events.dropped if events is not None else 0}
        bridge.pop("dropped_unreported", None)
        return {**self._host.metrics(), "bridge": bridge}

    async def _send(self, conn: _Connection, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        """Publish unless the connection is lost first; never raises for network reasons."""
        publish = asyncio.ensure_future(conn.client.publish(topic, payload, qos=qos, retain=retain))
        lost = asyncio.ensure_future(conn.lost.wait())
        try:
            await asyncio.wait({publish, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not publish.done():
                publish.cancel()
        return publish.done() and not publish.cancelled() and publish.exception() is None

    # ---- credentials ----------------------------------------------------------------------

    def _read_password(self) -> str | None:
        cfg = self.config
        if not cfg.password_file:
            return cfg.password or None
        return read_password_file(_resolve(self._base, cfg.password_file))

    def _tls_context(self) -> ssl.SSLContext | None:
        cfg = self.config
        if not cfg.tls:
            return None
        try:
            context = ssl.create_default_context(cafile=str(_resolve(self._base, cfg.ca_file)) if cfg.ca_file else None)
            if cfg.cert_file:
                context.load_cert_chain(str(_resolve(self._base, cfg.cert_file)),
                                        str(_resolve(self._base, cfg.key_file)) if cfg.key_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"mqtt.tls: cannot load the CA or client certificate ({exc})") from exc
        return context


def _resolve(base: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else base / path
