"""The recogniser's vocabulary (duplex/cue/vocabulary.py): what it holds, that it is what the script
writes, and that the recogniser's decoder knows those words and no others."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from duplex.cue.vocabulary import VOCABULARY, headword, pronunciations, vocabulary

pytest.importorskip("pocketsphinx")

from duplex.cue.recogniser import new_decoder  # noqa: E402
from duplex.cue.vocabulary import wheel_dictionary  # noqa: E402
from scripts.make_recogniser_vocabulary import rule_words  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_every_word_a_rule_names_is_in_the_vocabulary() -> None:
    words = vocabulary()
    named = rule_words()
    assert {"is", "there", "could", "you", "what", "which", "how", "many", "tell", "the", "once", "wonder",
            "hmm", "mm", "huh", "hold", "wait", "nope", "pardon"} <= named
    assert named - words == set()
    assert 5000 <= len(words) < 5100


def test_the_vocabulary_is_what_the_script_writes_from_the_installed_wheel(tmp_path: Path) -> None:
    written_from = VOCABULARY.read_text(encoding="utf-8").splitlines()[3].removeprefix("# pocketsphinx ")
    if written_from != version("pocketsphinx"):  # another release may rank its words otherwise
        pytest.skip(f"vocabulary.txt was written from pocketsphinx {written_from}, {version('pocketsphinx')} is "
                    "installed: run scripts/make_recogniser_vocabulary.py")
    out = tmp_path / "vocabulary.txt"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_recogniser_vocabulary.py"), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == VOCABULARY.read_text(encoding="utf-8")


def test_the_script_refuses_a_size_below_one_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "vocabulary.txt"
    out.write_text("kept\n")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_recogniser_vocabulary.py"), "--size", "0",
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--size 0" in proc.stderr
    assert out.read_text() == "kept\n"


def test_pronunciations_keep_every_variant_of_the_words_asked_for(tmp_path: Path) -> None:
    dictionary = tmp_path / "d.dict"
    dictionary.write_text("read R IY D\nread(2) R EH D\nreader R IY D ER\nzebra Z IY B R AH\n")
    assert pronunciations({"read", "zebra"}, dictionary) == "read R IY D\nread(2) R EH D\nzebra Z IY B R AH\n"
    assert headword("read(2) R EH D") == "read" and headword("") == ""


def test_a_vocabulary_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("# a header\nthe\n\n  what  # a comment\n")
    assert vocabulary(path) == {"the", "what"}


def test_the_recognisers_decoder_knows_the_vocabulary_and_nothing_else() -> None:
    decoder = new_decoder()
    assert decoder.lookup_word("weather") is not None and decoder.lookup_word("could") is not None
    assert decoder.lookup_word("hmm") is not None  # a word of the held-piece grammar, rare as it is
    rare = next(word for word in ("zucchini", "aardvark", "quixotic") if word not in vocabulary())
    with wheel_dictionary().open(encoding="utf-8") as lines:
        assert any(headword(line) == rare for line in lines)  # the wheel knows it ...
    assert decoder.lookup_word(rare) is None  # ... and the recogniser does not search for it
