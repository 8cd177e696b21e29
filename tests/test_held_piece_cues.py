"""What a held piece of user speech is taken for (duplex/cue/runtime.py `CueWindow.piece_probs`):
a noise by its lack of voice, and, with words, what the recogniser named it, over the network; and
a "shh" (pitch.py's `hushed`), which has no voice either but which the rules hear before they ask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio_io.format import SAMPLE_RATE
from audio_io.wav import load_mono16k
from duplex.backbones.floor.pitch import HISS_S, hiss_s, hushed, voiced_share
from duplex.cue.runtime import WORDS_BACKCHANNEL_NETWORK_P, CueWindow
from duplex.cue.text import BACKCHANNEL, STOP
from duplex.cue.thresholds import NOISE_VOICED_SHARE, HeldPiece, held_piece_verdict
from duplex.eval.tts import cough
from tests.cue_fakes import NamedPiece, VerdictsInTurn

CLIPS = Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "clips"


def window(audio: np.ndarray, p_backchannel: float, said: str | None = None, words: bool = True) -> CueWindow:
    w = CueWindow(VerdictsInTurn(p_backchannel))  # type: ignore[arg-type]
    if words:
        w.words = NamedPiece(said)  # type: ignore[assignment]
    w.push(audio.astype(np.float32))
    return w


def piece(sound: np.ndarray, echo_db: float | None = None) -> np.ndarray:
    """0.2 s of silence, the sound, 0.3 s of silence; optionally the reply's echo under all of it."""
    audio = np.concatenate([np.zeros(SAMPLE_RATE // 5), sound, np.zeros(3 * SAMPLE_RATE // 10)]).astype(np.float32)
    if echo_db is not None:
        reply = load_mono16k(CLIPS / "table.wav")[: audio.size]
        audio[: reply.size] += reply / np.abs(reply).max() * 0.5 * np.float32(10 ** (echo_db / 20))
    return audio


def coughed(seed: int, echo_db: float | None = None) -> np.ndarray:
    return piece(cough(np.random.default_rng(seed), float(np.random.default_rng(seed).uniform(0.15, 0.5))), echo_db)


@pytest.mark.parametrize("echo_db", [None, -20.0])
def test_coughs_have_no_voice_and_words_have_some(echo_db: float | None) -> None:
    assert all(voiced_share(coughed(seed, echo_db)) < NOISE_VOICED_SHARE for seed in range(12))
    for name in ("yeah", "right", "mmhmm", "stop", "actually", "table"):
        assert voiced_share(load_mono16k(CLIPS / f"{name}.wav")) > 2 * NOISE_VOICED_SHARE, name


def test_a_cough_is_a_noise_the_reply_goes_on_over_even_when_the_words_say_otherwise() -> None:
    p = window(coughed(3, -20.0), 0.3, said="stop").piece_probs(1.0)
    assert held_piece_verdict(p, None) is HeldPiece.BACKCHANNEL  # (a cough's burst is often heard as "stop")


def test_a_word_is_not_a_noise() -> None:
    yeah = load_mono16k(CLIPS / "yeah.wav")
    p = window(yeah, 0.3, words=False).piece_probs(yeah.size / SAMPLE_RATE)
    assert held_piece_verdict(p, None) is None


@pytest.mark.parametrize(("said", "network", "verdict"), [
    ("backchannel", WORDS_BACKCHANNEL_NETWORK_P + 0.05, HeldPiece.BACKCHANNEL),  # heard as "yeah": goes on
    ("backchannel", WORDS_BACKCHANNEL_NETWORK_P - 0.05, None),  # ... unless the network is sure it is not
    ("stop", 0.85, None),  # heard as "wait" by a network unsure of "mm-hmm": never goes on
    ("stop", 0.95, HeldPiece.BACKCHANNEL),  # ... by one sure of it: the network's (a step later: below)
    (None, 0.95, HeldPiece.BACKCHANNEL),  # named neither: the network alone, at its own bars
    (None, 0.8, None),
])
def test_what_the_recogniser_named_a_piece_overrules_the_network(
        said: str | None, network: float, verdict: HeldPiece | None) -> None:
    yeah = load_mono16k(CLIPS / "yeah.wav")
    w = window(yeah, network, said=said)
    p = w.piece_probs(yeah.size / SAMPLE_RATE)
    assert held_piece_verdict(p, None) is verdict
    assert np.isclose(p.sum(), 1.0) and w.words.pieces == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(("said", "network", "verdict"), [
    ("backchannel", 0.5, HeldPiece.LIKELY_BACKCHANNEL),  # the words alone: one silent step later
    ("backchannel", 0.95, HeldPiece.BACKCHANNEL),  # the network was sure already: at once
    (None, 0.95, HeldPiece.BACKCHANNEL),
    (None, 0.85, HeldPiece.LIKELY_BACKCHANNEL),  # the network alone, nearly sure (round 21): a step later
    (None, 0.75, None),  # ... under LIKELY_BACKCHANNEL_P: undecided
    ("stop", 0.85, HeldPiece.LIKELY_BACKCHANNEL),  # held-out "mm-hmm" named "no" at 0.86 (round 22)
    ("stop", 0.75, None),  # ... under LIKELY_BACKCHANNEL_P, the stop word's "not a backchannel" holds
    ("stop", 0.95, HeldPiece.LIKELY_BACKCHANNEL),  # the network sure, the words not: one silent step later
])
def test_a_backchannel_only_the_words_or_only_the_network_named_goes_on_a_step_later(
        said: str | None, network: float, verdict: HeldPiece | None) -> None:
    yeah = load_mono16k(CLIPS / "yeah.wav")
    got, backchannel = window(yeah, network, said=said).piece_verdict(yeah.size / SAMPLE_RATE, None)
    assert got is verdict
    assert backchannel >= (0.9 if said == "backchannel" else 0.0)  # what a second piece's verdict reads


class LeansToStop:
    """The network's verdict on held-out seed 201's "wait" (round 20): nearer a stop word than a backchannel."""

    words = False

    def probs(self, window: np.ndarray) -> np.ndarray:
        return np.array([0.055, 0.033, 0.069, 0.299, 0.544])


def test_the_words_backchannel_does_not_resume_over_a_piece_the_network_leans_to_a_stop_word_on() -> None:
    """That "wait" was named "yep": raised past the bar, it resumed the reply over a hesitant barge-in."""
    wait = load_mono16k(CLIPS / "stop.wav")
    w = CueWindow(LeansToStop())  # type: ignore[arg-type]
    w.words = NamedPiece("backchannel")  # type: ignore[assignment]
    w.push(wait.astype(np.float32))
    verdict, backchannel = w.piece_verdict(1.0, None)
    assert verdict is None and backchannel < 0.5
    leaning_back = window(wait, 0.3, said="backchannel")  # the same P(backchannel), the rest a statement
    assert leaning_back.piece_verdict(1.0, None)[0] is HeldPiece.LIKELY_BACKCHANNEL


def test_a_stop_word_named_by_the_recogniser_does_not_end_the_reply_by_itself() -> None:
    """Less sure of "stop" than of "yeah" (backchannels were heard as stop phrases too), the words
    only keep the reply from going on; ending it is left to the network and the other rules."""
    yeah = load_mono16k(CLIPS / "yeah.wav")
    p = window(yeah, 0.5, said="stop").piece_probs(yeah.size / SAMPLE_RATE)
    assert p[BACKCHANNEL] == 0.0 and p[STOP] < 0.9


def hushing(echo_db: float | None = None) -> np.ndarray:
    """The scenarios' "shh" (made: no TTS here says one) as a held piece."""
    return piece(load_mono16k(CLIPS / "hush.wav"), echo_db)


@pytest.mark.parametrize("echo_db", [None, -20.0])
def test_a_shh_hushes_and_no_cough_or_word_does(echo_db: float | None) -> None:
    assert hiss_s(hushing(echo_db)) >= HISS_S and hushed(hushing(echo_db), NOISE_VOICED_SHARE)
    assert max(hiss_s(coughed(seed, echo_db)) for seed in range(40)) < HISS_S / 3
    assert not any(hushed(coughed(seed, echo_db), NOISE_VOICED_SHARE) for seed in range(40))
    for name in ("stop", "mmhmm", "yeah", "right", "hesitant", "actually", "table"):
        assert not hushed(load_mono16k(CLIPS / f"{name}.wav"), NOISE_VOICED_SHARE), name
