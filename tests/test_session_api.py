"""The embedding API: DuplexSession runs the same conversation as the CLI, and commands reach it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_io.format import SAMPLE_RATE
from audio_io.wav import NullOutput, WavInput, WavOutput
from duplex.backbones.base import Model
from duplex.backbones.framebank import FrameBank, FrameBankVocoder
from duplex.config import Config
from duplex.errors import AudioFileError
from duplex.events import Event, EventType
from duplex.session import DuplexSession, NotSupportedError, SessionError
from duplex.tokens import EOT, SHIFT, THINK, Token, audio
from tests.fakes import play_offline, scripted_model
from tests.speech import silence, write_wav

ROOT = Path(__file__).resolve().parent.parent
TIMING_KEYS = {"step_ms_p50", "step_ms_p99", "realtime_factor", "overruns"}


@pytest.fixture
def question(speech: Callable[..., Path], tmp_path: Path) -> Path:
    """A question with room for the model's answer after it."""
    return write_wav(tmp_path / "question.wav", silence(0.5), speech("What is the weather like today?"), silence(3.0))


def comparable(events: Sequence[Event]) -> list[dict[str, object]]:
    return [{k: v for k, v in e.to_dict().items() if k not in TIMING_KEYS} for e in events
            if e.type.value != "overrun"]  # a step late on a loaded machine is not a change of behaviour


def kinds(events: Sequence[Event], type: EventType) -> list[dict[str, object]]:
    return [dict(e.data) for e in events if e.type is type]


async def reference(question: Path, out: Path | None) -> list[Event]:
    """The events of the same input through the CLI's offline path (DuplexSession.play, device objects given)."""
    result = await play_offline(Config(), WavInput(question), WavOutput(out) if out else NullOutput())
    return result.events


async def collect(session: DuplexSession) -> list[Event]:
    return [event async for event in session.events()]


async def test_a_session_produces_the_events_and_audio_of_the_offline_cli(question: Path, tmp_path: Path) -> None:
    ref = await reference(question, tmp_path / "cli.wav")
    async with DuplexSession(input=question, output=tmp_path / "api.wav") as session:
        events = await collect(session)
    assert comparable(events) == comparable(ref)
    assert kinds(events, EventType.CONTROL) == [{"token": "SHIFT"}, {"token": "EOT"}]
    cli, api = sf.read(tmp_path / "cli.wav")[0], sf.read(tmp_path / "api.wav")[0]
    assert np.array_equal(cli, api) and np.abs(api).max() > 0.05


async def test_events_requested_first_thing_in_the_block_start_at_the_session_start(question: Path) -> None:
    async with DuplexSession(input=question) as session:
        events = await collect(session)
    assert events[0].type is EventType.SESSION and events[0].data["what"] == "started"
    assert events[-1].type is EventType.SESSION and events[-1].data["what"] == "stopped"


async def test_stop_speaking_cuts_the_reply_at_the_next_step(question: Path, tmp_path: Path) -> None:
    full = await reference(question, tmp_path / "full.wav")
    async with DuplexSession(input=question, output=tmp_path / "cut.wav") as session:
        events = []
        async for event in session.events():
            events.append(event)
            if event.type is EventType.SPEAKER and event.data["what"] == "started":
                session.stop_speaking()
    assert {"command": "stop_speaking"} in kinds(events, EventType.COMMAND)
    assert {"from": "SPEAKING", "to": "LISTENING"} in kinds(events, EventType.STATE)
    audible = [np.count_nonzero(np.abs(sf.read(p)[0]) > 1e-3) for p in (tmp_path / "full.wav", tmp_path / "cut.wav")]
    assert 0 < audible[1] < audible[0] / 2
    assert {"token": "SHIFT"} in kinds(full, EventType.CONTROL)  # the uninterrupted run did reply


async def test_a_muted_session_hears_silence_and_never_answers(question: Path) -> None:
    async with DuplexSession(input=question) as session:
        session.mute()
        events = await collect(session)
    assert {"what": "muted"} in kinds(events, EventType.MIC)
    assert kinds(events, EventType.CONTROL) == []


async def test_unmute_and_reset_are_applied_and_reported(question: Path) -> None:
    async with DuplexSession(input=question) as session:
        session.mute()
        session.unmute()
        session.reset()
        events = await collect(session)
    commands = [c["command"] for c in kinds(events, EventType.COMMAND)]
    assert commands == ["mute", "unmute", "reset"]
    assert {"what": "unmuted"} in kinds(events, EventType.MIC)
    assert kinds(events, EventType.CONTROL) == [{"token": "SHIFT"}, {"token": "EOT"}]  # still answers


async def test_leaving_the_block_stops_the_session_and_closes_its_devices(question: Path, tmp_path: Path) -> None:
    out = tmp_path / "early.wav"
    async with DuplexSession(input=question, output=out) as session:
        async for event in session.events():
            if event.type is EventType.STATE and event.data["to"] == "SPEAKING":
                break
    assert not session.running and session.phase.value == "IDLE"
    assert 0 < sf.info(str(out)).duration < 4.0  # closed and readable, cut short
    with pytest.raises(SessionError, match="has ended"):
        session.mute()
    assert [e.type for e in await collect(session)] == []  # an ended session yields nothing


async def test_wait_lets_an_offline_input_play_to_its_end(question: Path) -> None:
    async with DuplexSession(input=question) as session:
        assert session.stats().running
        stats = await session.wait()
    assert not stats.running and stats.state == "IDLE"
    assert stats.steps == round(stats.session_s / 0.16) > 20 and stats.events >= 10 and stats.realtime_factor > 1


async def test_two_sessions_side_by_side_share_nothing(question: Path, speech: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    other = write_wav(tmp_path / "other.wav", silence(0.3), speech("Please turn the lights off."), silence(2.5))
    solo = [await reference(q, tmp_path / f"solo{i}.wav") for i, q in enumerate((question, other))]

    async def run(q: Path, out: Path) -> list[Event]:
        async with DuplexSession(input=q, output=out) as session:
            return await collect(session)

    together = await asyncio.gather(*(run(q, tmp_path / f"both{i}.wav") for i, q in enumerate((question, other))))
    for i in range(2):
        assert comparable(together[i]) == comparable(solo[i])
        assert np.array_equal(sf.read(tmp_path / f"both{i}.wav")[0], sf.read(tmp_path / f"solo{i}.wav")[0])


async def test_say_is_refused_clearly_by_a_backbone_that_only_answers(question: Path) -> None:
    async with DuplexSession(input=question, model=scripted_model([])) as session:
        with pytest.raises(NotSupportedError, match=r"say\(\): backbone 'scripted' cannot speak on request"):
            session.say(np.zeros(1600, dtype=np.float32))


async def test_say_a_file_gives_the_same_errors_as_say_samples_before_reading_it(tmp_path: Path) -> None:
    """say(path) asks the engine what a Say would be told (not started, ended, cannot say), then
    checks the file: a session that cannot say never opens it."""
    quiet = write_wav(tmp_path / "quiet.wav", silence(0.3))
    missing = tmp_path / "missing.wav"
    session = DuplexSession(input=quiet, model=scripted_model([]))
    for what in (np.zeros(160, np.float32), missing):
        with pytest.raises(SessionError, match=r"say\(\): session .* was not started"):
            session.say(what)
    async with session:
        for what in (np.zeros(160, np.float32), missing):
            with pytest.raises(NotSupportedError, match=r"say\(\): backbone 'scripted' cannot speak on request"):
                session.say(what)
    for what in (np.zeros(160, np.float32), missing):
        with pytest.raises(SessionError, match=r"say\(\): session .* has ended"):
            session.say(what)


class SayingBackbone:
    """A backbone that listens (THINK) until asked to say something, then speaks it: SHIFT, units, EOT."""

    def __init__(self, bank: FrameBank) -> None:
        self.bank = bank
        self.requests: deque[np.ndarray] = deque()
        self.units: list[int] = []
        self.speaking = False

    def say(self, samples: np.ndarray) -> None:
        self.requests.append(samples)

    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        if not self.speaking and self.requests:
            self.units, self.speaking = self.bank.add(self.requests.popleft()), True
            return (SHIFT, *self._units(3))
        if not self.speaking:
            return (THINK,) * 4
        tokens = self._units(4)
        if len(tokens) < 4:
            self.speaking = False
            tokens += [EOT] + [THINK] * (3 - len(tokens))
        return tokens

    def _units(self, n: int) -> list[Token]:
        taken, self.units = self.units[:n], self.units[n:]
        return [audio(u) for u in taken]

    def heard(self, units: int) -> None:
        pass

    def reset(self) -> None:
        self.units, self.speaking = [], False


async def test_say_speaks_the_given_audio_on_a_backbone_that_supports_it(tmp_path: Path) -> None:
    bank = FrameBank(256)
    model = Model(backbone=SayingBackbone(bank), vocoder=FrameBankVocoder(bank), name="test/saying", can_say=True)
    quiet = write_wav(tmp_path / "quiet.wav", silence(2.0))
    tone = (0.3 * np.cos(2 * np.pi * 440 * np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE)).astype(np.float32)
    async with DuplexSession(input=quiet, output=tmp_path / "said.wav", model=model) as session:
        subscription = session.events()
        session.say(tone)
        events = [event async for event in subscription]
    assert [e.type for e in events[:3]] == [EventType.SESSION, EventType.STATE, EventType.COMMAND]
    assert events[2].data == {"command": "say", "seconds": 0.5}
    assert kinds(events, EventType.CONTROL) == [{"token": "SHIFT"}, {"token": "EOT"}]
    played = sf.read(tmp_path / "said.wav", dtype="float32")[0]
    start = int(np.flatnonzero(np.abs(played) > 1e-3)[0])
    units = played[start : start + (played.size - start) // 640 * 640].reshape(-1, 640)
    spoken = np.concatenate([u for u in units if np.abs(u).max() > 1e-3])  # 40 ms units, gaps left out
    assert np.allclose(spoken[: tone.size], tone, atol=1e-3) and spoken.size <= tone.size + 640


async def test_a_missing_input_file_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    session = DuplexSession(input=tmp_path / "nope.wav", output=tmp_path / "out.wav")
    with pytest.raises(AudioFileError, match="nope.wav: no such file"):
        async with session:
            pass
    assert not (tmp_path / "out.wav").exists()
    with pytest.raises(SessionError, match="was not started"):
        session.mute()


async def test_a_session_runs_once(question: Path) -> None:
    session = DuplexSession(input=question)
    async with session:
        pass
    with pytest.raises(SessionError, match="runs once"):
        async with session:
            pass


class BrokenBackbone(SayingBackbone):
    def step(self, chunk: np.ndarray) -> Sequence[Token]:
        raise RuntimeError("backbone exploded")


async def test_a_backbone_failure_surfaces_as_itself_not_as_a_group(tmp_path: Path) -> None:
    bank = FrameBank(16)
    model = Model(backbone=BrokenBackbone(bank), vocoder=FrameBankVocoder(bank), name="test/broken")
    with pytest.raises(RuntimeError, match="backbone exploded"):
        async with DuplexSession(input=write_wav(tmp_path / "q.wav", silence(1.0)), model=model) as session:
            await session.wait()


async def test_any_input_device_works(question: Path, tmp_path: Path) -> None:
    ref = await reference(question, None)
    async with DuplexSession(input=WavInput(question), realtime=False) as session:
        events = await collect(session)
    assert comparable(events) == comparable(ref)


def test_examples_embed_runs_as_documented(question: Path, tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # as if installed with `pip install -e .`
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "embed.py"), str(question), "--output", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert '"type":"state","from":"LISTENING","to":"SPEAKING"' in done.stdout
    assert "stats:" in done.stdout and sf.info(str(out)).duration > 3.0
    missing = subprocess.run([sys.executable, str(ROOT / "examples" / "embed.py"), str(tmp_path / "nope.wav")],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert missing.returncode == 2 and missing.stderr.strip().endswith("nope.wav: no such file")


async def test_devices_given_to_a_session_are_closed_when_its_model_fails_to_load(tmp_path: Path) -> None:
    from duplex.config import load_config
    from duplex.errors import AudioFileError

    closed: list[str] = []

    class Device:
        def __init__(self, name: str) -> None:
            self.name = name

        def close(self) -> None:
            closed.append(self.name)

    cfg = load_config(sets=["backbone=policy", "policy.responder=wav", f"policy.reply_wav={tmp_path / 'gone.wav'}"])
    with pytest.raises(AudioFileError, match="gone.wav"):
        async with DuplexSession(config=cfg, input=Device("mic"), output=Device("speaker")):  # type: ignore[arg-type]
            pass
    assert sorted(closed) == ["mic", "speaker"]
