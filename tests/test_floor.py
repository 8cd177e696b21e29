"""Floor policies: the VAD rules' holds, resumes and barge-ins, the pitch cue, and tiny-fd's decisions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from audio_io.format import SAMPLE_RATE, STEP_SAMPLES
from duplex.backbones.floor import Move, tokens_for
from duplex.backbones.floor.pitch import ending_falls
from duplex.backbones.floor.tinyfd import TinyFdFloor
from duplex.backbones.floor.vad import VadFloor
from duplex.config import PolicyConfig
from duplex.cue.text import ASKS, BACKCHANNEL, STATEMENT, STOP
from duplex.cue.thresholds import LIKELY_WAIT_STEPS
from duplex.tokens import BREAK, EOT, SHIFT, THINK, Kind, Token, audio
from tests.cue_fakes import NamedPiece, ScriptedCues, VerdictsInTurn


class ScriptedVad:
    """Speech wherever the chunk is loud: the rules under test, not a detector's quirks."""

    ends_in_speech = False

    def speech_prob(self, chunk: np.ndarray) -> float:
        return 1.0 if float(np.abs(chunk).max()) > 0.05 else 0.0

    def reset(self) -> None: ...


def glide(seconds: float, f0: float, f1: float) -> np.ndarray:
    """A voiced-like tone (harmonics) gliding from f0 to f1 Hz."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(np.linspace(f0, f1, t.size)) / SAMPLE_RATE
    return (0.2 * sum(np.sin(k * phase) / k for k in range(1, 6))).astype(np.float32)


def run(floor: VadFloor, pattern: str) -> list[Move]:
    """One move per character: 's' a speech step, '.' a silent step, 'n' a sound the detector does not
    call speech (-35 dBFS: a word's soft onset); the model's output is silent."""
    moves = []
    for c in pattern:
        chunk = {"s": glide(0.16, 150, 150), "n": glide(0.16, 150, 150) / 10}.get(c, np.zeros(STEP_SAMPLES, np.float32))
        moves.append(floor.decide(chunk))
        floor.played(0.0)
    return moves


def vad_floor(**kw: float) -> VadFloor:
    return VadFloor(PolicyConfig(unfinished_silence_s=0.16, **kw), ScriptedVad())


def test_the_turn_is_taken_after_min_silence() -> None:
    moves = run(vad_floor(), "ssss....")
    assert moves == [Move.WAIT] * 7 + [Move.TAKE]


def test_a_backchannel_holds_the_reply_then_it_resumes() -> None:
    floor = vad_floor()
    run(floor, "ssss....")
    moves = run(floor, "..ss" + "." * 6 + "..")
    assert moves[:2] == [Move.SPEAK] * 2 and moves[2:4] == [Move.HOLD] * 2
    assert moves[4:8] == [Move.HOLD] * 4 and moves[8] is Move.SPEAK  # 0.8 s of silence, then resume
    assert Move.BREAK not in moves


def test_pieces_while_held_keep_it_held_and_the_first_long_one_is_the_barge_in() -> None:
    floor = vad_floor()
    run(floor, "ssss....")
    moves = run(floor, ".ss...ss...ssssss")  # "wait, ... no, ... that is not what I asked": 0.48 s apart
    assert moves[:3] == [Move.SPEAK, Move.HOLD, Move.HOLD]
    assert moves[3:16] == [Move.HOLD] * 13  # quiet between the pieces, but never long enough to resume
    assert moves[16] is Move.BREAK  # the sixth step of one piece: longer than any backchannel
    assert not floor.speaking


def test_a_pair_of_backchannels_while_held_lets_the_reply_go_on() -> None:
    floor = vad_floor()
    run(floor, "ssss....")
    moves = run(floor, ".ss...ss" + "." * 5)  # "mm-hmm, ... yeah"
    assert Move.BREAK not in moves and moves[-1] is Move.SPEAK and moves[-2] is Move.HOLD


def test_a_sound_the_detector_misses_is_not_silence() -> None:
    # Listening: 0.48 s of silence and the soft onset of the next word do not end the turn.
    moves = run(vad_floor(), "ssss...nnss....")
    assert moves.index(Move.TAKE) == 14  # four silent steps after the last speech, not at the onset
    # ... but the chunk right after speech is the word's tail (it straddles the word's end): silence
    assert run(vad_floor(), "ssssn...").index(Move.TAKE) == 7
    assert run(vad_floor(), "ssss.n....").index(Move.TAKE) == 8  # a sound after the room is not: a step later
    # Held: nor do they resume the reply inside a hesitation's gap.
    floor = vad_floor()
    run(floor, "ssss....")
    held = run(floor, ".ss...nnss" + "." * 5)
    assert held[1:-1] == [Move.HOLD] * (len(held) - 2) and held[-1] is Move.SPEAK


def test_long_overlap_is_a_barge_in() -> None:
    floor = vad_floor()
    run(floor, "ssss....")
    moves = run(floor, "ssssss")
    assert moves[:5] == [Move.HOLD] * 5 and moves[5] is Move.BREAK


def test_pitch_cue_reads_falling_and_rising_endings() -> None:
    assert ending_falls(glide(1.0, 180, 110)) is True
    assert ending_falls(glide(1.0, 140, 190)) is False
    assert ending_falls(glide(1.0, 150, 150)) is False
    assert ending_falls(np.zeros(SAMPLE_RATE, np.float32)) is None


def test_a_rising_fragment_waits_longer_than_a_falling_one() -> None:
    rising = VadFloor(PolicyConfig(unfinished_silence_s=1.6), ScriptedVad())
    falling = VadFloor(PolicyConfig(unfinished_silence_s=1.6), ScriptedVad())
    pause = [np.zeros(STEP_SAMPLES, np.float32)] * 12

    def moves(floor: VadFloor, fragment: np.ndarray) -> list[Move]:
        chunks = [fragment[i : i + STEP_SAMPLES] for i in range(0, fragment.size, STEP_SAMPLES)]
        return [floor.decide(c) for c in chunks + pause]

    up, down = moves(rising, glide(0.96, 140, 200)), moves(falling, glide(0.96, 190, 110))
    assert down.index(Move.TAKE) == 6 + 3  # 0.64 s: 4 silent steps
    assert up.index(Move.TAKE) == 6 + 9  # 1.6 s: 10 silent steps


def test_tokens_for_pads_to_four_and_closes_a_short_reply() -> None:
    units = iter([[1, 2, 3], [4, 5]])
    assert tokens_for(Move.TAKE, lambda n: next(units)) == ([SHIFT, audio(1), audio(2), audio(3)], False)
    assert tokens_for(Move.SPEAK, lambda n: next(units)) == ([audio(4), audio(5), EOT, THINK], True)
    assert tokens_for(Move.BREAK, lambda n: []) == ([BREAK, THINK, THINK, THINK], False)
    assert tokens_for(Move.HOLD, lambda n: []) == ([THINK] * 4, False)


@dataclass
class Grammar:
    speaking: bool = False
    cursor: int = 0
    end: int = 0


@dataclass
class FakeTinyFd:
    """Plays a script of first tokens as a TinyFdBackbone would emit them; records its echo reference."""

    script: list[str]
    floor: Grammar = field(default_factory=Grammar)
    references: list[int] = field(default_factory=list)
    cut: bool = False

    @property
    def speaking(self) -> bool:
        return self.floor.speaking

    def units_left(self) -> int:
        return self.floor.end - self.floor.cursor if self.floor.speaking else 0

    def rewind_reply(self, unit: int) -> None:
        self.floor.cursor = unit

    def end_reply(self) -> None:
        if self.floor.speaking:
            self.floor.end = self.floor.cursor

    def step(self, chunk: np.ndarray, reference: np.ndarray | None = None) -> Sequence[Token]:
        self.references.append(0 if reference is None else reference.size)
        first = self.script.pop(0)
        if first == "S":
            self.floor.speaking, self.floor.cursor, self.floor.end = True, 11, 20
            return [SHIFT, audio(10), audio(11), audio(12)]
        if first == "B":
            self.floor.speaking = False
            return [BREAK, THINK, THINK, THINK]
        if first == "U":
            self.floor.cursor += 4
            return [audio(0)] * 4
        return [THINK] * 4

    def heard(self, units: int) -> None:
        self.floor.speaking, self.cut = False, True

    def reset(self) -> None: ...


def test_tiny_fd_decisions_map_to_moves_and_its_reply_is_kept_in_step() -> None:
    model = FakeTinyFd(list("TSUUUTTUB"))
    floor = TinyFdFloor(model)
    loud = glide(0.16, 150, 150)
    moves = []
    for _ in range(9):
        moves.append(floor.decide(loud))
        floor.played(0.1, np.ones(640 * 4, np.float32) if moves[-1] in (Move.TAKE, Move.SPEAK) else None)
        assert model.floor.cursor < model.floor.end or not model.floor.speaking  # never runs out
    assert moves == [Move.WAIT, Move.TAKE, Move.SPEAK, Move.SPEAK, Move.SPEAK, Move.HOLD, Move.HOLD,
                     Move.SPEAK, Move.BREAK]
    assert floor.turn_audio().size == 2 * STEP_SAMPLES  # what the user said up to the SHIFT
    assert model.references[:3] == [0, 0, 2560] and model.references[6] == 0  # it hears what was played


def test_tiny_fd_floor_ends_its_reply_with_the_responders_and_stops_on_a_cut() -> None:
    model = FakeTinyFd(list("SU"))
    floor = TinyFdFloor(model)
    assert floor.decide(glide(0.16, 150, 150)) is Move.TAKE
    floor.ended()
    assert model.floor.end == model.floor.cursor and not floor.speaking  # its grammar closes with EOT next
    assert floor.decide(np.zeros(STEP_SAMPLES, np.float32)) is Move.WAIT
    model.script[:] = ["S"]
    floor.decide(glide(0.16, 150, 150))
    floor.cut()
    assert model.cut and not floor.speaking
    assert [t.kind for t in tokens_for(Move.WAIT, lambda n: [])[0]] == [Kind.THINK] * 4




def cued_floor(label: int) -> VadFloor:
    cfg = PolicyConfig(min_silence_s=0.32, unfinished_silence_s=1.6, cues=True)
    return VadFloor(cfg, ScriptedVad(), ScriptedCues(label))  # type: ignore[arg-type]


def test_with_cues_a_question_is_answered_after_min_silence_and_a_statement_waits() -> None:
    assert run(cued_floor(ASKS), "ssss..")[-1] is Move.TAKE
    moves = run(cued_floor(STATEMENT), "ssss" + "." * 10)
    assert Move.TAKE not in moves[:-1] and moves[-1] is Move.TAKE  # 1.6 s of silence


def test_with_cues_a_backchannel_resumes_the_reply_at_its_first_silence() -> None:
    floor = cued_floor(BACKCHANNEL)
    assert run(floor, "ssss" + "." * 10)[-1] is Move.TAKE  # (not a question: the long wait)
    moves = run(floor, "..ss.")
    assert moves == [Move.SPEAK] * 2 + [Move.HOLD] * 2 + [Move.SPEAK]


def test_with_cues_a_stop_word_ends_the_reply_at_its_first_silence() -> None:
    floor = cued_floor(STOP)
    assert run(floor, "ssss" + "." * 10)[-1] is Move.TAKE
    assert run(floor, "..ss.") == [Move.SPEAK] * 2 + [Move.HOLD] * 2 + [Move.BREAK]




def two_pieces_over_the_reply(*backchannel: float) -> list[Move]:
    """A turn (a statement: the long wait), then "[a piece] ... [a piece]" over the reply."""
    cfg = PolicyConfig(min_silence_s=0.32, unfinished_silence_s=1.6, cues=True)
    floor = VadFloor(cfg, ScriptedVad(), VerdictsInTurn(0.0, *backchannel))  # type: ignore[arg-type]
    assert run(floor, "ssss" + "." * 10)[-1] is Move.TAKE
    return run(floor, "..ss..ss.")


def test_with_cues_a_cough_then_a_backchannel_resumes_the_reply() -> None:
    moves = two_pieces_over_the_reply(0.7, 0.95)  # the cough not sure enough; "mm-hmm" is
    assert moves == [Move.SPEAK] * 2 + [Move.HOLD] * 6 + [Move.SPEAK]


def test_with_cues_a_backchannel_after_an_unlikely_one_is_still_a_barge_in() -> None:
    assert two_pieces_over_the_reply(0.2, 0.95) == [Move.SPEAK] * 2 + [Move.HOLD] * 6 + [Move.BREAK]


def test_with_cues_an_unclear_second_piece_is_a_barge_in_once_it_is_over() -> None:
    assert two_pieces_over_the_reply(0.7, 0.6) == [Move.SPEAK] * 2 + [Move.HOLD] * 6 + [Move.BREAK]


def words_named_floor(*backchannel: float) -> VadFloor:
    """Cues and words: the network scripted piece by piece, every held piece named "yeah", and the
    reply taken after a statement's long wait."""
    cfg = PolicyConfig(min_silence_s=0.32, unfinished_silence_s=1.6, cues=True)
    floor = VadFloor(cfg, ScriptedVad(), VerdictsInTurn(0.0, *backchannel))  # type: ignore[arg-type]
    assert floor.cues is not None
    floor.cues.words = NamedPiece("backchannel")  # type: ignore[assignment]
    assert run(floor, "ssss" + "." * 10)[-1] is Move.TAKE
    return floor


def test_with_words_a_backchannel_only_they_named_resumes_the_reply_one_silent_step_later() -> None:
    floor = words_named_floor(0.5)
    moves = run(floor, "..ss" + "." * (LIKELY_WAIT_STEPS + 1))
    assert moves == [Move.SPEAK] * 2 + [Move.HOLD] * (2 + LIKELY_WAIT_STEPS) + [Move.SPEAK]


def test_with_words_a_likely_backchannel_that_goes_on_is_not_resumed_over() -> None:
    floor = words_named_floor(0.5)
    assert run(floor, "..ss.s") == [Move.SPEAK] * 2 + [Move.HOLD] * 4  # a dropout inside the piece


def test_with_cues_the_answer_to_an_interruption_is_not_held_back_by_the_unfinished_silence() -> None:
    # "You misunderstood me, I need it for four people": not a question, but the user asked for the floor
    floor = cued_floor(STATEMENT)
    assert run(floor, "ssss" + "." * 10)[-1] is Move.TAKE
    moves = run(floor, "ssssss")
    assert moves[-1] is Move.BREAK
    assert run(floor, "ss..") == [Move.WAIT] * 3 + [Move.TAKE]  # min_silence, not 1.6 s
    floor.ended()  # the reply played out
    moves = run(floor, "ssss" + "." * 10)  # the next turn is an ordinary one again
    assert moves[-1] is Move.TAKE and Move.TAKE not in moves[:-1]


def test_with_cues_an_interruption_that_was_only_a_stop_word_waits_for_the_rest() -> None:
    # "hold on, ... [more than min_silence] ... I meant the return ticket": the rest is still to come
    floor = cued_floor(STOP)
    assert run(floor, "ssss" + "." * 10)[-1] is Move.TAKE
    assert run(floor, "ssssss")[-1] is Move.BREAK
    moves = run(floor, "." * 10)
    assert Move.TAKE not in moves[:-1] and moves[-1] is Move.TAKE  # the unfinished silence


class HeardWords:
    """The recogniser's verdicts on every utterance, scripted: asks (True), states (False) or neither
    (None); counts what it was pushed."""

    def __init__(self, asks: bool | None) -> None:
        self.asks = asks
        self.pushed = 0

    def push(self, chunk: np.ndarray) -> None:
        self.pushed += 1

    def reset(self) -> None: ...

    def verdict(self) -> bool:
        return self.asks is True

    def stated(self) -> bool:
        return self.asks is False


def heard_floor(asks: bool | None) -> VadFloor:
    cfg = PolicyConfig(min_silence_s=0.48, unfinished_silence_s=1.6, cue_words=True)
    return VadFloor(cfg, ScriptedVad(), words=HeardWords(asks))  # type: ignore[arg-type]


def test_with_words_alone_a_question_is_answered_at_once_and_a_statement_waits() -> None:
    assert run(heard_floor(True), "ssss...")[-1] is Move.TAKE  # 0.48 s
    moves = run(heard_floor(False), "ssss" + "." * 10)
    assert Move.TAKE not in moves[:-1] and moves[-1] is Move.TAKE  # 1.6 s
    # Misheard: the pitch of the last fragment decides, as without the words
    for ending, waits in ((glide(0.96, 190, 110), 3), (glide(0.96, 140, 200), 10)):
        floor = heard_floor(None)
        chunks = [ending[i: i + STEP_SAMPLES] for i in range(0, ending.size, STEP_SAMPLES)]
        moves = [floor.decide(c) for c in chunks + [np.zeros(STEP_SAMPLES, np.float32)] * 12]
        assert moves.index(Move.TAKE) == len(chunks) + waits - 1
    assert heard_floor(True).words is not None


def test_with_words_alone_an_interruption_is_answered_at_once_only_when_it_asks() -> None:
    for asks, quiet in ((True, 3), (False, 10), (None, 10)):
        floor = heard_floor(asks)
        run(floor, "ssss" + "." * 10)  # the model took the turn
        assert run(floor, "s" * 6)[-1] is Move.BREAK
        moves = run(floor, "." * 10)
        assert moves.index(Move.TAKE) == quiet - 1, asks  # "hold on, ... no, ...": the rest may come


def test_a_shh_over_the_reply_is_a_barge_in_once_it_is_over_and_a_cough_is_not() -> None:
    """The VAD rules without cues: a held "shh" (no voice, a sustained hiss) ends the reply at its first
    silence; it was resumed over like a backchannel. A cough's burst still is."""
    from pathlib import Path

    from audio_io.wav import load_mono16k
    from duplex.eval.tts import cough

    shh = load_mono16k(Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "clips" / "hush.wav")
    for sound, ends in ((shh, True), (cough(np.random.default_rng(3), 0.3), False)):
        floor = vad_floor()
        run(floor, "ssss....")  # the model took the turn
        audio = np.concatenate([np.zeros(STEP_SAMPLES), sound, np.zeros(8 * STEP_SAMPLES)]).astype(np.float32)
        moves = []
        for i in range(0, 10 * STEP_SAMPLES, STEP_SAMPLES):
            moves.append(floor.decide(audio[i:i + STEP_SAMPLES]))
            floor.played(0.0)
        assert Move.HOLD in moves
        assert (Move.BREAK in moves) is ends and (Move.SPEAK in moves[moves.index(Move.HOLD):]) is not ends
        if not ends:  # no voice in it: the reply goes on at its first silence, not after resume_after_s
            assert moves.index(Move.SPEAK, moves.index(Move.HOLD)) <= 4
        if ends:  # and it asked for quiet: no turn is taken to answer it
            moves = [floor.decide(np.zeros(STEP_SAMPLES, np.float32)) for _ in range(20)]
            assert set(moves) == {Move.WAIT} and not floor.speaking
