"""Keep a live session's microphone and speaker alive: detect a failure, reopen, carry on.

Sound devices go away: the sound server restarts, a sink module is unloaded, a headset is
unplugged, a sink is suspended (its stream simply stops being called). `LiveLink` owns the
session's current pair of streams and shows the engine two stable objects (`mic`, `speaker`)
that outlive any one pair:

- failure: the microphone reports an error or stalls (`LiveInput.read`), or the speaker reports
  an error or its callback stops for `SPEAKER_STALL_S` while the microphone runs. The link
  reports `(False, message)` to whoever attached (the engine: controller -> DEGRADED, which cuts
  the model off and flushes the speaker queue, and a `device` event), drops whatever is still
  queued (a suspended sink would otherwise play the stale reply when it resumes), closes both
  streams and starts retrying;
- while down, `mic.read()` hands the engine silence at once (the engine's clock paces the steps),
  so the session, its UI and its remote control keep running;
- retry: the same devices, by name, reopened with backoff (0.25 s doubling to 4 s), each attempt
  ending only when both streams deliver their first callback; on success the next read reports
  `(True, message)` (controller -> LISTENING) and reads the new microphone;
- after `retry_s` without success, `mic.read()` raises `DeviceError` (the session ends, exit 2);
- a microphone whose level profile changes (`audio_io.mic_profile`: the sound server moved the
  stream to another device, which PortAudio does not report) is reported as `(None, message)`.

The engine sees one speaker queue for the whole session: every pair is opened on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from audio_io.errors import DeviceError
from audio_io.format import STEP_SAMPLES
from audio_io.speaker import SpeakerQueue

SPEAKER_STALL_S = 1.0  # a speaker callback missing this long (sink suspended, server gone) is a failure
FIRST_BACKOFF_S = 0.25
MAX_BACKOFF_S = 4.0

StatusHook = Callable[[bool | None, str], None]  # (False: lost, True: recovered, None: a notice; message)
Opener = Callable[[SpeakerQueue], Awaitable[tuple[Any, Any]]]  # -> started (LiveInput, LiveOutput)


class LiveLink:
    """The current (microphone, speaker) pair and the recovery loop around it."""

    def __init__(self, opener: Opener, *, retry_s: float, queue: SpeakerQueue | None = None) -> None:
        self.opener = opener
        self.retry_s = retry_s
        self.queue = queue or SpeakerQueue()
        self.queue.timed = True
        self.current_mic: Any = None
        self.current_speaker: Any = None
        self.mic = LinkedMic(self)
        self.speaker = LinkedSpeaker(self)
        self.failures = 0
        self.recoveries = 0
        self.down_since: float | None = None  # time.monotonic() of the failure being retried
        self._hook: StatusHook | None = None
        self._retry: asyncio.Task[None] | None = None
        self._gave_up: str | None = None
        self._back: str | None = None  # a recovery not yet reported
        self._closed = False

    async def open(self) -> None:
        self.current_mic, self.current_speaker = await self.opener(self.queue)

    def attach_status(self, hook: StatusHook) -> None:
        """Who hears about failures and recoveries (the engine); called on the loop, between steps."""
        self._hook = hook

    # ---- the engine's reads ---------------------------------------------------------------

    async def read(self) -> np.ndarray | None:
        if self._closed:
            return None
        if self._back is not None:
            message, self._back = self._back, None
            self._report(True, message)
        if self.down_since is not None:
            if self._gave_up:
                raise DeviceError(self._gave_up)
            return np.zeros(STEP_SAMPLES, dtype=np.float32)
        try:
            self._check_speaker()
            chunk = await self.current_mic.read()
        except DeviceError as exc:
            if self._closed:
                return None
            self._fail(str(exc))
            return np.zeros(STEP_SAMPLES, dtype=np.float32)
        if chunk is None and not self._closed:  # the stream ended under us without an error
            self._fail(f"microphone '{self.current_mic.device.name}' closed unexpectedly")
            return np.zeros(STEP_SAMPLES, dtype=np.float32)
        profile = getattr(self.current_mic, "profile", None)
        change = profile.take_change() if profile is not None else None
        if change:
            self._report(None, f"microphone '{self.current_mic.device.name}' changed: {change} "
                               "(moved to another device by the sound server?)")
        route = getattr(self.current_mic, "speaker_route", None)
        moved = route.take_change() if route is not None else None
        if moved:  # the reply would go on out of another device: stop it, reopen by name
            self._fail(f"speaker '{self.current_speaker.device.name}' moved: {moved} "
                       "(the sound server moved it to another device?)")
        return chunk

    def _check_speaker(self) -> None:
        spk = self.current_speaker
        if spk.error:
            raise DeviceError(spk.error)
        quiet = time.monotonic() - spk.last_callback
        if quiet > SPEAKER_STALL_S:
            raise DeviceError(f"speaker '{spk.device.name}' stalled: no callback for {quiet:.1f} s "
                              "(suspended, or the sound server is gone)")

    # ---- failure and recovery -------------------------------------------------------------

    def _fail(self, message: str) -> None:
        self.failures += 1
        self.down_since = time.monotonic()
        spk = self.current_speaker
        if spk is not None and spk.audible_since is not None:
            self.queue.mark(spk.now(), False)  # it went quiet now, whatever the dead callback said
        self._report(False, message)
        self.queue.drop(self.queue.queued)  # nothing stale plays when a device comes back
        self._close_pair()
        self._retry = asyncio.get_running_loop().create_task(self._reopen(message), name="duplex.live.reopen")

    async def _reopen(self, cause: str) -> None:
        deadline = time.monotonic() + self.retry_s
        delay = FIRST_BACKOFF_S
        attempts = 0
        while not self._closed:
            attempts += 1
            try:
                mic, speaker = await self.opener(self.queue)
            except DeviceError as exc:
                last = str(exc)
            else:
                if self._closed:
                    mic.close()
                    speaker.close()
                    return
                self.queue.drop(self.queue.queued)
                self.current_mic, self.current_speaker = mic, speaker
                down = time.monotonic() - (self.down_since or time.monotonic())
                self.down_since = None
                self.recoveries += 1
                self._back = (f"devices back after {down:.1f} s ({attempts} attempts): microphone "
                              f"'{mic.device.name}', speaker '{speaker.device.name}'")
                return
            if time.monotonic() + delay > deadline:
                self._gave_up = f"{cause}; not back after {self.retry_s:.0f} s ({attempts} attempts; last: {last})"
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    def _report(self, ok: bool | None, message: str) -> None:
        if self._hook is not None:
            self._hook(ok, message)

    def _close_pair(self) -> None:
        for device in (self.current_mic, self.current_speaker):
            if device is not None:
                device.close()

    def close(self) -> None:
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        self._close_pair()


class LinkedMic:
    """The engine's input: reads through the link; other attributes are the current microphone's."""

    def __init__(self, link: LiveLink) -> None:
        self._link = link

    async def read(self) -> np.ndarray | None:
        return await self._link.read()

    def attach_status(self, hook: StatusHook) -> None:
        self._link.attach_status(hook)

    def close(self) -> None:
        self._link.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._link.current_mic, name)


class LinkedSpeaker:
    """The engine's output: the session's one queue; other attributes are the current speaker's."""

    clocked = False

    def __init__(self, link: LiveLink) -> None:
        self._link = link
        self.queue = link.queue

    def advance(self) -> None:
        return None

    def close(self) -> None:
        self._link.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._link.current_speaker, name)
