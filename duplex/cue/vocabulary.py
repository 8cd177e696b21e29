"""The recogniser's vocabulary: the words its language model finds likeliest, and every word the rules name.

Why: pocketsphinx's US English dictionary holds 134 k words, and its first pass searches every one
of them that the language model knows (72 k) at every frame. What the rules read of an utterance
is its first two or three words ("is there", "could you", "the dentist"), common words all; the
search through the rare ones was half of the CPU a head of an utterance cost and almost never
changed a verdict (`bench/recogniser_cost.py`). On a server that CPU, one recogniser per
conversation, is what limits how many conversations with words run at once (docs/serve.md).

`vocabulary.txt` is ours (made by `scripts/make_recogniser_vocabulary.py` from the installed
wheel's language model); the pronunciations are read from the installed wheel's dictionary when a
recogniser starts, so nothing of pocketsphinx's is copied here. Kept free of numpy and of the
rest of duplex: the recogniser's process imports it before anything else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

VOCABULARY = Path(__file__).with_name("vocabulary.txt")
_VARIANT = re.compile(r"\(\d+\)$")  # "read(2)": a second pronunciation of "read"


def vocabulary(path: Path = VOCABULARY) -> frozenset[str]:
    """The words of a vocabulary file (one a line; `#` starts a comment)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return frozenset(line for line in lines if line)


def headword(entry: str) -> str:
    """The word a dictionary line pronounces ("read(2)  R EH D" -> "read")."""
    return _VARIANT.sub("", entry.split(maxsplit=1)[0]) if entry.strip() else ""


def pronunciations(words: Iterable[str], dictionary: Path) -> str:
    """The lines of a pocketsphinx dictionary that pronounce these words (every variant of each)."""
    wanted = set(words)
    with dictionary.open(encoding="utf-8") as lines:
        return "".join(line for line in lines if headword(line) in wanted)


def wheel_dictionary() -> Path:
    """The US English dictionary of the installed pocketsphinx wheel."""
    from pocketsphinx import get_model_path

    return Path(get_model_path()) / "en-us" / "cmudict-en-us.dict"
