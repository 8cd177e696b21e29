"""The echo-path gate: measures the speaker-to-mic coupling and bypasses the canceller without one."""

from __future__ import annotations

import numpy as np

from audio_io.aec import PassThrough, make_aec
from audio_io.echo_path import ECHO_VOTES, FRAME, MAX_LAG_S, MIN_ACTIVE_S, EchoPath, GatedCanceller

RATE = 16_000


def talk(seconds: float, seed: int, level_db: float = -20.0) -> np.ndarray:
    """Speech-like noise: syllables of 120-250 ms with gaps, at `level_db` RMS while voiced."""
    rng = np.random.default_rng(seed)
    env = np.zeros(int(seconds * RATE), dtype=np.float32)
    i = 0
    while i < env.size:
        n = int(rng.uniform(0.12, 0.25) * RATE)
        env[i : i + n] = np.hanning(n)[: env.size - i] * rng.uniform(0.5, 1.0)
        i += n + int(rng.uniform(0.03, 0.15) * RATE)
    return (rng.standard_normal(env.size) * env * 10 ** (level_db / 20) * 1.6).astype(np.float32)


def room(far: np.ndarray, echo_db: float | None, delay_s: float = 0.15, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    near = (rng.standard_normal(far.size) * 10 ** (-65 / 20)).astype(np.float32)
    if echo_db is not None:
        d = int(delay_s * RATE)
        near[d:] += far[: far.size - d] * 10 ** (echo_db / 20)
    return near


def run(path: EchoPath, near: np.ndarray, far: np.ndarray) -> list[tuple[float, bool | None]]:
    verdicts = []
    for i in range(0, far.size - FRAME + 1, FRAME):
        path.add(near[i : i + FRAME], far[i : i + FRAME])
        verdicts.append((i / RATE, path.present))
    return verdicts


def first(verdicts: list[tuple[float, bool | None]], value: bool) -> float:
    return next(t for t, v in verdicts if v is value)


def test_no_echo_path_is_found_early_in_the_first_reply() -> None:
    far = np.concatenate([np.zeros(3 * RATE, np.float32), talk(4.0, seed=2)])
    verdicts = run(path := EchoPath(), room(far, None), far)
    assert first(verdicts, False) - 3.0 <= 1.3  # 0.5 s of speaker activity, at every lag up to 0.5 s
    assert all(v is not True for _, v in verdicts)
    assert path.coupling_db is not None and path.coupling_db < -20  # the noise floor, 20+ dB under the speaker


def test_an_echo_at_minus_10_db_is_measured_with_its_delay() -> None:
    far = np.concatenate([np.zeros(3 * RATE, np.float32), talk(4.0, seed=3)])
    verdicts = run(path := EchoPath(), room(far, -10.0, delay_s=0.15), far)
    assert first(verdicts, True) - 3.0 <= MAX_LAG_S + 2 * MIN_ACTIVE_S + ECHO_VOTES * 0.16 + 0.2
    assert all(v is not False for _, v in verdicts)
    assert path.coupling_db is not None and abs(path.coupling_db + 10.0) < 3.0
    assert path.delay_s is not None and abs(path.delay_s - 0.15) <= 0.02


def test_the_user_talking_over_the_reply_on_a_headset_keeps_the_bypass() -> None:
    far = np.concatenate([np.zeros(3 * RATE, np.float32), talk(6.0, seed=4)])
    near = room(far, None)
    user = talk(3.0, seed=5, level_db=-18.0)
    near[5 * RATE : 8 * RATE] += user  # a long barge-in, well after the first verdict
    verdicts = run(EchoPath(), near, far)
    assert all(v is False for t, v in verdicts if t >= 4.5), "the user's voice was taken for an echo"


def test_an_echo_that_appears_later_switches_the_canceller_back_in() -> None:
    far = np.concatenate([np.zeros(3 * RATE, np.float32), talk(8.0, seed=6)])
    near = room(far, None)
    near[7 * RATE :] = room(far, -10.0)[7 * RATE :]  # the headset is unplugged: speakers from 7 s
    verdicts = run(EchoPath(), near, far)
    assert first(verdicts, False) < 5.0
    assert 7.0 < first(verdicts, True) <= 7.0 + MAX_LAG_S + 1.6  # once the window holds echo only


def test_the_gate_passes_the_mic_through_only_while_the_path_is_absent() -> None:
    class Halve(PassThrough):
        def process(self, near: np.ndarray, far: np.ndarray, out: np.ndarray) -> None:
            out[:] = near * 0.5

    gate = GatedCanceller(Halve())
    far = np.concatenate([np.zeros(3 * RATE, np.float32), talk(3.0, seed=7)])
    near = room(far, None) + np.float32(0.01)
    out = np.zeros(FRAME, np.float32)
    for i in range(0, far.size - FRAME + 1, FRAME):
        gate.process(near[i : i + FRAME], far[i : i + FRAME], out)
        expected = near[i : i + FRAME] if gate.bypassed else near[i : i + FRAME] * 0.5
        np.testing.assert_array_equal(out, expected)
    assert gate.bypassed and 0.0 < gate.figures()["aec_bypassed_share"] < 1.0  # type: ignore[operator]


def test_make_aec_gates_every_real_canceller() -> None:
    assert isinstance(make_aec("speex"), GatedCanceller)
    assert not isinstance(make_aec("speex", gated=False), GatedCanceller)
    assert isinstance(make_aec("none"), PassThrough)
