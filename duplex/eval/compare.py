"""`python -m duplex.eval.compare A.json B.json ...`: results of `python -m duplex.eval --json` side by side.

Prints one Markdown table (a row per metric, a column per result), for docs that put the numbers
before and after a change next to each other. The summary is pooled again from each file's
conversations, so a file written before a row was added still fills it where its metrics allow.

A column can pool several draws of one setup, `LABEL=A.json,B.json` (each part may be a glob:
`default='bench/results/heldout-b-seed18[4-6]-tiny-fd-words.json'`): with the same code, one draw of
36 backchannels had the reply go on over 10 and another over 23 (docs/tiny-fd.md, round 18), so a
claim rests on several draws, and a draw counted twice or a file of another setup in the pool is an
error. `--interval` adds a 95 % Wilson interval to every count, which says how far a pooled rate
can be trusted if each turn were drawn on its own; and, under the false starts of paused turns, a
95 % interval over the sentences: the turns of one sentence fail together (one question of bank
d's eight had 7 of its 20 false starts, in five draws), so the rate on sentences nobody has written
yet is as sure as the number of sentences, not of turns, allows. `--by-sentence` lists the
sentences with a false start, column by column, and `--by-voice` splits each column by the voice
that spoke (festival's ked_diphone had all 20 of bank d's false starts).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from duplex.errors import DuplexError
from duplex.eval.banks import BANKS
from duplex.eval.heldout import turn_sentences
from duplex.eval.summary import FDB_ROWS, STRICT_ROWS, _cell, summarise
from duplex.paths import listed_files

# what makes two result files draws of one setup (the seed is what differs); the label too, since a
# variant run from a harness keeps the config's name but not its label
SETUP_KEYS = ("label", "config", "family", "sentences", "noise", "per_shape")
Z95 = 1.959964
PAUSED_ROW = "false_starts_paused"
BOOTSTRAP_DRAWS = 2000


def _fail(message: str) -> NoReturn:
    print(f"duplex.eval.compare: {message}", file=sys.stderr)
    sys.exit(2)


def load(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        _fail(f"no such file: {path}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(f"{path}: not a duplex.eval JSON ({exc.__class__.__name__})")
    if not isinstance(report, dict) or "summary" not in report:
        _fail(f"{path}: not a duplex.eval JSON (no 'summary')")
    conversations = report.get("conversations")
    if isinstance(conversations, list) and conversations:
        try:
            report["summary"] = summarise([(c["shape"], c["metrics"]) for c in conversations])
        except (KeyError, TypeError) as exc:
            _fail(f"{path}: a conversation without its shape or metrics ({exc.__class__.__name__})")
        for c in conversations:  # once here, so a pooled column and a voice's need not know the file
            said = sentences_of(report, c)
            c["sentences"] = list(said) if said is not None else None
        report["by_sentence"] = by_sentence(conversations)
    return report


def sentences_of(report: dict[str, Any], conversation: dict[str, Any]) -> tuple[str, ...] | None:
    """The sentences of a conversation's user turn: as recorded, or, in a file written before they
    were, worked out from its bank, seed and name ("long_pause-3"); None where neither can be."""
    if conversation.get("sentences"):
        return tuple(conversation["sentences"])
    bank, seed = BANKS.get(str(report.get("sentences"))), report.get("seed")
    shape, name = conversation.get("shape"), str(conversation.get("name", ""))
    stem, _, k = name.rpartition("-")
    if bank is None or not isinstance(seed, int) or stem != shape or not k.isdigit() or int(k) < 1:
        return None
    try:
        return turn_sentences(bank, seed, shape, int(k) - 1)
    except ValueError:  # a shape of another version
        return None


def by_sentence(conversations: list[dict[str, Any]]) -> dict[str, list[int]] | None:
    """Paused turns with a false start and paused turns, per sentence of the turn (the parts joined
    by " / "), from conversations `load` gave their sentences; None when one's cannot be known."""
    counts: dict[str, list[int]] = {}
    for c in conversations:
        if not c.get("sentences"):
            return None
        n = counts.setdefault(" / ".join(c["sentences"]), [0, 0])
        n[0] += int(c["metrics"].get("paused_floors_with_false_start") or 0)
        n[1] += int(c["metrics"].get("floors_with_pauses") or 0)
    return counts


def _paths(files: str, arg: str) -> list[Path]:
    """The files of one column (`arg`: the whole argument, for the error)."""
    try:
        return listed_files(files, arg)
    except DuplexError as exc:
        _fail(str(exc))


def _seeds(seeds: list[int]) -> str:
    """[171, 172, 173, 177] -> "171-173, 177"."""
    runs: list[list[int]] = []
    for s in sorted(seeds):
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def pooled(label: str | None, paths: list[Path]) -> dict[str, Any]:
    """One column from several draws of one setup: their conversations summarised together."""
    reports = [(path, load(path)) for path in paths]
    first_path, first = reports[0]
    seeds: dict[int, Path] = {}
    conversations: list[dict[str, Any]] = []
    for path, report in reports:
        for key in SETUP_KEYS:
            if report.get(key) != first.get(key):
                _fail(f"{path}: {key} {report.get(key)!r} differs from {first_path}'s {first.get(key)!r} "
                      "(a column pools draws of one setup)")
        seed = report.get("seed")
        if not isinstance(seed, int):
            _fail(f"{path}: no seed to pool by")
        if seed in seeds:
            _fail(f"{path}: seed {seed} is already in the column ({seeds[seed]})")
        seeds[seed] = path
        if not report.get("conversations"):
            _fail(f"{path}: no conversations to pool")
        conversations += report["conversations"]
    summary = summarise([(c["shape"], c["metrics"]) for c in conversations])
    name = label or str(first.get("label", "?"))
    return {**{k: first.get(k) for k in SETUP_KEYS}, "label": f"{name} (seeds {_seeds(list(seeds))})",
            "summary": summary, "by_sentence": by_sentence(conversations), "conversations": conversations}


def column(spec: str) -> dict[str, Any]:
    """A result file, or `[LABEL=]FILE[,FILE...]` pooled (a file whose name has a '=' is a file)."""
    label, sep, files = spec.partition("=")
    if not sep or Path(spec).exists():
        label, files = "", spec
    paths = _paths(files, spec)
    if len(paths) == 1 and not label:
        return load(paths[0])
    return pooled(label or None, paths)


def wilson(n: int, of: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of n successes in `of` trials."""
    p = n / of
    centre = (p + Z95**2 / (2 * of)) / (1 + Z95**2 / of)
    half = Z95 * math.sqrt(p * (1 - p) / of + Z95**2 / (4 * of**2)) / (1 + Z95**2 / of)
    return max(0.0, centre - half), min(1.0, centre + half)


def over_sentences(counts: dict[str, list[int]]) -> tuple[float, float, int] | None:
    """A 95 % interval of the pooled rate with the sentences, not the turns, drawn again (a
    percentile bootstrap, seeded: the same files give the same interval), and how many sentences."""
    kept = [(n, of) for n, of in counts.values() if of]
    if len(kept) < 2:
        return None
    n, of = (np.array(x) for x in zip(*kept, strict=True))
    picks = np.random.default_rng(0).integers(0, len(kept), size=(BOOTSTRAP_DRAWS, len(kept)))
    rates = n[picks].sum(axis=1) / of[picks].sum(axis=1)
    lo, hi = np.percentile(rates, [2.5, 97.5])
    return float(lo), float(hi), len(kept)


def _clustered_cell(report: dict[str, Any]) -> str:
    counts = report.get("by_sentence")
    interval = over_sentences(counts) if counts else None
    if interval is None:
        return "n/a"
    lo, hi, sentences = interval
    return f"{lo:.0%}-{hi:.0%} ({sentences} sentences)"


def _cell_with_interval(value: Any) -> str:
    if isinstance(value, dict) and "rate" in value and value["rate"] is not None:
        lo, hi = wilson(value["n"], value["of"])
        return f"{value['n']}/{value['of']} ({value['rate']:.0%}; {lo:.0%}-{hi:.0%})"
    return _cell(value)


def markdown(reports: list[dict[str, Any]], interval: bool = False) -> str:
    cell = _cell_with_interval if interval else _cell
    head = ["metric", *(str(r.get("label", "?")) for r in reports)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, key, _ in [*STRICT_ROWS, *FDB_ROWS]:
        lines.append("| " + " | ".join([name, *(cell(r["summary"].get(key)) for r in reports)]) + " |")
        if interval and key == PAUSED_ROW:
            row = ["  ... 95 % interval over sentences", *(_clustered_cell(r) for r in reports)]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def by_voice(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A column per result and voice, each summarised from that voice's conversations alone (the
    speaker a conversation records, since round 24); a one-line error for a result that does not."""
    columns = []
    for report in reports:
        voices: dict[str, list[dict[str, Any]]] = {}
        for c in report.get("conversations") or []:
            voice = (c.get("speaker") or {}).get("voice")
            if voice is None:
                _fail(f"--by-voice: {report.get('label', '?')} does not record its speakers (written before round 24)")
            voices.setdefault(voice, []).append(c)
        for voice, group in sorted(voices.items()):
            columns.append({"label": f"{report.get('label', '?')}, {voice}",
                            "summary": summarise([(c["shape"], c["metrics"]) for c in group]),
                            "by_sentence": by_sentence(group)})
    return columns


def sentence_table(reports: list[dict[str, Any]]) -> str:
    """Paused turns with a false start / paused turns, per sentence that had one in any column."""
    counts = [r.get("by_sentence") or {} for r in reports]
    failing = {said for c in counts for said, (n, _) in c.items() if n}
    order = sorted(failing, key=lambda said: (-sum(c.get(said, [0, 0])[0] for c in counts), said))
    head = ["sentence", *(str(r.get("label", "?")) for r in reports)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for said in order:
        cells = [f"{c[said][0]}/{c[said][1]}" if said in c else "-" for c in counts]
        lines.append("| " + " | ".join([said.replace("|", "/"), *cells]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m duplex.eval.compare", description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+",
                   help="JSON files written by python -m duplex.eval --json; LABEL=F1,F2,... (globs too) pools draws")
    p.add_argument("--interval", action="store_true",
                   help="a 95 %% Wilson interval after every count, and one over sentences for false starts")
    p.add_argument("--by-sentence", action="store_true",
                   help="then a table of the sentences whose paused turns had a false start")
    p.add_argument("--by-voice", action="store_true", help="a column per result and voice instead of per result")
    args = p.parse_args(argv)
    reports = [column(spec) for spec in args.results]
    print(markdown(by_voice(reports) if args.by_voice else reports, args.interval))
    if args.by_sentence:
        unknown = [str(r.get("label", "?")) for r in reports if r.get("by_sentence") is None]
        if unknown:
            _fail(f"--by-sentence: the sentences of {', '.join(unknown)} are not known (a bank of one's own?)")
        print()
        print(sentence_table(reports))


if __name__ == "__main__":
    main()
