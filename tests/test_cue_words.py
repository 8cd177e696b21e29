"""The opening-words recogniser (duplex/cue/words.py): its rule on words, its online segmentation,
and its place in the cue window (a question's opening overrules the cue network's doubt).

Speech is the scenario clips (espeak-ng); pocketsphinx and those clips are deterministic, so the
recognised words are the same on every run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio_io.format import SAMPLE_RATE
from audio_io.wav import load_mono16k
from duplex.cue.text import ASKS
from duplex.cue.thresholds import ASKED_P, ASKS_P

pytest.importorskip("pocketsphinx")

from duplex.cue.words import GAP_S, HEAD_S, OpeningWords, asks, states  # noqa: E402

CLIPS = Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "clips"
STEP = 2560  # 160 ms, as the runtime pushes it


@pytest.fixture(scope="module")
def recogniser() -> OpeningWords:
    return OpeningWords()


@pytest.fixture
def shared(recogniser: OpeningWords) -> OpeningWords:
    """One recogniser process for the tests that only listen, reset as a new conversation would."""
    recogniser.reset()
    return recogniser


@pytest.mark.parametrize("words", ["what is the weather like", "which bus goes there", "is there a ferry",
                                   "could you tell me", "so um how long does it take", "tell me about it",
                                   "any idea where", "who runs the shop", "do you know", "please find me a taxi",
                                   "i would like to book a table", "i need a plumber", "i'd like a coffee",
                                   "i'd love a map", "i wonder if", "what you'd do", "what time is it",
                                   "what happened", "who wrote the song", "who is coming", "how soon can you",
                                   "how cheap is it"])
def test_openings_of_questions_and_requests_ask(words: str) -> None:
    assert asks(words.split())


@pytest.mark.parametrize("words", ["the dentist called", "my appointment moved", "when the plumber came",
                                   "when it stopped", "what i mean is", "if the weather stays", "i was thinking",
                                   "once the painters", "um", "", "so and", "we painted the kitchen", "i", "i like it",
                                   "i'd change the cartridge", "i would go there", "i'd", "what on and",
                                   "what what got it", "might tend to visit", "how", "was real",
                                   "should get rid of", "is", "what i'd do next", "but what they've got",
                                   "what another target", "who the", "who i met", "how the", "how it"])
def test_openings_of_statements_and_clauses_do_not(words: str) -> None:
    assert not asks(words.split())


@pytest.mark.parametrize("words", ["the dentist called", "my appointment moved", "when the plumber came",
                                   "if the weather stays", "once the painters", "we painted the kitchen",
                                   "it took much longer", "he says the boiler", "so she gave me", "um i was thinking",
                                   "unfortunately the coffee", "i'd change the cartridge", "last summer we"])
def test_openings_of_statements_and_clauses_state(words: str) -> None:
    assert states(words.split())


@pytest.mark.parametrize("words", ["what is the weather like", "is there a ferry", "i would like to book a table",
                                   "i need a plumber", "you mean the ferry", "i do not know where",
                                   "what i mean is", "um", "", "challenge and oil", "how"])
def test_questions_requests_and_unreadable_openings_do_not_state(words: str) -> None:
    # "i" before an auxiliary is left to the network: "how do I ..." is heard as "I do ..."
    assert not states(words.split())


def listen(words: OpeningWords, audio: np.ndarray, after_s: float = 0.4) -> list[tuple[float, bool | None]]:
    """Push `audio` then `after_s` of silence a step at a time; the verdicts asked at each step."""
    padded = np.concatenate([np.zeros(STEP, np.float32), audio, np.zeros(round(after_s * SAMPLE_RATE), np.float32)])
    seen = []
    for start in range(0, padded.size, STEP):
        words.push(padded[start: start + STEP])
        seen.append((start / SAMPLE_RATE, words.asked))
    return seen


def test_a_question_is_heard_to_ask_by_its_first_words_before_it_ends(shared: OpeningWords) -> None:
    words = shared
    audio = load_mono16k(CLIPS / "weather.wav").astype(np.float32)
    seen = listen(words, audio)
    assert words.verdict() is True and words.heard[:2] == ["what", "is"]
    # the head (HEAD_S) is decoded while the user still speaks: the verdict is there before the end
    first_true = next(t for t, v in seen if v)
    assert first_true < (STEP + audio.size) / SAMPLE_RATE - 0.3
    assert first_true >= HEAD_S


def test_a_statement_is_heard_not_to_ask_and_each_utterance_has_its_own_verdict(shared: OpeningWords) -> None:
    words = shared
    listen(words, load_mono16k(CLIPS / "weather.wav").astype(np.float32))
    assert words.verdict() is True
    listen(words, load_mono16k(CLIPS / "mono1.wav").astype(np.float32))  # "We painted the kitchen ..."
    assert words.verdict() is False and words.heard
    words.reset()
    assert words.verdict() is None and not words.open


@pytest.mark.parametrize(("probe", "before"), [
    ("train", ("table", "long_pause", "stop", "mono1", "hesitant")),
    # round 14: "mono1" after these was heard "we pretty cute" after a reset and "we do to look it" by a
    # fresh recogniser, because a reset set the cepstral mean back but not how fast it adapts
    ("mono1", ("train", "table", "long_pause", "mono2", "mono3", "paused", "weather", "hesitant", "actually")),
])
def test_a_reset_recogniser_hears_as_a_fresh_one_whatever_it_heard_before(
        shared: OpeningWords, probe: str, before: tuple[str, ...]) -> None:
    fresh = OpeningWords()
    clip = load_mono16k(CLIPS / f"{probe}.wav").astype(np.float32)
    listen(fresh, clip)
    for name in before:  # another conversation, other voices
        listen(shared, load_mono16k(CLIPS / f"{name}.wav").astype(np.float32) * (0.3 if probe == "train" else 1.0))
    shared.reset()
    listen(shared, clip)
    assert shared.heard == fresh.heard and shared.verdict() == fresh.verdict()


def test_pauses_longer_than_the_gap_split_utterances_and_the_last_one_decides(shared: OpeningWords) -> None:
    # "I called the bank this morning. [0.9 s] They said my card is blocked. [1.3 s] What should I do now?"
    words = shared
    seen = listen(words, load_mono16k(CLIPS / "long_pause.wav").astype(np.float32))
    verdicts = [v for _, v in seen]
    assert False in verdicts and verdicts[-1] is True
    assert words.heard[0] == "what"


@pytest.mark.parametrize(("gap_s", "joined"), [(0.35, True), (0.6, False)])
def test_a_question_split_by_a_breath_asks_to_its_end_and_a_later_utterance_does_not(
        shared: OpeningWords, gap_s: float, joined: bool) -> None:
    # "What is the weather | like in Paris today?" with a pause between: the second utterance's own
    # words ("q do you") ask nothing; after a breath (under JOINED_GAP_S) it is the question's rest
    from duplex.cue.words import JOINED_GAP_S

    words = shared
    audio = load_mono16k(CLIPS / "weather.wav").astype(np.float32)
    cut = round(1.08 * SAMPLE_RATE)  # a stop closure between "weather" and "like"
    listen(words, np.concatenate([audio[:cut], np.zeros(round(gap_s * SAMPLE_RATE), np.float32), audio[cut:]]))
    assert not asks(words.heard) and not states(words.heard)
    assert (words.recogniser.gap_s < JOINED_GAP_S) is joined
    assert words.verdict() is joined


def test_a_statement_after_a_question_and_a_breath_is_not_its_continuation(shared: OpeningWords) -> None:
    words = shared
    question, statement = (load_mono16k(CLIPS / f"{n}.wav").astype(np.float32) for n in ("weather", "mono2"))
    listen(words, np.concatenate([question, np.zeros(round(0.35 * SAMPLE_RATE), np.float32), statement]))
    assert states(words.heard)  # "it took much longer ...": a sentence of its own
    assert words.verdict() is False


def test_a_verdict_asked_in_a_silence_closes_the_utterance_even_before_the_gap(shared: OpeningWords) -> None:
    words = shared
    audio = load_mono16k(CLIPS / "weather.wav").astype(np.float32)[: round(0.9 * SAMPLE_RATE)]  # "what is the ..."
    listen(words, audio, after_s=0.16)
    assert words.quiet < GAP_S and words.open
    assert words.verdict() is True and not words.open


def test_speech_from_the_very_first_sample_is_heard(shared: OpeningWords) -> None:
    words = shared
    audio = load_mono16k(CLIPS / "weather.wav").astype(np.float32)
    start = int(np.flatnonzero(np.abs(audio) > 0.05)[0])
    for i in range(start, audio.size, STEP):
        words.push(audio[i: i + STEP])
    words.push(np.zeros(3 * STEP, np.float32))
    assert words.verdict() is True


def test_a_steady_noise_under_the_words_becomes_the_floor_not_one_long_utterance(shared: OpeningWords) -> None:
    words = shared
    rng = np.random.default_rng(1)
    audio = np.concatenate([np.zeros(3 * SAMPLE_RATE, np.float32), load_mono16k(CLIPS / "weather.wav")])
    noise = rng.standard_normal(audio.size + 3 * STEP) * 10 ** (-42 / 20)  # louder than SPEECH_DBFS
    noisy = (np.concatenate([audio, np.zeros(3 * STEP)]) + noise).astype(np.float32)
    for start in range(0, noisy.size, STEP):
        words.push(noisy[start: start + STEP])
    assert words.verdict() is True and words.heard[0] == "what"


@pytest.mark.parametrize("lead_s", [0.5, 1.0])
def test_a_room_noisy_from_the_first_frame_is_the_floor_and_does_not_open_the_words(
        shared: OpeningWords, lead_s: float) -> None:
    # noisy_barge_in.yaml: pink noise at -45 dBFS from the start, the request 0.5 s in; a floor that
    # rose from -57 dBFS let the noise open the utterance ("if I would like ...": not a request)
    from audio_io.scripted import noise_signal

    words = shared
    audio = np.concatenate([np.zeros(round(lead_s * SAMPLE_RATE), np.float32), load_mono16k(CLIPS / "table.wav"),
                            np.zeros(3 * STEP, np.float32)])
    for seed in range(4):
        words.reset()
        noisy = (audio + noise_signal("pink", -45.0, audio.size, seed=seed)).astype(np.float32)
        for start in range(0, noisy.size, STEP):
            words.push(noisy[start: start + STEP])
        assert words.verdict() is True and words.heard[:3] == ["i", "would", "like"], (seed, words.heard)


def test_silence_and_room_noise_never_open_an_utterance(shared: OpeningWords) -> None:
    words = shared
    rng = np.random.default_rng(0)
    listen(words, (rng.standard_normal(5 * SAMPLE_RATE) * 10 ** (-60 / 20)).astype(np.float32))
    assert words.verdict() is None and not words.open


def test_the_cue_window_takes_the_words_ask_and_state_over_the_networks_verdict() -> None:
    torch = pytest.importorskip("torch")  # noqa: F841
    from duplex.cue.runtime import WORDS_ASK_P, WORDS_STATES_P, CueModel, CueWindow

    question = load_mono16k(CLIPS / "weather.wav").astype(np.float32)
    statement = load_mono16k(CLIPS / "mono1.wav").astype(np.float32)
    plain, worded = CueWindow(CueModel()), CueWindow(CueModel(words=True))
    for audio, expect_asks in ((question, True), (statement, False)):
        for window in (plain, worded):
            window.reset()
            for start in range(0, audio.size + 3 * STEP, STEP):
                window.push(np.concatenate([audio, np.zeros(3 * STEP, np.float32)])[start: start + STEP])
        p, q = plain.probs(), worded.probs()
        assert q.sum() == pytest.approx(1.0, abs=1e-5)
        if expect_asks:
            assert q[ASKS] >= max(WORDS_ASK_P, float(p[ASKS])) - 1e-6 and q[ASKS] >= ASKED_P
        else:  # "We painted the kitchen ...": a subject first, so not a question, whatever the network heard
            assert worded.words is not None and worded.words.stated()
            assert q[ASKS] <= min(WORDS_STATES_P, float(p[ASKS])) + 1e-6
            assert ASKS_P > WORDS_STATES_P


class OpeningHeard:
    """Stands for the recogniser: every utterance opened as asking (`wh`: with a wh-word first),
    stating, or neither."""

    def __init__(self, asked: bool, stated: bool, wh: bool = True) -> None:
        self.asked, self._stated, self.wh = asked, stated, wh

    def verdict(self) -> bool:
        return self.asked

    def stated(self) -> bool:
        return self._stated

    def asked_wh(self) -> bool:
        return self.asked and self.wh

    def push(self, chunk: np.ndarray) -> None:
        pass


class UnsureOfAsking:
    """Stands for the network: P(asks) 0.7 (unsure: under ASKED_P), the rest a statement."""

    words = False

    def probs(self, window: np.ndarray) -> np.ndarray:
        from duplex.cue.text import CLASSES, STATEMENT

        p = np.full(len(CLASSES), 0.05)
        p[ASKS], p[STATEMENT] = 0.7, 0.3 - 0.05 * (len(CLASSES) - 2)
        return p


@pytest.mark.parametrize(("asked", "stated", "expect"), [(True, False, "raised"), (False, True, "lowered"),
                                                         (False, False, "network")])
def test_an_opening_raises_or_lowers_the_networks_asks_and_an_unread_one_leaves_it(
        asked: bool, stated: bool, expect: str) -> None:
    from duplex.cue.runtime import WORDS_ASK_P, WORDS_STATES_P, CueWindow

    window = CueWindow(UnsureOfAsking())  # type: ignore[arg-type]
    window.words = OpeningHeard(asked, stated)  # type: ignore[assignment]
    window.push(np.zeros(STEP, np.float32))
    net, p = window._network(), window.probs()
    assert p.sum() == pytest.approx(1.0)
    if expect == "raised":
        assert p[ASKS] >= WORDS_ASK_P
    elif expect == "lowered":
        assert p[ASKS] == pytest.approx(WORDS_STATES_P) and p[ASKS] < ASKS_P
        others = [i for i in range(p.size) if i != ASKS]
        np.testing.assert_allclose(p[others] / p[others].sum(), net[others] / net[others].sum())
    else:
        np.testing.assert_allclose(p, net)


class HearsAClause:
    """Stands for the network: P(fragment) `fragment`, P(asks) 0.1, the rest a statement."""

    words = False

    def __init__(self, fragment: float) -> None:
        self.fragment = fragment

    def probs(self, window: np.ndarray) -> np.ndarray:
        from duplex.cue.text import CLASSES, FRAGMENT, STATEMENT

        p = np.zeros(len(CLASSES))
        p[ASKS], p[FRAGMENT] = 0.1, self.fragment
        p[STATEMENT] = 1.0 - p.sum()
        return p


@pytest.mark.parametrize("fragment", [0.45, 0.8])
def test_an_opening_that_asks_is_not_taken_over_a_network_that_hears_a_clause(fragment: float) -> None:
    # held-out "Once the painters have finished the hallway," heard as "what is that because of the",
    # the network at P(fragment) 0.5-0.8: the turn waits the unfinished silence
    from duplex.cue.runtime import WORDS_ASK_FRAGMENT_P, CueWindow

    window = CueWindow(HearsAClause(fragment))  # type: ignore[arg-type]
    window.words = OpeningHeard(True, False)  # type: ignore[assignment]
    window.push(np.zeros(STEP, np.float32))
    assert fragment >= WORDS_ASK_FRAGMENT_P
    np.testing.assert_allclose(window.probs(), window._network())
    assert window.probs()[ASKS] < ASKS_P


def test_an_opening_that_asks_with_an_auxiliary_is_taken_over_a_network_that_hears_a_clause() -> None:
    # "could you read me the opening hours ...": a yes/no question rises at its end like a clause
    from duplex.cue.runtime import WORDS_ASK_P, CueWindow

    window = CueWindow(HearsAClause(0.8))  # type: ignore[arg-type]
    window.words = OpeningHeard(True, False, wh=False)  # type: ignore[assignment]
    window.push(np.zeros(STEP, np.float32))
    assert window.probs()[ASKS] >= WORDS_ASK_P


@pytest.mark.parametrize(("words", "wh"), [("what is that because of the", True), ("but why are so", True),
                                           ("what's the time", True), ("could you read me", False),
                                           ("is there a bus", False), ("the law before we", False), ("", False)])
def test_an_opening_with_a_wh_word(words: str, wh: bool) -> None:
    from duplex.cue.words import opens_with_wh

    assert opens_with_wh(words.split()) is wh


def test_an_opening_that_asks_is_taken_over_a_network_only_unsure_of_a_clause() -> None:
    from duplex.cue.runtime import WORDS_ASK_FRAGMENT_P, WORDS_ASK_P, CueWindow

    window = CueWindow(HearsAClause(WORDS_ASK_FRAGMENT_P - 0.05))  # type: ignore[arg-type]
    window.words = OpeningHeard(True, False)  # type: ignore[assignment]
    window.push(np.zeros(STEP, np.float32))
    assert window.probs()[ASKS] >= WORDS_ASK_P


def hears_a_statement(statement: float) -> HearsAClause:
    """Stands for the network: P(statement) `statement`, P(asks) 0.1, the rest a clause."""
    return HearsAClause(1.0 - 0.1 - statement)


@pytest.mark.parametrize("wh", [True, False])
def test_an_opening_that_asks_is_not_taken_over_a_network_sure_of_a_statement(wh: bool) -> None:
    # held-out "The squirrels dug up half of them." heard as "but why do so to what" (wh) and another
    # statement as "but i want to do what" (a wish), the network at P(statement) 0.87-0.88
    from duplex.cue.runtime import WORDS_ASK_STATEMENT_P, CueWindow

    window = CueWindow(hears_a_statement(0.87))  # type: ignore[arg-type]
    window.words = OpeningHeard(True, False, wh=wh)  # type: ignore[assignment]
    window.push(np.zeros(STEP, np.float32))
    assert window._network()[1] >= WORDS_ASK_STATEMENT_P
    np.testing.assert_allclose(window.probs(), window._network())
    assert window.probs()[ASKS] < ASKS_P


def test_an_opening_that_asks_is_taken_over_a_network_only_leaning_to_a_statement() -> None:
    # "to see the northern lights", the end of a question that opened "when is the best time of
    # year", at P(statement) 0.84: the words' "it asks" holds
    from duplex.cue.runtime import WORDS_ASK_P, WORDS_ASK_STATEMENT_P, CueWindow

    window = CueWindow(hears_a_statement(0.84))  # type: ignore[arg-type]
    window.words = OpeningHeard(True, False)  # type: ignore[assignment]
    window.push(np.zeros(STEP, np.float32))
    assert window._network()[1] < WORDS_ASK_STATEMENT_P
    assert window.probs()[ASKS] >= WORDS_ASK_P


def test_an_opening_that_states_does_not_overrule_a_network_sure_of_a_question() -> None:
    # pause_handling.yaml's "... to the seaside this weekend." is heard as "the the wii", the network at 0.88
    from duplex.cue.runtime import CueWindow
    from tests.cue_fakes import ScriptedCues

    window = CueWindow(ScriptedCues(ASKS))  # type: ignore[arg-type]  # P(asks) 0.92
    window.words = OpeningHeard(False, True)  # type: ignore[assignment]
    window.push(np.zeros(STEP, np.float32))
    assert window._network()[ASKS] >= ASKED_P
    np.testing.assert_allclose(window.probs(), window._network())


def test_cue_words_without_cues_runs_the_policy_without_torch(tmp_path: Path) -> None:
    """The words alone (examples/policy-words-only.yaml): a recogniser process and no cue network, so
    no torch is imported; the conversation runs and its output is written."""
    import subprocess
    import sys

    probe = ("import sys, runpy; sys.argv = ['duplex'] + sys.argv[1:]; "
             "sys.modules['torch'] = None; runpy.run_module('duplex', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", probe, "--config", str(CLIPS.parents[1] / "policy-words-only.yaml"),
                           "--input", str(CLIPS / "weather.wav"), "--output", str(tmp_path / "o.wav")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o.wav").exists()


def pieces_of(name: str) -> list[np.ndarray]:
    """A clip cut at its silences of 0.3 s or more (the hesitant barge-in: "wait", "no", the rest)."""
    audio = load_mono16k(CLIPS / f"{name}.wav").astype(np.float32)
    loud = np.abs(audio) > 0.01
    edges, start, last = [], None, -SAMPLE_RATE
    for i in np.flatnonzero(loud):
        if start is None:
            start = i
        elif i - last > 0.3 * SAMPLE_RATE:
            edges.append((start, last))
            start = i
        last = i
    edges.append((start, last))
    pad = np.zeros(SAMPLE_RATE // 10, np.float32)
    return [np.concatenate([pad, audio[a: b + 1], pad]) for a, b in edges]


def test_a_held_piece_is_a_backchannel_only_when_heard_as_one(shared: OpeningWords) -> None:
    words = shared
    for name in ("yeah", "right"):  # (espeak's "mm-hmm" is heard as nothing: no verdict, the network decides)
        piece = load_mono16k(CLIPS / f"{name}.wav").astype(np.float32)
        assert words.piece_said(piece) == "backchannel", (name, words.piece)
    wait, no, rest = pieces_of("hesitant")
    for piece in (wait, no, rest[: SAMPLE_RATE]):
        assert words.piece_said(piece) != "backchannel", words.piece
    assert words.piece_said(wait) == "stop", words.piece  # named: it will not let the reply go on
    # judging a piece leaves the opening words' search as it was
    listen(words, load_mono16k(CLIPS / "weather.wav").astype(np.float32))
    assert words.verdict() is True


def test_a_held_piece_is_named_by_its_own_sound_whatever_the_conversation_said_before(shared: OpeningWords) -> None:
    """The features' state a conversation leaves (its cepstral mean among it) named development
    voices' backchannels stop words: a piece is judged as a conversation's first sound would be."""
    words = shared
    wait, no, rest = pieces_of("hesitant")
    pieces = [load_mono16k(CLIPS / f"{n}.wav").astype(np.float32) for n in ("yeah", "right")] + [wait, no, rest]
    first = []
    for piece in pieces:  # each one as the first thing a new conversation hears
        words.reset()
        words.piece_said(piece)
        first.append(words.piece)
    words.reset()
    later = []
    for piece, name in zip(pieces, ("table", "long_pause", "mono1", "weather", "train"), strict=True):
        listen(words, load_mono16k(CLIPS / f"{name}.wav").astype(np.float32) * 0.5)  # the conversation so far
        words.piece_said(piece)
        later.append(words.piece)
    assert later == first


def test_a_step_only_writes_its_audio_to_the_recogniser_process(shared: OpeningWords) -> None:
    import time

    words = shared
    words.verdict()  # (the child is up)
    audio = np.concatenate([np.zeros(STEP, np.float32), load_mono16k(CLIPS / "weather.wav").astype(np.float32),
                            np.zeros(3 * STEP, np.float32)])
    began = time.perf_counter()
    for start in range(0, audio.size, STEP):
        words.push(audio[start: start + STEP])
    pushed = time.perf_counter() - began
    assert pushed < 0.3  # 3 s of speech: decoding its head takes a second of CPU, in the child
    assert words.verdict() is True


def test_a_recogniser_failure_is_one_clear_error_at_the_next_verdict() -> None:
    from duplex.errors import DuplexError

    words = OpeningWords()
    words.recogniser.send(b"Z")
    with pytest.raises(DuplexError, match="cue_words: the recogniser failed .*unknown job"):
        words.verdict()
    assert words.verdict() is None  # reported once; the child goes on
    words.recogniser.process.kill()
    words.recogniser.process.wait()
    with pytest.raises(DuplexError, match="cue_words: the recogniser process ended"):
        words.verdict()


def test_the_recogniser_process_ends_with_its_window() -> None:
    import gc
    import time

    words = OpeningWords()
    process = words.recogniser.process
    assert process.poll() is None
    del words
    gc.collect()
    deadline = time.monotonic() + 5
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() == 0
