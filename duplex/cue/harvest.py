"""Cue training windows cut from conversations where the rules ask: `python -m duplex.cue.harvest`.

The template examples (data.py) end 0.1-0.8 s after one sentence, alone or after an echo. A
conversation hands the network other windows: the held reply's echo and the user's earlier
sentences before the piece, cut at the first silent step the detector hears. On windows cut so
from conversations of its own training voices, round 19's network let 15 % of the backchannels
through its 0.9 bar (71 % of template ones on a voice it never heard): more templates could not
teach it what it never saw (docs/cue.md, round 20).

So: conversations in the evaluation's shapes (duplex/eval/heldout.py), spoken in the cue model's
training voices (espeak-ng and flite; never festival, the held-out family) with template sentences
(text.py: none is in an evaluation bank, `check_disjoint`), run through tiny-fd as `duplex-test`
runs a scenario. Wherever the rules have the network read a window, that window and its
neighbours one step before and two after are cut from the microphone and labelled from where the
user's clips really were (`label_at`). One file per seed, `harvest-SEED.pt`, as train.py's
`--harvested` reads it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audio_io.format import SAMPLE_RATE
from duplex.cue.data import WINDOW_S, features, train_voice
from duplex.cue.text import ASKS, BACKCHANNEL, CLASSES, FRAGMENT, STATEMENT, STOP, check_disjoint
from duplex.cue.text import Sentences as Templates
from duplex.errors import DuplexError
from duplex.eval.heldout import SHAPES, Builder, Sentences
from duplex.eval.tts import Speaker
from duplex.scenario.spec import Role

STEP_S = 0.08  # the backbone's step: a window's neighbours are a step apart
NEIGHBOURS = (-1, 0, 1, 2)  # steps around each asked window that are cut too
VOICES_PER_SEED = 12  # training voices drawn per seed (fewer once repeats are dropped)
ONSET_S = 0.02  # a part counts as begun this long after its first sample
END_GRACE_S = 0.05  # ... and as over this long after its last loud one


@dataclass(frozen=True, slots=True)
class Part:
    """One utterance of a user clip on the session clock."""

    start: float
    end: float  # its last loud sample
    label: int  # what the window's last utterance is once this one is over (a CLASSES index)
    role: Role
    clip_end: float  # the end of the clip's last utterance
    text: str


@dataclass(frozen=True, slots=True)
class TemplateDraw:
    """One seed's sentences in the evaluation's shapes, and the class of each."""

    bank: Sentences
    hesitations: tuple[str, ...]
    backchannels: tuple[str, ...]
    labels: dict[str, int]
    voices: tuple[str, ...]


def draw(seed: int) -> TemplateDraw:
    """The seed's sentences (a bank as the evaluation's are made of), its pieces and its voices."""
    rng = np.random.default_rng(seed)
    text = Templates(rng)
    labels: dict[str, int] = {}

    def said(sentence: str, label: int) -> str:
        labels[sentence] = label
        return sentence

    def ends_turn() -> str:
        return said(text.asks(), ASKS) if rng.random() < 0.5 else said(text.statement(), STATEMENT)

    def barge_in() -> str:  # "No, stop, ..." then a request or a statement
        stop = text.stop()
        rest = text.asks() if rng.random() < 0.5 else text.statement()
        sentence = f"{stop[0].upper()}{stop[1:]}, {rest[0].lower()}{rest[1:]}"
        return said(sentence, ASKS if sentence.endswith("?") else STATEMENT)

    bank = Sentences(
        questions=tuple(said(text.asks(), ASKS) for _ in range(8)),
        comma_fragments=tuple((said(text.fragment(), FRAGMENT), said(text.asks(), ASKS)) for _ in range(4)),
        final_fragments=tuple((said(text.statement(), STATEMENT), said(text.statement(), STATEMENT), ends_turn())
                              for _ in range(4)),
        barge_ins=tuple(barge_in() for _ in range(4)),
        monologues=tuple(tuple(said(text.statement(), STATEMENT) for _ in range(3)) for _ in range(3)),
    )
    taken = check_disjoint(list(labels))
    if taken:  # text.py's vocabulary is kept apart from the banks; this is the proof for each draw
        raise DuplexError(f"seed {seed}: {taken[0]!r} is in an evaluation bank")
    hesitations = tuple(dict.fromkeys(text.stop() for _ in range(6)))
    backchannels = tuple(dict.fromkeys(text.backchannel() for _ in range(8)))
    labels.update(dict.fromkeys(hesitations, STOP))
    labels.update(dict.fromkeys(backchannels, BACKCHANNEL))
    voices = tuple(dict.fromkeys(train_voice(rng) for _ in range(VOICES_PER_SEED)))
    return TemplateDraw(bank, hesitations, backchannels, labels, voices)


class PartsBuilder(Builder):
    """The evaluation's conversations, remembering where each utterance of a clip begins and ends
    (a clip is one sentence, or several joined by pauses: `joined`)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.spoken: dict[int, tuple[np.ndarray, list[tuple[float, float, str]]]] = {}  # id(audio) ->
        self.clip_parts: dict[tuple[str, int], list[tuple[float, float, str]]] = {}  # (name, clip) -> parts

    def say(self, text: str, speaker: Speaker) -> np.ndarray:
        audio = super().say(text, speaker)
        self.spoken[id(audio)] = (audio, [(0.0, _loud_end(audio), text)])  # the array is kept: its id stays its own
        return audio

    def joined(self, parts: list[str], pauses: list[float], speaker: Speaker) -> np.ndarray:
        pieces = [self.say(text, speaker) for text in parts]
        whole, starts = self.spaced(pieces, pauses)
        self.spoken[id(whole)] = (whole, [(start / SAMPLE_RATE, start / SAMPLE_RATE + _loud_end(piece), text)
                                          for start, piece, text in zip(starts, pieces, parts, strict=True)])
        return whole

    def write(self, name: str, i: int, audio: np.ndarray) -> Path:
        _, parts = self.spoken.get(id(audio), (audio, [(0.0, _loud_end(audio), "")]))  # "": a cough
        self.clip_parts[(name, i)] = [(s + self.LEAD_S, e + self.LEAD_S, text) for s, e, text in parts]
        return super().write(name, i, audio)


def _loud_end(audio: np.ndarray) -> float:
    """Seconds to the last sample within 34 dB of the loudest (the synthesiser's tail of silence left out).
    Relative to the clip's peak, not audio_io.levels' -50 dBFS: round 20's shipped network learnt
    from windows labelled with this end, and `harvest` makes them again bit for bit."""
    loud = np.flatnonzero(np.abs(audio) > 0.02 * max(float(np.abs(audio).max()), 1e-6))
    return (int(loud[-1]) + 1) / SAMPLE_RATE if loud.size else 0.0


def label_at(t: float, parts: list[Part]) -> int | None:
    """What a window ending at `t` should be called, from the utterance that began last before it:
    a backchannel or a noise is a backchannel; an interruption is a stop until its last utterance is
    over, then what that utterance was (a request, a statement: the user is done); a turn's or a
    monologue's utterance is a fragment while it is still going on, then its own class. None before
    the user said anything."""
    begun = [p for p in parts if p.start < t - ONSET_S]
    if not begun:
        return None
    last = max(begun, key=lambda p: p.start)
    if last.role in (Role.BACKCHANNEL, Role.NOISE):
        return BACKCHANNEL
    if last.role is Role.BARGE_IN:
        return STOP if t < last.clip_end + END_GRACE_S else last.label
    return FRAGMENT if t < last.end + END_GRACE_S else last.label


@contextmanager
def asked_times() -> Iterator[list[float]]:
    """The microphone times at which the cue network read a window, while the block runs."""
    from duplex.cue.runtime import CueWindow

    times: list[float] = []
    CueWindow.listener = times.append
    try:
        yield times
    finally:
        CueWindow.listener = None


def harvest_seed(seed: int, per_shape: int, out: Path, work: Path, config: Path | None,
                 voices: tuple[str, ...] | None = None, bank: str | None = None) -> tuple[Path, list[int]]:
    """One seed's conversations run and cut into windows, saved as `out`/harvest-SEED.pt.

    `voices`/`bank`: a development set's voices and an evaluation bank in place of the seed's
    training voices and template sentences (to measure a network on conversation windows)."""
    from duplex.backbones.tiny_fd.features import LogMel
    from duplex.eval.heldout import BANKS
    from duplex.eval.tts import Tts
    from duplex.paths import written_whole
    from duplex.scenario.runner import ModelCache, run_scenario

    torch.set_num_threads(1)
    drawn = draw(seed)
    if bank is None:
        sentences, labels, hesitations, backchannels = drawn.bank, drawn.labels, drawn.hesitations, drawn.backchannels
    else:
        sentences, labels, hesitations, backchannels = _bank_labels(BANKS[bank])
    builder = PartsBuilder("espeak", seed, work / f"harvest-seed{seed}", Tts(work / "tts"), bank=sentences,
                           voices=voices or drawn.voices, hesitations=hesitations, backchannels=backchannels)
    cache, mel = ModelCache(), LogMel()
    n = round(WINDOW_S * SAMPLE_RATE)
    xs, ys, meta = [], [], []
    for conv in builder.build(per_shape, SHAPES):
        with asked_times() as asked:
            result = run_scenario(conv.scenario, config=config, cache=cache)
        assert result.timeline is not None and result.mic_audio is not None
        parts = []
        for clip in result.timeline.clips:
            bounds = builder.clip_parts[(conv.scenario.name, clip.index)]
            clip_end = clip.placed_at + bounds[-1][1]
            parts += [Part(clip.placed_at + s, clip.placed_at + e, labels.get(text, BACKCHANNEL), clip.role, clip_end,
                           text) for s, e, text in bounds]
        for t in sorted({round(a + k * STEP_S, 2) for a in asked for k in NEIGHBOURS}):
            label = label_at(t, parts)
            if label is None:
                continue
            end = round(t * SAMPLE_RATE)
            window = result.mic_audio[max(0, end - n): end]
            window = np.pad(window, (n - window.size, 0)).astype(np.float32)
            xs.append(features(mel, window[None])[0].half())
            ys.append(label)
            last = max((p for p in parts if p.start < t - ONSET_S), key=lambda p: p.start)
            meta.append({"conversation": conv.scenario.name, "shape": conv.shape, "t": t, "label": CLASSES[label],
                         "role": last.role.value, "text": last.text})
    path = out / f"harvest-{seed}.pt"
    with written_whole(path) as partial:
        torch.save({"x": torch.stack(xs), "y": torch.tensor(ys), "meta": meta, "seed": seed}, partial)
    return path, np.bincount(ys, minlength=len(CLASSES)).tolist()


def _bank_labels(bank: Sentences) -> tuple[Sentences, dict[str, int], tuple[str, ...], tuple[str, ...]]:
    """An evaluation bank's sentences with their classes, and the evaluation's own pieces."""
    from duplex.eval.heldout import BACKCHANNELS, HESITATIONS

    labels = dict.fromkeys(bank.questions, ASKS)
    for fragment, question in bank.comma_fragments:
        labels[fragment], labels[question] = FRAGMENT, ASKS
    for sentence in (*bank.barge_ins, *(s for group in (*bank.final_fragments, *bank.monologues) for s in group)):
        labels[sentence] = ASKS if sentence.endswith("?") else STATEMENT
    labels.update(dict.fromkeys(HESITATIONS, STOP))
    labels.update(dict.fromkeys(BACKCHANNELS, BACKCHANNEL))
    return bank, labels, HESITATIONS, BACKCHANNELS


def seed_range(text: str) -> list[int]:
    """`5001-5040` or `5001` as the seeds it names; anything else is one line naming it."""
    first, _, last = text.partition("-")
    try:
        seeds = list(range(int(first), int(last or first) + 1))
    except ValueError:
        seeds = []
    if not seeds or seeds[0] < 0:
        raise DuplexError(f"--seeds {text!r}: expected FIRST-LAST (e.g. 5001-5040) or one seed")
    return seeds


def _one(job: tuple[int, int, Path, Path, Path | None, tuple[str, ...] | None, str | None]) -> str:
    seed, per_shape, out, work, config, voices, bank = job
    started = time.monotonic()
    path, counts = harvest_seed(seed, per_shape, out, work, config, voices, bank)
    took = time.monotonic() - started
    return f"{path}: {sum(counts)} windows {dict(zip(CLASSES, counts, strict=True))} ({took:.0f} s)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m duplex.cue.harvest", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", required=True, help="FIRST-LAST: one file of windows per seed")
    ap.add_argument("--per-shape", type=int, default=6, help="conversations per shape and seed")
    ap.add_argument("--out", type=Path, required=True, help="folder of harvest-SEED.pt files (a seed's file that "
                    "is there already is kept, not made again)")
    ap.add_argument("--config", type=Path, default=None, help="backbone config the conversations run with "
                    "(default: the built-in default, tiny-fd with cues and words)")
    ap.add_argument("--workers", type=int, default=2, help="processes, one seed at a time each")
    ap.add_argument("--work", type=Path, default=Path(".cache/duplex-eval"), help="clip and speech cache")
    ap.add_argument("--voices", default=None, help="comma-separated family:voice list in place of the training "
                    "voices (development windows, never training ones)")
    ap.add_argument("--sentences", default=None, choices=("a", "b"),
                    help="an evaluation bank in place of the template sentences (development windows only)")
    args = ap.parse_args(argv)
    try:
        seeds = seed_range(args.seeds)
        for name, value in (("--per-shape", args.per_shape), ("--workers", args.workers)):
            if value < 1:
                raise DuplexError(f"{name} {value}: must be at least 1")
        if args.config is not None and not args.config.is_file():
            raise DuplexError(f"--config: no such file: {args.config}")
        if args.out.exists() and not args.out.is_dir():
            raise DuplexError(f"--out {args.out}: not a folder")
        voices = tuple(args.voices.split(",")) if args.voices else None
        if voices:
            from duplex.tts import check_voice

            for voice in voices:
                check_voice(voice)
    except DuplexError as exc:
        print(f"duplex.cue.harvest: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, args.per_shape, args.out, args.work, args.config, voices, args.sentences) for seed in seeds
            if not (args.out / f"harvest-{seed}.pt").exists()]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for line in pool.map(_one, jobs):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
