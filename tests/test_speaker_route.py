"""A speaker moved by the sound server shows as a change in its echo on the microphone (issue 13).

PortAudio keeps calling back as if nothing happened (measured on PulseAudio 16: same device name,
same pace, no underflow); `SpeakerRoute` reads the echo path's verdicts instead, and `LiveLink`
treats a change as a lost speaker: DEGRADED, the queue flushed, both streams reopened by name.
"""

from __future__ import annotations

import asyncio
import re

import numpy as np

from audio_io.echo_path import FRAME, EchoPath
from audio_io.live_link import LiveLink
from audio_io.speaker_route import SpeakerRoute
from tests.test_live_echo_path import RATE, room, talk
from tests.test_live_link import Opener, _session


def _feed(route: SpeakerRoute, near: np.ndarray, far: np.ndarray) -> list[tuple[float, str]]:
    """Frames through the route as LiveInput feeds them; (time, change) for each change reported."""
    changes = []
    for i in range(0, far.size - FRAME + 1, FRAME):
        route.add(near[i : i + FRAME], far[i : i + FRAME])
        if (i // FRAME) % 16 == 15:  # one check per 160 ms chunk
            route.check()
            if change := route.take_change():
                changes.append((i / RATE, change))
    return changes


def test_a_headset_reply_that_moves_to_speakers_is_one_change_when_the_echo_appears() -> None:
    far = talk(12.0, seed=4)
    near = np.concatenate([room(far[: 6 * RATE], None), room(far, -3.0, delay_s=0.1, seed=5)[6 * RATE :]])
    changes = _feed(route := SpeakerRoute(), near, far)
    assert len(changes) == 1, changes
    at, change = changes[0]
    assert 6.0 < at <= 9.0, changes  # the echo is measured within a few updates of the move
    assert "from absent to present at -3 dB" in change, change
    assert route.changes == 1


def test_an_echo_that_stays_the_same_is_never_a_change() -> None:
    for echo_db in (None, -12.0):
        far = talk(14.0, seed=6)
        assert _feed(SpeakerRoute(), room(far, echo_db, seed=7), far) == [], echo_db


def test_an_echo_that_vanishes_or_jumps_by_20_db_is_a_change() -> None:
    far = talk(14.0, seed=8)
    gone = np.concatenate([room(far, -6.0, seed=9)[: 7 * RATE], room(far, None, seed=9)[7 * RATE :]])
    changes = _feed(SpeakerRoute(), gone, far)
    assert len(changes) == 1 and "from present at -6 dB to absent" in changes[0][1], changes
    louder = np.concatenate([room(far, -32.0, seed=9)[: 7 * RATE], room(far, -6.0, seed=9)[7 * RATE :]])
    changes = _feed(SpeakerRoute(), louder, far)
    assert len(changes) == 1 and re.search(r"from -3[0-4] dB to -[5-7] dB", changes[0][1]), changes


def test_a_shared_echo_path_is_read_not_fed_twice() -> None:
    path = EchoPath()
    route = SpeakerRoute(path)
    route.add(np.ones(FRAME, np.float32), np.ones(FRAME, np.float32))
    assert not route.owned and path._n == 0  # the gated canceller feeds it


def test_the_link_treats_a_moved_speaker_as_lost_stops_the_reply_and_reopens() -> None:
    async def main() -> None:
        opener = Opener()
        link = LiveLink(opener, retry_s=5.0)
        news: list[tuple[bool | None, str]] = []
        link.attach_status(lambda ok, msg: news.append((ok, msg)))
        await link.open()
        route = SpeakerRoute()
        link.current_mic.speaker_route = route  # type: ignore[attr-defined]
        await _session(link, 2)
        link.queue.push(np.ones(16_000, dtype=np.float32))  # the rest of the reply, still queued
        route.change = "its echo on the microphone went from absent to present at -3 dB"
        old = link.current_speaker
        await _session(link, 1)
        assert news[0][0] is False and news[0][1].startswith("speaker 'pulse' moved: its echo"), news
        assert old.closed and link.queue.queued == 0  # the reply does not go on out of another device
        await asyncio.sleep(0.1)
        await _session(link, 1)
        assert news[-1][0] is True and link.current_speaker is not old  # reopened by name
        link.close()

    asyncio.run(main())


def test_one_odd_verdict_is_not_a_move() -> None:
    """A single verdict off the baseline (a quiet syllable, a cough over the reply) reports nothing."""
    route = SpeakerRoute()
    path = route.path
    for present, coupling in [(False, -60.0), (False, -58.0), (True, -3.0), (False, -59.0), (True, -3.0),
                              (True, -3.0), (False, -60.0)]:
        path.present, path.coupling_db = present, coupling
        path.verdicts += 1
        route.check()
    assert route.take_change() is None and route.changes == 0
