"""The user's pace within a turn (duplex/backbones/tiny_fd/pace.py): which silences count, and the wait."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from duplex.backbones.tiny_fd.pace import MIN_WAIT_STEPS, PACE_FACTOR, SENTENCE_STEPS, TurnPace

STATEMENT, QUESTION = 0.1, 0.9  # the rules' P(asks) for what came before a silence


def told(pace: TurnPace, steps: int, after_quiet: int = 0, asks: float | None = STATEMENT) -> None:
    """The user speaks `steps` steps, the first after `after_quiet` silent ones."""
    pace.spoke(after_quiet, asks)
    for _ in range(steps - 1):
        pace.spoke(0, None)


def test_two_pauses_between_sentences_set_the_wait_to_twice_the_longer() -> None:
    pace = TurnPace()
    told(pace, SENTENCE_STEPS)
    told(pace, SENTENCE_STEPS, after_quiet=2)
    assert pace.wait(10) == 10  # one pause says nothing of the next
    told(pace, SENTENCE_STEPS, after_quiet=3)
    assert pace.gaps == [2, 3]
    assert pace.wait(10) == PACE_FACTOR * 3
    assert pace.wait(4) == 4  # never longer than the rules' own wait
    pace.reset()
    assert pace.wait(10) == 10


def test_pauses_after_a_question_a_breath_or_no_verdict_do_not_count() -> None:
    pace = TurnPace()
    told(pace, SENTENCE_STEPS)
    told(pace, SENTENCE_STEPS, after_quiet=3, asks=QUESTION)  # after a question: the user was answered or not
    told(pace, SENTENCE_STEPS, after_quiet=3, asks=None)  # no verdict was asked for
    told(pace, 1, after_quiet=1)  # a word's gap
    assert pace.gaps == []
    short = TurnPace()
    told(short, SENTENCE_STEPS - 2)
    told(short, 2, after_quiet=2)  # a breath inside the first sentence (too little speech before it) ...
    told(short, 3, after_quiet=3)  # ... then its end, a sentence's worth of speech in all: counted
    told(short, 3, after_quiet=3)  # a pause after too little since
    assert short.gaps == [3]


@given(st.lists(st.tuples(st.integers(1, 20), st.integers(0, 12), st.sampled_from([STATEMENT, QUESTION, None])),
                max_size=12), st.integers(1, 20))
def test_the_wait_is_never_longer_than_the_rules_and_never_under_its_floor(
        turn: list[tuple[int, int, float | None]], unfinished: int) -> None:
    pace = TurnPace()
    for steps, quiet, asks in turn:
        told(pace, steps, quiet, asks)
    wait = pace.wait(unfinished)
    assert wait <= unfinished
    assert wait >= min(unfinished, MIN_WAIT_STEPS)
    assert wait == unfinished or len(pace.gaps) >= 2
