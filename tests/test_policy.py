"""The policy backbone's token stream, fed chunk by chunk: the tokens a native model would emit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio_io.format import STEP_SAMPLES
from audio_io.wav import load_mono16k
from duplex.backbones.floor.vad import VadFloor
from duplex.backbones.policy import load_policy
from duplex.backbones.tiny_fd.config import TinyFdConfig
from duplex.config import PolicyConfig, load_config
from duplex.errors import ConfigError
from duplex.tokens import Kind


def chunks(audio: np.ndarray) -> list[np.ndarray]:
    audio = np.concatenate([audio, np.zeros(-audio.size % STEP_SAMPLES, np.float32)])
    return [audio[i : i + STEP_SAMPLES] for i in range(0, audio.size, STEP_SAMPLES)]


def run(model, audio: np.ndarray) -> list[list[Kind]]:
    return [[t.kind for t in model.backbone.step(c)] for c in chunks(audio)]


def test_question_then_silence_gives_think_shift_units_eot(speech) -> None:
    model = load_policy(PolicyConfig())
    q = load_mono16k(speech("What time does the museum open?"))
    steps = run(model, np.concatenate([q, np.zeros(16000 * 5, np.float32)]))
    flat = [k for s in steps for k in s]
    first_shift = flat.index(Kind.SHIFT)
    assert set(flat[:first_shift]) == {Kind.THINK}
    assert flat.count(Kind.SHIFT) == 1 and flat.count(Kind.EOT) == 1
    units = flat[first_shift + 1 : flat.index(Kind.EOT)]
    assert set(units) == {Kind.AUDIO} and len(units) >= q.size / 640 * 0.8
    assert all(len(s) == 4 for s in steps)


def test_reply_units_decode_to_the_users_words(speech) -> None:
    model = load_policy(PolicyConfig())
    q = load_mono16k(speech("Please repeat after me."))
    tokens = [t for c in chunks(np.concatenate([q, np.zeros(16000 * 5, np.float32)])) for t in model.backbone.step(c)]
    units = [t.unit for t in tokens if t.kind is Kind.AUDIO]
    reply = model.vocoder.decode(units)
    # The reply starts at the chunk where speech was first heard: find that offset in the question.
    n = reply.size - 2 * STEP_SAMPLES
    best = max(np.corrcoef(reply[:n], q[lag : lag + n])[0, 1] for lag in range(0, q.size - n, 160))
    assert best > 0.99  # the same audio


def test_wav_responder_plays_the_configured_file(speech, tmp_path: Path) -> None:
    reply_wav = speech("This is the fixed answer.", voice="en-gb")
    cfg = load_config(sets=["policy.responder=wav", f"policy.reply_wav={reply_wav}"]).policy
    model = load_policy(cfg, resolve=lambda p: tmp_path / p)
    q = load_mono16k(speech("Hello?"))
    tokens = [t for c in chunks(np.concatenate([q, np.zeros(16000 * 6, np.float32)])) for t in model.backbone.step(c)]
    units = [t.unit for t in tokens if t.kind is Kind.AUDIO]
    fixed = load_mono16k(reply_wav)
    assert len(units) == -(-fixed.size // 640)
    assert np.allclose(model.vocoder.decode(units)[: fixed.size], fixed)


def test_wav_responder_without_a_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="policy.reply_wav"):
        load_policy(PolicyConfig(responder="wav"))


def test_heard_is_recorded_in_the_history(speech) -> None:
    model = load_policy(PolicyConfig())
    q = load_mono16k(speech("Tell me a story."))
    run(model, np.concatenate([q, np.zeros(16000, np.float32)]))
    model.backbone.heard(5)
    assert model.backbone.history[-1].heard == 5
    model.backbone.reset()
    assert model.backbone.history == []


def test_quiet_noise_never_starts_a_turn() -> None:
    model = load_policy(PolicyConfig())
    rng = np.random.default_rng(3)
    noise = (rng.standard_normal(16000 * 10) * 10 ** (-55 / 20)).astype(np.float32)
    assert {k for s in run(model, noise) for k in s} == {Kind.THINK}


def test_say_takes_a_free_floor_and_waits_while_the_user_speaks(speech) -> None:
    model = load_policy(PolicyConfig())
    announcement = load_mono16k(speech("Your order is ready."))
    user = load_mono16k(speech("I would like a coffee please."))
    model.backbone.say(announcement)
    first = [t.kind for t in model.backbone.step(user[:STEP_SAMPLES])]
    assert first == [Kind.THINK] * 4  # the user is talking: the announcement waits
    rest = np.concatenate([user[STEP_SAMPLES:], np.zeros(16000 * 10, np.float32)])
    tokens = [t for c in chunks(rest) for t in model.backbone.step(c)]
    kinds = [t.kind for t in tokens]
    shifts = [i for i, k in enumerate(kinds) if k is Kind.SHIFT]
    assert len(shifts) == 2  # first the answer to the user, then the announcement
    assert kinds.index(Kind.EOT) < shifts[1]  # not before the answer is over
    units = [t.unit for t in tokens[shifts[1] :] if t.kind is Kind.AUDIO]
    assert np.allclose(model.vocoder.decode(units)[: announcement.size], announcement)


def test_the_policy_model_can_say_and_its_floor_is_a_composed_vad_floor() -> None:
    model = load_policy(PolicyConfig())
    assert model.can_say
    assert isinstance(model.backbone.floor, VadFloor)


def test_a_hesitant_barge_in_breaks_the_reply_and_it_never_resumes(speech) -> None:
    model = load_policy(PolicyConfig())
    q = load_mono16k(speech("Tell me about the history of this old town and its castle."))
    wait, no = load_mono16k(speech("Wait,")), load_mono16k(speech("no,"))
    rest = load_mono16k(speech("that is not what I asked you about."))
    gap = np.zeros(int(0.5 * 16000), np.float32)
    pause, tail = np.zeros(16000 * 2, np.float32), np.zeros(16000 * 3, np.float32)
    audio_ = np.concatenate([q, pause, wait, gap, no, gap, rest, tail])
    kinds = [k for s in run(model, audio_) for k in s]
    shift, brk = kinds.index(Kind.SHIFT), kinds.index(Kind.BREAK)
    held = max(i for i in range(shift, brk) if kinds[i] is Kind.AUDIO) + 1
    assert held < brk and set(kinds[held:brk]) == {Kind.THINK}  # held quiet until the BREAK: no resume
    rest_at = (q.size + pause.size + wait.size + gap.size + no.size + gap.size) / STEP_SAMPLES
    assert rest_at <= brk // 4 <= rest_at + 7  # "wait" and "no" held it; the rest, longer, breaks it
    assert Kind.SHIFT in kinds[brk:]  # and is answered


def test_a_backchannel_holds_the_reply_and_it_goes_on(speech) -> None:
    model = load_policy(PolicyConfig())
    q = load_mono16k(speech("Tell me about the history of this old town and its castle."))
    mmhmm = load_mono16k(speech("mm-hmm"))
    audio_ = np.concatenate([q, np.zeros(16000 * 2, np.float32), mmhmm, np.zeros(16000 * 5, np.float32)])
    kinds = [k for s in run(model, audio_) for k in s]
    assert Kind.BREAK not in kinds and kinds.count(Kind.SHIFT) == 1 and kinds.count(Kind.EOT) == 1
    shift, eot = kinds.index(Kind.SHIFT), kinds.index(Kind.EOT)
    units = kinds[shift + 1 : eot].count(Kind.AUDIO)
    assert units >= q.size / 640 * 0.8  # the whole reply was played, around the hold
    assert Kind.THINK in kinds[shift:eot]  # and it did hold for the backchannel


def test_tiny_fd_as_the_floor_drives_the_echo_responder(speech) -> None:
    pytest.importorskip("torch")
    model = load_policy(PolicyConfig(floor="tiny-fd"), TinyFdConfig())
    assert model.name == "policy/echo/tiny-fd" and model.can_say
    q = load_mono16k(speech("What time does the museum open on Sundays?"))
    tokens = [t for c in chunks(np.concatenate([q, np.zeros(16000 * 6, np.float32)])) for t in model.backbone.step(c)]
    kinds = [t.kind for t in tokens]
    shift = kinds.index(Kind.SHIFT)
    assert shift // 4 * 0.16 > q.size / 16000 - 0.5  # not before the question is (nearly) over
    units = [t.unit for t in tokens[shift:] if t.kind is Kind.AUDIO]
    reply = model.vocoder.decode(units)
    assert reply.size > 0.5 * q.size  # the responder's audio, not tiny-fd's own replies
    n = min(reply.size, q.size) - 2560
    best = max(np.corrcoef(reply[:n], q[lag : lag + n])[0, 1] for lag in range(0, q.size - n, 160))
    assert best > 0.99


@pytest.mark.parametrize("name", ["backchannels", "hesitant_barge_in"])
def test_the_example_scenarios_of_backchannels_and_hesitant_barge_ins_pass_with_the_policy(name: str) -> None:
    """Two backchannels 0.9 s apart go on ("mm-hmm ... yeah"), a hesitant barge-in is never resumed
    over: with `resume_after_s` at 0.96 s the second backchannel found the reply still held and broke it."""
    from duplex.scenario.runner import run_scenario
    from duplex.scenario.spec import load_scenario

    root = Path(__file__).resolve().parents[1] / "examples"
    result = run_scenario(load_scenario(root / "scenarios" / f"{name}.yaml"), config=root / "policy.yaml")
    assert result.passed, result.failures


def test_the_turn_is_taken_in_a_room_louder_than_any_noise_floor(tmp_path: Path) -> None:
    """White noise at -30 dBFS: no chunk is within 6 dB of the floor's cap, so none was the room's
    silence and the reply never came (round 15's rule; round 14 answered). Now the room is all."""
    from duplex.scenario.runner import run_scenario
    from duplex.scenario.spec import load_scenario

    root = Path(__file__).resolve().parents[1] / "examples"
    text = (root / "scenarios" / "white_noise_turn.yaml").read_text().replace("level_db: -40", "level_db: -30")
    (tmp_path / "clips").symlink_to(root / "scenarios" / "clips")
    (tmp_path / "loud.yaml").write_text(text)
    result = run_scenario(load_scenario(tmp_path / "loud.yaml"), config=root / "policy.yaml")
    assert result.passed, result.failures
