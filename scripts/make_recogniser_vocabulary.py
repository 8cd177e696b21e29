"""Writes duplex/cue/vocabulary.txt: the recogniser's words (docs/cue.md, "A smaller vocabulary").

The `--size` words of the installed pocketsphinx wheel's dictionary that its language model finds
likeliest on their own (unigram probability), and every word that a rule of duplex/cue/words.py or
the held-piece grammar of duplex/cue/recogniser.py names, whatever its rank.

    python scripts/make_recogniser_vocabulary.py [--size 5000] [--out duplex/cue/vocabulary.txt]
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _report import OneLineParser, fail  # noqa: E402  (bad arguments: one line, exit status 2)

from duplex.cue.vocabulary import VOCABULARY, headword, wheel_dictionary  # noqa: E402


def rule_words() -> set[str]:
    """Every word a rule of the words, or the held-piece grammar, names."""
    from duplex.cue import recogniser, words

    named: set[str] = set()
    for phrase in recogniser.PIECE_PHRASES:
        named.update(phrase.split())
    for value in vars(words).values():
        if isinstance(value, frozenset):
            named.update(value)
    for word, after in words.WH_NEXT.items():
        named.add(word)
        named.update(after)
    named.update(("what", "which", "whose"))
    return named


def main() -> int:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=5000, help="how many of the likeliest words")
    p.add_argument("--out", type=Path, default=VOCABULARY)
    args = p.parse_args()
    if args.size < 1:
        fail("make_recogniser_vocabulary", f"--size {args.size}: must be at least 1")
    if args.out.is_dir():
        fail("make_recogniser_vocabulary", f"--out {args.out}: is a directory")
    from pocketsphinx import NGramModel, get_model_path

    model = NGramModel.readfile(str(Path(get_model_path()) / "en-us" / "en-us.lm.bin"))
    with wheel_dictionary().open(encoding="utf-8") as lines:
        known = sorted({headword(line) for line in lines} - {""})
    ranked = sorted(known, key=lambda word: (-model.prob([word]), word))  # words it lacks come last
    named = rule_words()
    missing = sorted(named - set(known))
    if missing:
        fail("make_recogniser_vocabulary", f"the rules name words the dictionary lacks: {' '.join(missing)}")
    chosen = sorted(set(ranked[: args.size]) | named)
    header = (f"# duplex/cue/vocabulary.txt: the recogniser's {len(chosen)} words, written by\n"
              f"# scripts/make_recogniser_vocabulary.py --size {args.size}: the likeliest words of pocketsphinx's\n"
              "# US English language model and every word the rules name (docs/cue.md). Do not edit by hand.\n"
              f"# pocketsphinx {version('pocketsphinx')}\n")
    args.out.write_text(header + "\n".join(chosen) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(chosen)} words)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
