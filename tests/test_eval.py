"""The held-out evaluation tool: conversation shapes, pooling, published rows, bad input."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from audio_io.levels import audible_spans
from duplex.eval.__main__ import draw_folder
from duplex.eval.heldout import SHAPES, Builder
from duplex.eval.published import NOT_IN_REPO, ROWS, published
from duplex.eval.summary import summarise
from duplex.eval.tts import Tts
from duplex.scenario.spec import NoiseSpec, Role, Trigger

ROOT = Path(__file__).resolve().parents[1]


def gaps(path: Path) -> list[float]:
    audio, _ = sf.read(path, dtype="float32")
    spans = audible_spans(audio)
    return [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False) if b[0] - a[1] >= 0.2]


@pytest.mark.skipif(subprocess.run(["which", "espeak-ng"], capture_output=True).returncode, reason="no espeak-ng")
def test_every_shape_is_built_as_documented(tmp_path: Path) -> None:
    convs = Builder("espeak", 3, tmp_path / "work", Tts(tmp_path / "tts")).build(1)
    by = {c.shape: c.scenario for c in convs}
    assert list(by) == list(SHAPES)
    assert [c.role for c in by["user_interruption"].user] == [Role.TURN, Role.BARGE_IN]
    assert by["user_interruption"].user[1].after.event is Trigger.SPEAKING_STARTED
    assert all(0.5 <= d <= 1.0 + 0.03 for d in gaps(by["pause_handling"].user[0].audio))
    long = gaps(by["long_pause"].user[0].audio)
    assert len(long) >= 2 and all(0.3 <= d <= 1.5 + 0.03 for d in long)
    hesitant = gaps(by["hesitant_barge_in"].user[1].audio)
    assert hesitant and all(0.2 <= d <= 0.6 + 0.03 for d in hesitant)
    mono = by["monologue"].user
    assert [c.role for c in mono] == [Role.MONOLOGUE] * 3
    for a, b in zip(mono, mono[1:], strict=False):  # 0.45 s of silence between sentences
        length = sf.info(a.audio).duration
        assert b.at - (a.at + length) + 0.1 == pytest.approx(0.45, abs=0.01)
    bc = by["backchannel"]
    assert sorted(c.role.value for c in bc.user[1:]) == ["backchannel", "backchannel", "noise"]
    for a, b in zip(bc.user[1:], bc.user[2:], strict=False):  # one after another, never over each other
        assert 0.4 - 0.01 <= b.after.delay - (a.after.delay + sf.info(a.audio).duration) <= 1.2 + 0.01
    assert bc.echo is not None and bc.echo.gain_db == -20.0
    again = Builder("espeak", 3, tmp_path / "work2", Tts(tmp_path / "tts")).build(1)
    assert [c.scenario.duration for c in again] == [c.scenario.duration for c in convs]  # seeded
    assert all(c.scenario.noise is None for c in convs)
    noisy = Builder("espeak", 3, tmp_path / "work3", Tts(tmp_path / "tts"), noise=NoiseSpec("pink", -35.0)).build(1)
    assert all(c.scenario.noise == NoiseSpec("pink", -35.0) for c in noisy)  # under every one, backchannels too


def test_draws_of_one_seed_with_other_shapes_or_counts_never_share_a_folder() -> None:
    folders = {draw_folder("festival", "b", 7, n, shapes) for n in (6, 16)
               for shapes in (SHAPES, ("backchannel",), ("backchannel", "monologue"))}
    assert len(folders) == 6
    assert draw_folder("flite:kal", "a", 7, 6, tuple(reversed(SHAPES))) == "flite_kal-a-seed7-6x-all"


def test_summary_pools_conversations() -> None:
    runs = [
        ("long_pause", {"floors": 1, "floors_with_pauses": 1, "paused_floors_with_false_start": 1,
                        "floors_with_false_start": 1, "false_starts": 2, "turns_answered": 1,
                        "strict_turn_latency_s": [0.2], "fdb_items": {"pause_tor": [0.0]}}),
        ("hesitant_barge_in", {"floors": 1, "turns_answered": 1, "strict_turn_latency_s": [0.4, 1.0],
                               "overlap_s": [0.2, 0.4], "barge_ins_with_resume": 1,
                               "fdb_items": {"pause_tor": [], "stop_latency_s": [0.3]}}),
        ("backchannel", {"floors": 1, "false_barge_ins": 1, "continued_over_backchannel": 1,
                         "backchannels_over_reply": 2}),
    ]
    s = summarise(runs)
    assert s["false_starts_paused"] == {"n": 1, "of": 1, "rate": 1.0}
    assert s["false_starts_all"] == {"n": 1, "of": 3, "rate": 0.333}
    assert s["turn_latency_median_s"] == 0.4 and s["turn_latency_p90_s"] == pytest.approx(0.88)
    assert s["turn_latency_question_s"] is None  # no monologue in the run: nothing to split
    split = summarise([*runs, ("monologue", {"floors": 1, "turns_answered": 1, "strict_turn_latency_s": [1.6]})])
    assert split["turn_latency_question_s"] == "0.400 / 0.880 (n=3)"
    assert split["turn_latency_statement_s"] == "1.600 / 1.600 (n=1)"
    assert s["resumes_over_barge_in"] == {"n": 1, "of": 2, "rate": 0.5}
    assert s["overlap_mean_s"] == pytest.approx(0.3)
    assert s["continuation"]["rate"] == 0.5 and s["echo_false_barge_ins"] == 1
    assert s["fdb_pause_tor"] == {"mean": 0.0, "n": 1}
    assert s["fdb_stop_latency_s"] == {"mean": 0.3, "n": 1}  # no user_interruption shape: pooled over all
    only = summarise([*runs, ("user_interruption", {"fdb_items": {"stop_latency_s": [0.1, 0.2]}})])
    assert only["fdb_stop_latency_s"] == {"mean": 0.15, "n": 2}  # its own task shape only


def test_published_rows_are_the_readme_numbers_and_missing_cells_say_so() -> None:
    assert set(ROWS) == {"Moshi", "Freeze-Omni", "dGSLM", "PersonaPlex", "Gemini Live 2.0", "GPT-Realtime"}
    assert published("Moshi", "pause_tor") == 0.985 and published("GPT-Realtime", "turn_latency_s") == 1.470
    assert published("PersonaPlex", "stop_latency_s") == NOT_IN_REPO
    assert all(isinstance(r["code"], str) and len(r["code"]) >= 7 for r in ROWS.values())


@pytest.mark.parametrize(("args", "needle"), [
    (["--family", "mbrola"], "invalid choice: 'mbrola'"),
    (["--config", "nowhere.yaml"], "--config: no such file: nowhere.yaml"),
    (["--shapes", "pause_handling,chatter"], "--shapes: unknown chatter"),
    (["--per-shape", "0"], "--per-shape must be >= 1"),
    (["--noise", "loud"], "--noise 'loud': expected white:DBFS or pink:DBFS"),
    (["--noise", "pink:nan"], "--noise 'pink:nan': expected white:DBFS or pink:DBFS"),
    (["--noise", "white:6"], "--noise 'white:6': 6 dBFS is not in -120..0"),
])
def test_bad_arguments_are_one_line_errors_with_status_2(args: list[str], needle: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "duplex.eval", *args], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and needle in proc.stderr.strip().splitlines()[-1]


def test_compare_puts_results_side_by_side_and_rejects_other_files(tmp_path: Path) -> None:
    import json

    from duplex.eval.compare import markdown

    before = {"label": "before", "summary": summarise([("long_pause", {"floors": 1, "floors_with_pauses": 1,
                                                                       "paused_floors_with_false_start": 1})])}
    after = {"label": "after", "summary": summarise([("long_pause", {"floors": 1, "floors_with_pauses": 1})])}
    table = markdown([before, after]).splitlines()
    assert table[0] == "| metric | before | after |"
    assert "| false starts: turns with pauses/gaps | 1/1 (100%) | 0/1 (0%) |" in table
    (tmp_path / "a.json").write_text(json.dumps(before))
    (tmp_path / "b.json").write_text("[]")
    proc = subprocess.run([sys.executable, "-m", "duplex.eval.compare", str(tmp_path / "a.json"),
                           str(tmp_path / "b.json")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"duplex.eval.compare: {tmp_path / 'b.json'}: not a duplex.eval JSON (no 'summary')"


def _draw(seed: int, paused: int, false_starts: int, **setup: object) -> dict[str, object]:
    """A duplex.eval --json file's content: `paused` long-pause conversations, `false_starts` of them with one."""
    conversations = [{"shape": "long_pause", "metrics": {"floors": 1, "floors_with_pauses": 1,
                                                         "paused_floors_with_false_start": int(i < false_starts)}}
                     for i in range(paused)]
    return {"label": "tiny-fd", "config": "examples/tiny-fd-words.yaml", "family": "festival", "sentences": "b",
            "noise": None, "per_shape": 6, **setup, "seed": seed, "conversations": conversations,
            "summary": summarise([(c["shape"], c["metrics"]) for c in conversations])}


def test_compare_pools_draws_of_one_setup_into_a_column_with_its_seeds(tmp_path: Path) -> None:
    import json

    for seed, false_starts in ((171, 1), (172, 0), (173, 2), (177, 1)):
        (tmp_path / f"s{seed}.json").write_text(json.dumps(_draw(seed, 10, false_starts)))
    proc = subprocess.run([sys.executable, "-m", "duplex.eval.compare", "--interval",
                           f"pooled={tmp_path}/s17[1-3].json,{tmp_path}/s177.json", str(tmp_path / "s172.json")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.splitlines()
    assert table[0] == "| metric | pooled (seeds 171-173, 177) | tiny-fd |"
    # 4 of 40 pooled, and the Wilson interval of each count
    assert "| false starts: turns with pauses/gaps | 4/40 (10%; 4%-23%) | 0/10 (0%; 0%-28%) |" in table


def test_the_sentences_a_conversation_records_are_the_ones_its_turn_says(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from duplex.eval.heldout import BANKS, turn_sentences

    said: list[str] = []

    def say(self: Builder, text: str, speaker: object) -> np.ndarray:
        said.append(text)
        return np.full(8000, 0.1, dtype=np.float32)

    monkeypatch.setattr(Builder, "say", say)
    builder = Builder("espeak", 5, tmp_path / "work", Tts(tmp_path / "tts"), bank="c")
    at = 0  # each conversation's turn is said, in one piece and in order, after the one before it
    for conversation in builder.build(2):
        k = int(conversation.scenario.name.rsplit("-", 1)[1]) - 1
        assert conversation.sentences == turn_sentences(BANKS["c"], 5, conversation.shape, k)
        assert conversation.speaker is not None and conversation.speaker.voice.startswith("espeak:")
        run = list(conversation.sentences)
        at = next(i for i in range(at, len(said)) if said[i: i + len(run)] == run) + len(run)
    assert len({c.sentences for c in builder.build(1) if c.shape in ("smooth_turn_taking", "backchannel",
                                                                      "user_interruption", "hesitant_barge_in")}) == 4
    with pytest.raises(ValueError, match="unknown shape 'karaoke'"):
        turn_sentences(BANKS["c"], 5, "karaoke", 0)


def test_compare_draws_sentences_again_for_an_interval_a_clustered_failure_widens(tmp_path: Path) -> None:
    import json

    from duplex.eval.compare import over_sentences
    from duplex.eval.heldout import BANKS

    # ten sentences, ten paused turns each: one fails in all of them, or every one in one of them
    clustered = {f"s{i}": [10 if i == 0 else 0, 10] for i in range(10)}
    spread = {f"s{i}": [1, 10] for i in range(10)}
    lo, hi, n = over_sentences(clustered)
    assert n == 10 and lo == 0.0 and hi >= 0.2  # a Wilson interval of 10/100 per turn says 6%-17%
    assert over_sentences(spread) == (0.1, 0.1, 10)
    assert over_sentences(clustered) == (lo, hi, n)  # seeded
    assert over_sentences({"s0": [1, 4]}) is None

    # a file written before the sentences were recorded: worked out from its bank, seed and names
    draw = _draw(172, 8, 3)
    for i, c in enumerate(draw["conversations"]):
        c["name"] = f"long_pause-{i + 1}"
    (tmp_path / "old.json").write_text(json.dumps(draw))
    proc = subprocess.run([sys.executable, "-m", "duplex.eval.compare", "--interval", "--by-sentence",
                           str(tmp_path / "old.json")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    first = " / ".join(BANKS["b"].final_fragments[(172 + 0) % len(BANKS["b"].final_fragments)])
    lines = proc.stdout.splitlines()
    assert any(line.startswith("|   ... 95 % interval over sentences | ") and "(4 sentences)" in line for line in lines)
    assert f"| {first} | 1/2 |" in lines  # long_pause-1 and -5 say it; -1 failed
    # ... and one whose sentences nobody can know: one line, status 2
    (tmp_path / "own.json").write_text(json.dumps(_draw(173, 4, 1)))
    proc = subprocess.run([sys.executable, "-m", "duplex.eval.compare", "--by-sentence", str(tmp_path / "own.json")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "--by-sentence: the sentences of tiny-fd are not known" in proc.stderr


def test_compare_by_voice_summarises_each_speakers_conversations_apart(tmp_path: Path) -> None:
    import json

    draw = _draw(174, 6, 3)  # the three with a false start are one voice's
    for i, c in enumerate(draw["conversations"]):
        c["speaker"] = {"voice": "festival:ked_diphone" if i < 3 else "festival:cmu_us_slt_arctic_hts",
                        "pitch": 0.5, "rate": 1.0, "gain_db": 0.0}
    (tmp_path / "new.json").write_text(json.dumps(draw))
    proc = subprocess.run([sys.executable, "-m", "duplex.eval.compare", "--by-voice", f"x={tmp_path}/new.json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == ("| metric | x (seeds 174), festival:cmu_us_slt_arctic_hts | "
                        "x (seeds 174), festival:ked_diphone |")
    assert "| false starts: turns with pauses/gaps | 0/3 (0%) | 3/3 (100%) |" in lines
    (tmp_path / "old.json").write_text(json.dumps(_draw(175, 2, 1)))  # written before speakers were recorded
    proc = subprocess.run([sys.executable, "-m", "duplex.eval.compare", "--by-voice", str(tmp_path / "old.json")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == ("duplex.eval.compare: --by-voice: tiny-fd does not record its speakers "
                                   "(written before round 24)")


@pytest.mark.parametrize(("second", "needle"), [
    (_draw(171, 10, 0), "s2.json: seed 171 is already in the column"),
    (_draw(172, 10, 0, config="examples/policy.yaml"), "s2.json: config 'examples/policy.yaml' differs from"),
    (_draw(172, 10, 0, sentences="a"), "s2.json: sentences 'a' differs from"),
    (_draw(172, 10, 0, label="tiny-fd-variant"), "s2.json: label 'tiny-fd-variant' differs from"),
])
def test_compare_refuses_to_pool_a_draw_twice_or_another_setup(tmp_path: Path, second: dict[str, object],
                                                               needle: str) -> None:
    import json

    (tmp_path / "s1.json").write_text(json.dumps(_draw(171, 10, 1)))
    (tmp_path / "s2.json").write_text(json.dumps(second))
    proc = subprocess.run([sys.executable, "-m", "duplex.eval.compare", f"x={tmp_path}/s1.json,{tmp_path}/s2.json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr


def test_compare_names_a_pattern_that_matches_nothing_and_an_empty_name(tmp_path: Path) -> None:
    for spec, message in ((f"x={tmp_path}/none-*.json", f"{tmp_path}/none-*.json: no file matches"),
                          ("x=", "x=: an empty file name in the list")):
        proc = subprocess.run([sys.executable, "-m", "duplex.eval.compare", spec], capture_output=True, text=True,
                              cwd=ROOT)
        assert proc.returncode == 2
        assert proc.stderr.strip() == f"duplex.eval.compare: {message}"


def test_sentence_banks_share_no_sentence_and_the_default_is_the_fresh_one(tmp_path: Path) -> None:
    from duplex.eval.heldout import BANKS

    def texts(bank: str) -> set[str]:
        s = BANKS[bank]
        return {*s.questions, *s.barge_ins, *(t for group in (*s.comma_fragments, *s.final_fragments,
                                                               *s.monologues) for t in group)}

    for first, second in itertools.combinations(sorted(BANKS), 2):
        assert not texts(first) & texts(second), (first, second)
    assert set(BANKS) >= {"a", "b", "c", "d"}
    assert Builder("espeak", 1, tmp_path, Tts(tmp_path / "tts")).text is BANKS["b"]


@pytest.mark.skipif(subprocess.run(["which", "festival"], capture_output=True).returncode, reason="no festival")
def test_a_festival_voice_that_is_not_installed_is_one_line_naming_the_package() -> None:
    from duplex.errors import DuplexError
    from duplex.tts import check_voice

    with pytest.raises(DuplexError, match=r"voice festival:no_such_voice: festival has no voice .*festvox"):
        check_voice("festival:no_such_voice")


@pytest.mark.skipif(subprocess.run(["which", "espeak-ng"], capture_output=True).returncode, reason="no espeak-ng")
def test_a_clip_is_cached_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two evaluations sharing a cache (one per core) must never load each other's half-written clip:
    a write cut short leaves nothing under the clip's name."""
    import numpy as np

    from duplex import tts

    def cut_short(path: Path, audio: np.ndarray) -> None:
        Path(path).write_bytes(b"\x93NUMPY half")
        raise OSError("disk full")

    monkeypatch.setattr(tts.np, "save", cut_short)
    with pytest.raises(OSError, match="disk full"):
        tts.speak(tmp_path, "yeah", "espeak:en-us", 1.0, 0.5)
    assert not list(tmp_path.iterdir())
    monkeypatch.undo()
    audio = tts.speak(tmp_path, "yeah", "espeak:en-us", 1.0, 0.5)
    assert audio.size and np.array_equal(tts.speak(tmp_path, "yeah", "espeak:en-us", 1.0, 0.5), audio)
