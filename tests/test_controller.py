"""The controller: every (phase, input) pair, invariants over random streams, table checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from states import INITIAL, TRANSITIONS, Action, Controller, Input, Phase, Row, TableError, check_table, transition

CUT = {Action.FLUSH_SPEAKER, Action.CANCEL_SYNTHESIS, Action.TRUNCATE_CONTEXT}


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("inp", list(Input))
def test_every_pair_has_a_row_that_leads_somewhere_valid(phase: Phase, inp: Input) -> None:
    result = transition(phase, inp)
    assert result.target in Phase
    assert all(isinstance(a, Action) for a in result.actions)
    assert len(set(result.actions)) == len(result.actions)


def test_shift_while_listening_starts_the_speaker() -> None:
    result = transition(Phase.LISTENING, Input.SHIFT)
    assert (result.target, result.actions) == (Phase.SPEAKING, (Action.START_SPEAKER,))


def test_break_while_speaking_flushes_cancels_and_truncates_at_once() -> None:
    result = transition(Phase.SPEAKING, Input.BREAK)
    assert result.target is Phase.LISTENING
    assert set(result.actions) == CUT
    assert result.actions[0] is Action.FLUSH_SPEAKER


def test_odd_pairs_are_harmless() -> None:
    assert transition(Phase.LISTENING, Input.BREAK).target is Phase.LISTENING
    assert transition(Phase.LISTENING, Input.BREAK).actions == ()
    assert transition(Phase.LISTENING, Input.AUDIO).actions == (Action.DROP_AUDIO,)
    assert transition(Phase.SPEAKING, Input.SHIFT).target is Phase.SPEAKING
    assert transition(Phase.SPEAKING, Input.SHIFT).actions == ()
    assert transition(Phase.DRAINING, Input.AUDIO).actions == (Action.DROP_AUDIO,)


def test_eot_drains_then_listens_once_playback_is_done() -> None:
    c = Controller(Phase.SPEAKING)
    assert c.feed(Input.EOT).target is Phase.DRAINING
    assert c.feed(Input.PLAYBACK_DONE).target is Phase.LISTENING


def test_barge_in_on_the_draining_tail_still_cuts() -> None:
    assert set(transition(Phase.DRAINING, Input.BREAK).actions) == CUT


def test_device_error_degrades_and_recovery_listens_again() -> None:
    c = Controller(Phase.SPEAKING)
    assert c.feed(Input.DEVICE_ERROR).target is Phase.DEGRADED
    assert c.feed(Input.SHIFT).target is Phase.DEGRADED
    assert c.feed(Input.DEVICE_RECOVERED).target is Phase.LISTENING


def test_audio_is_played_only_while_speaking() -> None:
    for phase in Phase:
        playing = Action.PLAY_AUDIO in transition(phase, Input.AUDIO).actions
        assert playing == (phase is Phase.SPEAKING)


inputs = st.lists(st.sampled_from(list(Input)), max_size=200)


@settings(max_examples=400, deadline=None)
@given(inputs)
def test_speaking_is_only_ever_entered_through_shift(stream: list[Input]) -> None:
    c = Controller()
    for inp in stream:
        before = c.phase
        after = c.feed(inp).target
        if after is Phase.SPEAKING and before is not Phase.SPEAKING:
            assert inp is Input.SHIFT


@settings(max_examples=400, deadline=None)
@given(inputs)
def test_break_while_speaking_always_flushes_in_the_same_step(stream: list[Input]) -> None:
    c = Controller()
    for inp in [Input.START, *stream]:
        before = c.phase
        result = c.feed(inp)
        if before is Phase.SPEAKING and inp is Input.BREAK:
            assert Action.FLUSH_SPEAKER in result.actions
            assert result.target is Phase.LISTENING


@settings(max_examples=400, deadline=None)
@given(inputs)
def test_stop_always_reaches_idle_with_the_speaker_flushed(stream: list[Input]) -> None:
    c = Controller()
    for inp in stream:
        c.feed(inp)
    result = c.feed(Input.STOP)
    assert c.phase is Phase.IDLE
    if result.source is not Phase.IDLE:
        assert Action.FLUSH_SPEAKER in result.actions and Action.CLOSE_MIC in result.actions


@settings(max_examples=200, deadline=None)
@given(inputs)
def test_no_stream_wedges_the_controller(stream: list[Input]) -> None:
    """Whatever happened, START then SHIFT (after recovery) gets the model speaking again."""
    c = Controller()
    for inp in stream:
        c.feed(inp)
    for inp in (Input.DEVICE_RECOVERED, Input.START, Input.SHIFT):
        c.feed(inp)
    assert c.phase is Phase.SPEAKING


def test_the_shipped_table_passes_its_own_check() -> None:
    check_table(TRANSITIONS)
    assert INITIAL is Phase.IDLE


def _with(changes: dict, drop: tuple = ()) -> dict:
    table = dict(TRANSITIONS)
    table.update(changes)
    for key in drop:
        del table[key]
    return table


def test_a_table_with_a_missing_pair_is_refused() -> None:
    with pytest.raises(TableError, match="no row for SPEAKING/BREAK"):
        check_table(_with({}, drop=((Phase.SPEAKING, Input.BREAK),)))


def test_a_table_with_an_unreachable_phase_is_refused() -> None:
    table = {key: (Row(Phase.IDLE) if row.to is Phase.DEGRADED else row) for key, row in TRANSITIONS.items()}
    with pytest.raises(TableError, match="unreachable from IDLE: DEGRADED"):
        check_table(table)


def test_a_table_with_a_trap_phase_is_refused() -> None:
    table = {key: (Row(Phase.DEGRADED) if key[0] is Phase.DEGRADED else row) for key, row in TRANSITIONS.items()}
    with pytest.raises(TableError, match="no way back to IDLE from: DEGRADED"):
        check_table(table)


def test_a_broken_table_fails_at_import_time(tmp_path, monkeypatch) -> None:
    """The check runs when states.table is imported: a table that drops a row cannot load."""
    import subprocess
    import sys
    from pathlib import Path

    src = (Path(__file__).parents[1] / "states" / "table.py").read_text()
    broken = src.replace("    row(P.SPEAKING, I.BREAK, P.LISTENING, *_CUT, note=\"barge-in\")\n", "")
    broken = broken.replace("    for phase in (P.LISTENING, P.SPEAKING, P.DRAINING, P.DEGRADED):",
                            "    for phase in (P.LISTENING, P.DRAINING, P.DEGRADED):")
    assert broken != src
    (tmp_path / "broken_table.py").write_text(broken)
    proc = subprocess.run([sys.executable, "-c", "import broken_table"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "TableError" in proc.stderr and "SPEAKING" in proc.stderr
