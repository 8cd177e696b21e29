"""The shipped tiny-fd checkpoint: its size, an offline conversation through the real engine, and
the reply's content checked by an offline recognizer (pocketsphinx) restricted to the repertoire."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("torch")
pytest.importorskip("transformers")

from audio_io.levels import audible_spans  # noqa: E402
from audio_io.wav import load_mono16k  # noqa: E402
from duplex.backbones.tiny_fd.loader import SHIPPED  # noqa: E402
from duplex.config import load_config  # noqa: E402
from tests.fakes import run_offline as run_wav_session  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / "examples" / "scenarios" / "clips"


def test_checkpoint_is_small() -> None:
    total = sum(p.stat().st_size for p in SHIPPED.iterdir() if p.is_file())
    assert total <= 20 * 1024 * 1024
    meta = json.loads((SHIPPED / "config.json").read_text())
    lengths = [n for _, n in meta["replies"]]
    assert np.mean(lengths) * 0.04 >= 3.0  # replies average at least 3 s


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, list, float]:
    tmp = tmp_path_factory.mktemp("tiny-fd-session")
    question = load_mono16k(CLIPS / "weather.wav")
    mic = np.concatenate([np.zeros(8000, np.float32), question, np.zeros(8 * 16_000, np.float32)])
    sf.write(tmp / "in.wav", mic, 16_000, subtype="PCM_16")
    cfg = load_config(ROOT / "examples" / "tiny-fd.yaml")
    result = run_wav_session(cfg, tmp / "in.wav", tmp / "out.wav")
    end = 0.5 + audible_spans(question)[-1][1]
    return load_mono16k(tmp / "out.wav"), result.events, end


def test_offline_session_takes_the_turn_and_speaks(session: tuple[np.ndarray, list, float]) -> None:
    out, events, end = session
    shifts = [e.t for e in events if e.type.value == "control" and e.data.get("token") == "SHIFT"]
    assert shifts and end < shifts[0] < end + 1.0
    spans = audible_spans(out, merge_gap_s=0.2)
    assert spans and spans[0][0] - end < 1.0
    assert sum(e - s for s, e in spans) >= 3.0


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


def _recognise(audio: np.ndarray, sentences: list[str]) -> str | None:
    pocketsphinx = pytest.importorskip("pocketsphinx")
    alternatives = " | ".join(f"({_normalise(s)})" for s in sentences)
    decoder = pocketsphinx.Decoder(samprate=16_000, loglevel="FATAL")
    decoder.add_jsgf_string("replies", f"#JSGF V1.0;\ngrammar replies;\npublic <reply> = {alternatives};\n")
    decoder.activate_search("replies")
    decoder.start_utt()
    decoder.process_raw((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    return decoder.hyp().hypstr if decoder.hyp() else None


def _closest(hyp: str, sentences: list[str]) -> tuple[str, float]:
    words = hyp.split()
    scored = [(s, len(set(words) & set(_normalise(s).split())) / len(_normalise(s).split())) for s in sentences]
    return max(scored, key=lambda x: x[1])


def test_reply_is_intelligible(session: tuple[np.ndarray, list, float]) -> None:
    out, _, end = session
    texts = json.loads((SHIPPED / "config.json").read_text())["reply_texts"]
    reply = out[int(end * 16_000):]
    hyp = _recognise(reply, texts)
    assert hyp, "the recognizer heard no reply"
    _, overlap = _closest(hyp, texts)
    assert overlap >= 0.8, hyp
    print(f"recognised: {hyp!r}")
    # Negative control: the same audio with its 40 ms frames shuffled is not recognised as well.
    frames = reply[: reply.size // 640 * 640].reshape(-1, 640).copy()
    np.random.default_rng(0).shuffle(frames)
    garbled = _recognise(frames.reshape(-1), texts)
    print(f"shuffled frames: {garbled!r}")
    assert garbled is None or garbled != hyp


def test_backbone_memory_stays_flat_for_a_long_session() -> None:
    from duplex.backbones.tiny_fd.loader import load_folder

    model = load_folder(SHIPPED, context_steps=16, window_steps=6)
    question = load_mono16k(CLIPS / "train.wav")
    audio = np.concatenate([question, np.zeros(6 * 16_000, np.float32)] * 3)
    n = audio.size // 2560
    for k in range(n):
        model.backbone.step(audio[k * 2560: (k + 1) * 2560])
        assert model.backbone.cache_positions <= 1 + 5 * 16
    assert model.backbone.refills > 10


def test_a_cut_from_outside_ends_the_reply_at_once() -> None:
    """An operator's stop (engine: truncate_context -> heard) must not leave the model mid-reply."""
    from duplex.backbones import load_model
    from duplex.backbones.tiny_fd import vocab as V
    from duplex.tokens import Kind

    backbone = load_model(load_config(ROOT / "examples" / "tiny-fd.yaml")).backbone
    question = load_mono16k(CLIPS / "weather.wav")
    audio = np.concatenate([question, np.zeros(3 * 16_000, np.float32)])
    audio = np.concatenate([audio, np.zeros(-audio.size % 2560, np.float32)])
    for i in range(0, audio.size, 2560):
        if backbone.step(audio[i : i + 2560])[0].kind is Kind.SHIFT:
            break
    else:
        pytest.fail("the model never took the turn")
    backbone.heard(3)
    after = [t.kind for _ in range(12) for t in backbone.step(np.zeros(2560, np.float32))]
    assert set(after) == {Kind.THINK}  # no more of the reply, and no new one into the silence
    rules = backbone.conversation.rules
    original = rules.filter
    rules.filter = lambda *_: V.SHIFT  # type: ignore[method-assign]  (a rule that takes the turn for the network)
    assert [t.kind for t in backbone.step(np.zeros(2560, np.float32))] == [Kind.THINK] * 4  # not into the silence
    rules.filter = original  # type: ignore[method-assign]
    again = [t.kind for i in range(0, audio.size, 2560) for t in backbone.step(audio[i : i + 2560])]
    assert Kind.SHIFT in again  # the user asks again: the model answers


def test_every_shipped_tiny_fd_config_finds_its_checkpoint_in_the_repository() -> None:
    """A checkpoint the docs promise must be in git: a .gitignore once kept tiny-fd v2 on one machine."""
    import subprocess

    from duplex.backbones import load_model
    from duplex.backbones.tiny_fd.loader import checkpoint_dir

    tracked = set(subprocess.run(["git", "ls-files", "checkpoints"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())
    for path in (ROOT / "examples").glob("tiny-fd*.yaml"):
        cfg = load_config(path)
        folder = checkpoint_dir(cfg.tiny_fd, cfg.resolve).resolve().relative_to(ROOT)
        for name in ("config.json", "model.safetensors", "units.safetensors"):
            assert f"{folder}/{name}" in tracked, f"{path.name}: {folder}/{name} is not committed"
        assert load_model(cfg).name
