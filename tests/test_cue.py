"""The cue model (duplex/cue): its training pipeline, the shipped checkpoint, and its errors.

The checks on the shipped checkpoint use the scenario clips (espeak-ng, a family it trained on, in
sentences it never saw): they show it is wired the right way round, not how it does on voices it
never met (bench/cue_accuracy.py and docs/cue.md report that).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio_io.format import SAMPLE_RATE, rms
from audio_io.wav import load_mono16k
from duplex.cue.data import WINDOW_S, window
from duplex.cue.runtime import CueModel, CueWindow
from duplex.cue.text import ASKS, BACKCHANNEL, CLASSES, STOP, Sentences, check_disjoint
from duplex.cue.thresholds import ASKS_P, STOP_P
from duplex.errors import DuplexError

CLIPS = Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "clips"


@pytest.fixture(scope="module")
def model() -> CueModel:
    return CueModel()


def heard(model: CueModel, name: str, trailing_s: float = 0.25) -> np.ndarray:
    """The probabilities for a clip followed by a short silence, as the rules ask for them."""
    audio = np.concatenate([load_mono16k(CLIPS / f"{name}.wav"), np.zeros(round(trailing_s * SAMPLE_RATE))])
    return model.probs(window(audio.astype(np.float32)))


def test_the_training_sentences_never_come_from_the_evaluation_banks() -> None:
    text = Sentences(np.random.default_rng(0))
    draws = [text.of(label) for label in range(len(CLASSES)) for _ in range(3000)]
    assert check_disjoint(draws) == []


@pytest.mark.parametrize("name", ["weather", "train"])
def test_a_question_asks(model: CueModel, name: str) -> None:
    assert heard(model, name)[ASKS] >= ASKS_P


@pytest.mark.parametrize("name", ["mmhmm", "yeah", "right"])
def test_a_backchannel_lets_the_reply_go_on(model: CueModel, name: str) -> None:
    p = heard(model, name)
    assert int(np.argmax(p)) == BACKCHANNEL and p[STOP] < STOP_P


@pytest.mark.parametrize("name", ["mono1", "long_pause"])
def test_statements_do_not_ask(model: CueModel, name: str) -> None:
    if name == "long_pause":  # its last part is a question; the first alone is a statement
        audio = load_mono16k(CLIPS / "long_pause.wav")[: round(2.0 * SAMPLE_RATE)]
        p = model.probs(window(np.concatenate([audio, np.zeros(4000, np.float32)])))
    else:
        p = heard(model, name)
    assert p[ASKS] < ASKS_P


def test_the_window_keeps_the_last_seconds_in_order(model: CueModel) -> None:
    cues = CueWindow(model)
    chunk = np.arange(2560, dtype=np.float32)
    for _ in range(round(WINDOW_S * SAMPLE_RATE / 2560) + 3):
        cues.push(chunk)
    assert np.array_equal(cues.audio[-2560:], chunk)
    first = cues.probs()
    assert cues.probs() is first  # asked twice in one step: classified once
    assert first.shape == (len(CLASSES),) and abs(float(first.sum()) - 1.0) < 1e-5
    cues.push(chunk)
    assert cues.probs() is not first


def test_an_unreadable_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "cue.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DuplexError, match="cue model .*cue.pt: cannot be read"):
        CueModel(bad)


def test_training_runs_end_to_end_and_writes_a_loadable_model(tmp_path: Path) -> None:
    from duplex.cue.train import main

    out = tmp_path / "cue.pt"
    assert main(["--smoke", "--dev-voices", "", "--out", str(out), "--cache", str(tmp_path / "cache"),
                 "--log", str(tmp_path / "log.jsonl")]) == 0
    model = CueModel(out)
    p = model.probs(np.zeros(round(WINDOW_S * SAMPLE_RATE), np.float32))
    assert p.shape == (len(CLASSES),)
    assert (tmp_path / "log.jsonl").read_text().count('"epoch"') == 2


def test_the_room_noise_experiment_puts_a_share_of_windows_in_a_loud_room(tmp_path: Path) -> None:
    """`--room-noise`: that share of the windows under -45 to -28 dBFS of steady noise, the rest as
    they were; without it a seed's draws are untouched (the shipped model's examples stay its own)."""
    from duplex.cue.data import Examples
    from duplex.cue.train import main

    quiet = np.zeros(round(WINDOW_S * SAMPLE_RATE), np.float32)
    plain = Examples(tmp_path, 3)
    assert plain.in_room(quiet) is quiet and plain.rng.random() == Examples(tmp_path, 3).rng.random()
    loud = Examples(tmp_path, 3, room_noise=0.5)
    levels = [rms(loud.in_room(quiet)) for _ in range(200)]
    noisy = [20 * np.log10(x) for x in levels if x > 0]
    assert 70 <= len(noisy) <= 130 and all(-45.5 <= db <= -27.5 for db in noisy)
    assert main(["--smoke", "--room-noise", "1.5", "--out", str(tmp_path / "cue.pt")]) == 2


def test_a_checkpoint_of_another_shape_is_one_clear_error(tmp_path: Path) -> None:
    import torch

    from duplex.cue.model import CueNet

    other = tmp_path / "cue.pt"
    net = CueNet(channels=8, hidden=8)
    torch.save({"state": net.state_dict(), "net": {"channels": 8, "hidden": 16}, "classes": list(CLASSES)}, other)
    with pytest.raises(DuplexError, match="does not fit"):
        CueModel(other)


def test_the_warp_experiment_keeps_shapes_and_reads_integer_positions_exactly() -> None:
    import torch

    from duplex.cue.train import _lerp, warp

    x = torch.randn(3, 40, 50)
    assert torch.equal(_lerp(x, torch.arange(40.0)[None].expand(3, 40), 1, -1.0), x)
    assert torch.equal(_lerp(x, torch.arange(50.0)[None].expand(3, 50), 2, -1.0), x)
    out = warp(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_training_without_pico_installed_is_one_line_naming_the_script(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    import duplex.tts
    from duplex.cue.train import main

    which = shutil.which
    monkeypatch.setattr(duplex.tts.shutil, "which", lambda b: None if b == "pico2wave" else which(b))
    assert main(["--smoke", "--dev-voices", "", "--pico-examples", "100", "--out", str(tmp_path / "cue.pt"),
                 "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pico2wave not installed (scripts/install-pico.sh)" in err
    assert not (tmp_path / "cue.pt").exists() and not (tmp_path / "cache").exists()


def test_a_pico_voice_takes_its_speed_and_pitch_as_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    import duplex.tts

    monkeypatch.setattr(duplex.tts.shutil, "which", lambda b: f"/usr/bin/{b}")
    cmd, stdin = duplex.tts._command("pico:en-GB", 1.1, 1.0, "Is it <soon> & quick?", Path("/tmp/x.wav"))
    assert cmd[:4] == ["/usr/bin/pico2wave", "-l", "en-GB", "-w"] and stdin is None
    # +5 semitones is 133 % of the voice's pitch; the text's own markup characters are escaped
    assert cmd[-1] == "<speed level='110'><pitch level='133'>Is it &lt;soon&gt; &amp; quick?</pitch></speed>"


def test_a_pico_voice_it_does_not_have_is_one_line_naming_its_voices(monkeypatch: pytest.MonkeyPatch) -> None:
    import duplex.tts

    monkeypatch.setattr(duplex.tts.shutil, "which", lambda b: f"/usr/bin/{b}")
    with pytest.raises(DuplexError, match=r"^voice pico:en: pico has no voice 'en' \(one of en-US, en-GB, .*\)$"):
        duplex.tts.check_voice("pico:en")


@pytest.mark.parametrize("args, culprit", [
    (["--per-class", "0"], "--per-class 0: must be at least 1"),
    (["--checkpoint", "README.md"], "README.md: cannot be read (not a torch checkpoint)"),
    (["--voices", "nope:x"], "unknown TTS family in voice 'nope:x'"),
])
def test_the_accuracy_bench_gives_one_line_and_exit_2_for_bad_input(args: list[str], culprit: str) -> None:
    import subprocess
    import sys

    root = CLIPS.parents[2]
    done = subprocess.run([sys.executable, str(root / "bench" / "cue_accuracy.py"), *args], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and not done.stdout
    assert done.stderr.count("\n") == 1 and culprit in done.stderr and "Traceback" not in done.stderr


def test_a_config_names_its_own_cue_network_relative_to_the_config_file(tmp_path: Path) -> None:
    """`tiny_fd.cue_checkpoint` / `policy.cue_checkpoint`: a network trained for a deployment's own
    voices (`python -m duplex.cue.train --out ...`) without writing over the shipped one."""
    import torch

    from duplex.backbones.tiny_fd.loader import rule_settings
    from duplex.config import load_config
    from duplex.cue.runtime import SHIPPED

    saved = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    saved["state"] = {k: v * 0.5 if v.is_floating_point() else v for k, v in saved["state"].items()}
    (tmp_path / "nets").mkdir()
    torch.save(saved, tmp_path / "nets" / "ours.pt")
    (tmp_path / "ours.yaml").write_text("tiny_fd:\n  cue_checkpoint: nets/ours.pt\n  cue_words: false\n")
    cfg = load_config(tmp_path / "ours.yaml")
    ours = rule_settings(cfg.tiny_fd, cfg.resolve).cues
    audio = window(load_mono16k(CLIPS / "weather.wav"))
    assert ours is not None and not np.allclose(ours.probs(audio), CueModel().probs(audio))
    halved = CueModel(tmp_path / "nets" / "ours.pt")
    np.testing.assert_allclose(ours.probs(audio), halved.probs(audio), atol=1e-6)


@pytest.mark.parametrize("section", ["tiny_fd", "policy"])
def test_a_cue_network_that_cannot_be_read_is_one_error_naming_the_key_and_the_file(section: str) -> None:
    from duplex.backbones.floor import make_floor
    from duplex.backbones.tiny_fd.loader import rule_settings
    from duplex.config import load_config

    key = f"{section}.cue_checkpoint"
    cfg = load_config(None, sets=[f"{key}=missing.pt", "policy.cues=true", "tiny_fd.cue_words=false"])
    with pytest.raises(DuplexError, match=rf"^{key}: cue model missing.pt: cannot be read"):
        if section == "tiny_fd":
            rule_settings(cfg.tiny_fd)
        else:
            make_floor(cfg.policy, auto="vad")
