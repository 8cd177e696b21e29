"""The kiosk's session supervisor: one session at a time, started on request, restarted after failures.

A kiosk runs for days while sessions come and go: an operator stops and starts them, a device
error ends one. The host owns a bus that outlives the sessions and carries every event of every
session in order, so the MQTT bridge (or a JSON log) follows one stream. Commands from outside
(`duplex.commands`, plus the host's own `Start` and `Ping`) are checked against the current
session and refused with a reason when they cannot apply. Kiosk code, not MQTT code: it runs the
same with the bridge off.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

from duplex.commands import Command, CommandError, HostCommand, Ping, Start, Stop
from duplex.errors import DuplexError
from duplex.events import Error, Event, EventBus
from duplex.session import DuplexSession

log = logging.getLogger("duplex.kiosk")

MAX_RESTART_DELAY_S = 60.0
MAX_EARLY_COMMANDS = 16  # session commands held while a session starts (a 'start' then 'mute' at once)


class SessionHost:
    """Runs sessions made by `open_session`, one at a time, for as long as the host is entered.

    `open_session` returns a new, not yet entered DuplexSession, or is a coroutine function that
    does (to open and start sound devices first); either may raise, which counts as a failure.
    `autostart` starts the first session at once (else a `start` command does); a session that
    raises or reports an error is restarted after `restart_delay_s`, doubling per consecutive
    failure up to a minute (0 = never restart); `once` ends the host after its first session.
    """

    def __init__(self, *, open_session: Callable[[], DuplexSession | Awaitable[DuplexSession]],
                 autostart: bool = True, restart_delay_s: float = 2.0, once: bool = False) -> None:
        self.bus = EventBus()
        self._open_session = open_session
        self._restart_delay_s = restart_delay_s
        self._once = once
        self._wanted = asyncio.Event()
        if autostart:
            self._wanted.set()
        self._finished = asyncio.Event()
        self._between = asyncio.Event()  # set while no session is being run
        self._between.set()
        self._session: DuplexSession | None = None
        self._early: list[Command] = []  # accepted while the wanted session starts; applied at its start
        self._supervisor: asyncio.Task[None] | None = None
        self._last_t = 0.0
        self.sessions_started = 0
        self.failures = 0  # consecutive
        self.last_error = ""
        self.started_at = time.monotonic()

    async def __aenter__(self) -> Self:
        self._supervisor = asyncio.create_task(self._supervise(), name="duplex.host.supervisor")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._supervisor is not None
        try:
            self._wanted.clear()  # no restart from here on
            if self._session is not None:
                if self._session.running:
                    self._session.stop()  # ends at its next step
                await self._between.wait()  # its last events are on the bus
        finally:
            self._supervisor.cancel()
            await asyncio.wait([self._supervisor])  # it ends at its next await
        if not self._supervisor.cancelled() and self._supervisor.exception() is not None:
            raise self._supervisor.exception()  # type: ignore[misc]

    @property
    def session(self) -> DuplexSession | None:
        """The session being run, from its start until its last event is on `bus`; else None."""
        return self._session

    async def finished(self) -> None:
        """With `once`: wait until the first session has ended."""
        await self._finished.wait()

    # ---- commands -------------------------------------------------------------------------

    def start(self) -> None:
        if self._session is not None or self._wanted.is_set():
            raise CommandError("a session is already running (send 'stop' first)", cmd=Start())
        self._wanted.set()

    def command(self, cmd: HostCommand) -> None:
        """Apply one outside command now (session commands take effect at its next step)."""
        match cmd:
            case Ping():
                return
            case Start():
                self.start()
                return
        session = self._session
        if isinstance(cmd, Stop) and session is None and self._wanted.is_set():
            self._wanted.clear()  # a failed session is waiting out its restart delay: cancel the restart
            return
        if (session is None or not session.running) and self._wanted.is_set() and not isinstance(cmd, Stop):
            # A session is starting (loading its model, opening devices): an operator's 'start' then
            # 'mute' must not lose the mute. Held, in order, and applied when the session runs.
            if len(self._early) >= MAX_EARLY_COMMANDS:
                raise CommandError("too many commands while the session starts; wait for it", cmd=cmd)
            self._early.append(cmd)
            return
        if session is None or not session.running:
            raise CommandError(f"no session is running ('{cmd.name}' needs one; send 'start')", cmd=cmd)
        if isinstance(cmd, Stop):
            self._wanted.clear()
        session.submit(cmd)

    def metrics(self) -> dict[str, Any]:
        session = self._session
        return {
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "sessions_started": self.sessions_started,
            "consecutive_failures": self.failures,
            "last_error": self.last_error,
            "session": session.stats().to_dict() if session is not None else None,
        }

    # ---- supervision ----------------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            await self._wanted.wait()
            ok = await self._run_one()
            if ok:
                self.failures = 0
                self._wanted.clear()
            else:
                self.failures += 1
            if self._once:
                self._finished.set()
                return
            if not ok and self._restart_delay_s > 0 and self._wanted.is_set():
                delay = min(MAX_RESTART_DELAY_S, self._restart_delay_s * 2 ** (self.failures - 1))
                log.warning("session failed (%s); restarting in %.1f s", self.last_error, delay)
                await asyncio.sleep(delay)
            elif not ok:
                self._wanted.clear()

    async def _run_one(self) -> bool:
        """Run one session to its end, forwarding its events; False if it failed."""
        failed = False
        try:
            made = self._open_session()
            session = await made if inspect.isawaitable(made) else made
            events = session.events(maxsize=0)  # subscribed before the start: nothing is missed
            async with session:
                self._session = session
                self._between.clear()
                self.sessions_started += 1
                self._apply_early(session)
                async for event in events:
                    self._forward(event)
                    if isinstance(event, Error):
                        failed = True
                        self.last_error = event.message
        except Exception as exc:  # a session must never take the kiosk down with it
            failed = True
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._forward(Error(self._last_t, self.last_error))
            log.error("session failed: %s", self.last_error)
        finally:
            self._session = None
            self._early.clear()
            self._between.set()
        return not failed

    def _apply_early(self, session: DuplexSession) -> None:
        """The commands accepted while this session started, in order; a 'stop' meanwhile stops it."""
        early, self._early = self._early, []
        if not self._wanted.is_set():  # 'stop' arrived while it was starting
            session.stop()
            return
        for cmd in early:
            try:
                session.submit(cmd)
            except DuplexError as exc:  # e.g. 'say' on a model that cannot speak on request
                log.warning("command %s given while the session started was refused: %s", cmd.name, exc)

    def _forward(self, event: Event) -> None:
        self._last_t = event.t
        self.bus.publish(event)
