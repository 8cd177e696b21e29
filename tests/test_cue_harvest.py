"""The cue model's conversation windows (duplex/cue/harvest.py) and training on them (train.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from duplex.cue.harvest import Part, draw, harvest_seed, label_at, main, seed_range
from duplex.cue.text import ASKS, BACKCHANNEL, CLASSES, FRAGMENT, STATEMENT, STOP, check_disjoint
from duplex.errors import DuplexError
from duplex.eval.tts import VOICES
from duplex.scenario.spec import Role


def part(start: float, end: float, label: int, role: Role = Role.TURN, clip_end: float | None = None) -> Part:
    return Part(start, end, label, role, end if clip_end is None else clip_end, "")


def test_a_turn_is_a_fragment_while_an_utterance_goes_on_and_its_class_after() -> None:
    """A pause-handling turn: "When the plumber came, | can you ...?" The window in the comma's pause
    is a fragment (wait), inside the question still a fragment, after it the question."""
    parts = [part(1.0, 2.0, FRAGMENT), part(2.8, 4.0, ASKS)]
    assert label_at(0.9, parts) is None  # the user has not spoken yet
    assert label_at(1.5, parts) == FRAGMENT
    assert label_at(2.4, parts) == FRAGMENT  # the pause after the fragment
    assert label_at(3.5, parts) == FRAGMENT  # the question is not over
    assert label_at(4.04, parts) == FRAGMENT  # its last loud sample is within the grace
    assert label_at(4.3, parts) == ASKS


def test_a_long_pause_between_statements_is_a_statement_not_a_question() -> None:
    parts = [part(1.0, 2.0, STATEMENT), part(3.0, 4.0, STATEMENT), part(5.0, 6.0, ASKS)]
    assert [label_at(t, parts) for t in (2.5, 4.5, 6.5)] == [STATEMENT, STATEMENT, ASKS]


def test_an_interruption_is_a_stop_until_its_last_words_are_over() -> None:
    """"Wait | ... no | ... that is not what I asked": every window before the end is the first
    words of an interruption (the reply must not come back); after it, what the user asked for."""
    end = 7.0
    parts = [part(3.0, 3.4, STOP, Role.BARGE_IN, end), part(3.8, 4.1, STOP, Role.BARGE_IN, end),
             part(4.5, end, STATEMENT, Role.BARGE_IN, end)]
    assert [label_at(t, parts) for t in (3.6, 4.3, 6.0, 7.5)] == [STOP, STOP, STOP, STATEMENT]


def test_a_backchannel_or_a_cough_over_the_reply_is_a_backchannel_whatever_came_before() -> None:
    parts = [part(1.0, 3.0, ASKS), part(5.0, 5.4, BACKCHANNEL, Role.BACKCHANNEL),
             part(6.5, 6.8, BACKCHANNEL, Role.NOISE)]
    assert [label_at(t, parts) for t in (4.0, 5.2, 5.8, 6.7, 9.0)] == [ASKS, BACKCHANNEL, BACKCHANNEL, BACKCHANNEL,
                                                                       BACKCHANNEL]


def test_a_seed_draws_template_sentences_apart_from_the_evaluation_and_training_voices_only() -> None:
    drawn = draw(5001)
    assert draw(5001) == drawn and draw(5002).bank != drawn.bank
    texts = [*drawn.bank.questions, *(s for group in (*drawn.bank.comma_fragments, *drawn.bank.final_fragments,
                                                       *drawn.bank.monologues) for s in group), *drawn.bank.barge_ins]
    assert not check_disjoint(texts) and all(t in drawn.labels for t in texts)
    assert {drawn.labels[q] for q in drawn.bank.questions} == {ASKS}
    assert {drawn.labels[f] for f, _ in drawn.bank.comma_fragments} == {FRAGMENT}
    assert {drawn.labels[h] for h in drawn.hesitations} == {STOP}
    assert {drawn.labels[b] for b in drawn.backchannels} == {BACKCHANNEL}
    assert len(drawn.hesitations) >= 2 and len(drawn.backchannels) >= 2  # a conversation draws two of each
    held_out = set(VOICES["festival"])
    assert drawn.voices and not any(v.startswith("festival:") or v in held_out for v in drawn.voices)


def test_one_seed_is_cut_into_labelled_windows_where_the_rules_asked(tmp_path: Path) -> None:
    """A real (short) harvest: the conversations run through tiny-fd with cues, and every window is
    a log-mel window of the network's shape with a label its timeline gives."""
    from duplex.cue.runtime import CueWindow

    path, counts = harvest_seed(5001, 1, tmp_path, tmp_path / "work", None)
    saved = torch.load(path, weights_only=True)
    x, y, meta = saved["x"], saved["y"], saved["meta"]
    assert path == tmp_path / "harvest-5001.pt" and CueWindow.listener is None
    assert x.shape[1:] == (40, 500) and x.dtype == torch.float16 and len(x) == len(y) == len(meta) == sum(counts)
    assert len(y) >= 20 and set(y.tolist()) >= {ASKS, STATEMENT, BACKCHANNEL, STOP}
    assert all(CLASSES[int(v)] == m["label"] for v, m in zip(y, meta, strict=True))
    roles = {m["role"] for m in meta if m["label"] == "backchannel"}
    assert roles <= {"backchannel", "noise"}
    # the windows end where they were asked: the microphone is not silent in them
    assert all(float(w.float().max()) > -1.0 for w in x)


@pytest.mark.parametrize("args, culprit", [
    (["--seeds", "x-y", "--out", "{tmp}/h"], "--seeds 'x-y': expected FIRST-LAST"),
    (["--seeds", "9-3", "--out", "{tmp}/h"], "--seeds '9-3': expected FIRST-LAST"),
    (["--seeds", "1", "--per-shape", "0", "--out", "{tmp}/h"], "--per-shape 0: must be at least 1"),
    (["--seeds", "1", "--workers", "0", "--out", "{tmp}/h"], "--workers 0: must be at least 1"),
    (["--seeds", "1", "--config", "{tmp}/nope.yaml", "--out", "{tmp}/h"], "--config: no such file"),
    (["--seeds", "1", "--voices", "nope:x", "--out", "{tmp}/h"], "unknown TTS family in voice 'nope:x'"),
    (["--seeds", "1", "--out", "{tmp}/file"], "not a folder"),
])
def test_bad_harvest_arguments_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       args: list[str], culprit: str) -> None:
    (tmp_path / "file").write_text("kept")
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and culprit in err
    assert (tmp_path / "file").read_text() == "kept" and not (tmp_path / "h").exists()


def test_seed_ranges() -> None:
    assert seed_range("5001-5003") == [5001, 5002, 5003] and seed_range("7") == [7]
    with pytest.raises(DuplexError):
        seed_range("")


def _windows(path: Path, labels: list[int]) -> Path:
    torch.save({"x": torch.zeros(len(labels), 40, 500, dtype=torch.float16) - 1, "y": torch.tensor(labels),
                "meta": [{}] * len(labels), "seed": 1}, path)
    return path


def test_training_from_a_network_on_harvested_windows_keeps_the_last_epoch(tmp_path: Path) -> None:
    """`--init` with `--harvested`: the shipped network fine-tuned on windows of the chosen classes."""
    from duplex.cue.runtime import SHIPPED, CueModel
    from duplex.cue.train import main as train

    _windows(tmp_path / "harvest-1.pt", [BACKCHANNEL, STOP, ASKS, STATEMENT])
    _windows(tmp_path / "harvest-2.pt", [BACKCHANNEL, STOP])
    out, log = tmp_path / "cue.pt", tmp_path / "log.jsonl"
    assert train(["--smoke", "--dev-voices", "", "--out", str(out), "--cache", str(tmp_path / "cache"),
                  "--init", str(SHIPPED), "--harvested", str(tmp_path / "harvest-1.pt"),
                  "--harvested-classes", "backchannel,stop", "--harvested-val", str(tmp_path / "harvest-2.pt"),
                  "--max-lr", "1e-4", "--log", str(log)]) == 0
    records = [line for line in log.read_text().splitlines()]
    assert '"harvested": 2, "of": 4' in records[1] and records[-2].startswith('{"epoch": 2')
    assert '"conversations"' in records[-2]
    assert torch.load(out, weights_only=True)["epoch"] == 2
    CueModel(out).probs(np.zeros(80000, np.float32))


@pytest.mark.parametrize("args, culprit", [
    (["--harvested", "{tmp}/none-*.pt"], "--harvested: {tmp}/none-*.pt: no file matches"),
    (["--harvested", "{tmp}/junk.pt"], "--harvested: {tmp}/junk.pt: not a python -m duplex.cue.harvest file"),
    (["--harvested-classes", "asks,maybe"], "--harvested-classes 'asks,maybe': expected some of"),
    (["--init", "{tmp}/junk.pt"], "--init: cue model {tmp}/junk.pt: cannot be read (not a torch checkpoint)"),
    (["--max-lr", "0"], "--max-lr 0.0: must be above 0"),
])
def test_bad_training_arguments_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        args: list[str], culprit: str) -> None:
    from duplex.cue.train import main as train

    (tmp_path / "junk.pt").write_text("not torch")
    out = tmp_path / "cue.pt"
    assert train(["--smoke", "--dev-voices", "", "--out", str(out), "--cache", str(tmp_path / "cache"),
                  *[a.replace("{tmp}", str(tmp_path)) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and culprit.replace("{tmp}", str(tmp_path)) in err
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_the_windows_bench_counts_what_the_rules_act_on_and_refuses_bad_input(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    _windows(tmp_path / "harvest-1.pt", [BACKCHANNEL, STOP, ASKS, STATEMENT, FRAGMENT])
    bench = [sys.executable, str(root / "bench" / "cue_windows.py")]
    done = subprocess.run([*bench, "--windows", str(tmp_path / "harvest-*.pt"), "--out", str(tmp_path / "r.json")],
                          cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    shipped = next(v for k, v in report.items() if k.endswith("cue.pt"))
    assert report["per_class"] == dict.fromkeys(CLASSES, 1)
    assert shipped["backchannel_goes_on"].endswith("/1") and shipped["unfinished_heard_as_asking"].endswith("/2")
    for args, culprit in ((["--windows", str(tmp_path / "none*.pt")], "no file matches"),
                          (["--windows", str(tmp_path / "r.json")], "not a python -m duplex.cue.harvest file")):
        bad = subprocess.run([*bench, *args], cwd=root, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and not bad.stdout and bad.stderr.count("\n") == 1 and culprit in bad.stderr
