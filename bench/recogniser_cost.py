"""What the recogniser of words costs in CPU, and what cheaper decoder settings would lose, as JSON.

With `tiny_fd.cue_words` every conversation's recogniser (pocketsphinx, duplex/cue/recogniser.py)
decodes the first 1.2 s of each utterance with the language model (since round 14 over duplex's
vocabulary of about 5 000 words, duplex/cue/vocabulary.py), and each held piece with the piece
grammar. On a server that CPU, not the batched model, is what limits how many such conversations
run in real time (docs/serve.md). This bench decodes the same heads and pieces as the runtime does
(an utterance's head with its preroll; a piece on its own) in this process, with the shipped
settings, the wheel's whole dictionary (as before round 14) and cheaper decoder settings, and
reports per setting: CPU per head and per piece, how many heads get the same words and the same
verdict (`asks`, `states`) as the shipped settings, how many questions are heard to ask and
statements or fragments to ask, and how many pieces get the same name. Template sentences
(duplex/cue/text.py) in development voices only.

    python bench/recogniser_cost.py [--voices espeak:en-us+m3,flite:kal,...] [--per-class 20] [--seed 5] [--out FILE]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import OneLineParser, emit, fail  # noqa: E402

from audio_io.format import SAMPLE_RATE  # noqa: E402
from duplex.cue.recogniser import PIECE_SEARCH, new_decoder  # noqa: E402
from duplex.cue.text import BACKCHANNELS, STOPS, Sentences  # noqa: E402
from duplex.cue.words import HEAD_S, PREROLL_S, _pcm, asks, states  # noqa: E402
from duplex.errors import DuplexError  # noqa: E402
from duplex.tts import check_voice, speak  # noqa: E402

DEV_VOICES = "espeak:en-us+m3,espeak:en+f2,espeak:en-gb+m1,flite:kal,flite:slt,flite:awb,flite:rms"
SHIPPED = "shipped"
# pocketsphinx's own knobs: the second passes (fwdflat, bestpath) and the beams / the HMMs kept per frame
SETTINGS: dict[str, dict[str, Any]] = {
    SHIPPED: {},
    "the wheel's whole dictionary (before round 14)": {"whole_dictionary": True},
    "no fwdflat": {"fwdflat": False},
    "no fwdflat, no bestpath": {"fwdflat": False, "bestpath": False},
    "narrow beams": {"beam": 1e-30, "wbeam": 1e-20, "pbeam": 1e-30, "maxhmmpf": 5000},
    "narrow beams, no fwdflat": {"beam": 1e-30, "wbeam": 1e-20, "pbeam": 1e-30, "maxhmmpf": 5000, "fwdflat": False},
}
KINDS = ("asks", "statement", "fragment")


def clips(voices: list[str], per_class: int, seed: int, cache: Path) -> tuple[list[tuple[str, np.ndarray]],
                                                                             list[np.ndarray]]:
    """Heads (the kind, the preroll and the first HEAD_S s) and pieces (backchannels and stop words)."""
    rng = np.random.default_rng(seed)
    text = Sentences(rng)
    preroll = np.zeros(round(PREROLL_S * SAMPLE_RATE), np.float32)
    heads = []
    for i in range(per_class * len(KINDS)):
        kind = KINDS[i % len(KINDS)]
        audio = speak(cache, getattr(text, kind)(), voices[i % len(voices)],
                      rate=float(rng.uniform(0.85, 1.15)), pitch=float(rng.uniform(0.3, 0.7)))
        heads.append((kind, np.concatenate([preroll, audio[: round(HEAD_S * SAMPLE_RATE)]])))
    pieces = [speak(cache, str(rng.choice(BACKCHANNELS if i % 2 else STOPS)), voices[i % len(voices)],
                    rate=float(rng.uniform(0.85, 1.15))) for i in range(per_class)]
    return heads, pieces


def decode(settings: dict[str, Any], heads: list[tuple[str, np.ndarray]], pieces: list[np.ndarray]) -> dict[str, Any]:
    decoder = new_decoder(**settings)
    head_cpu, words = [], []
    for _, audio in heads:
        began = time.process_time()
        decoder.start_utt()
        decoder.process_raw(_pcm(audio), False, False)
        decoder.end_utt()
        head_cpu.append(time.process_time() - began)
        hyp = decoder.hyp()
        words.append(hyp.hypstr.split() if hyp is not None else [])
    piece_cpu, names = [], []
    for audio in pieces:
        began = time.process_time()
        decoder.activate_search(PIECE_SEARCH)
        decoder.start_utt()
        decoder.process_raw(_pcm(audio), False, True)
        decoder.end_utt()
        hyp = decoder.hyp()
        decoder.activate_search("_default")
        piece_cpu.append(time.process_time() - began)
        names.append(hyp.hypstr if hyp is not None else "")
    return {"head_cpu": head_cpu, "words": words, "piece_cpu": piece_cpu, "names": names}


def summary(run: dict[str, Any], shipped: dict[str, Any], kinds: list[str]) -> dict[str, Any]:
    verdict = [(asks(w), states(w)) for w in run["words"]]
    shipped_verdict = [(asks(w), states(w)) for w in shipped["words"]]
    questions = [v[0] for v, k in zip(verdict, kinds, strict=True) if k == "asks"]
    others = [v[0] for v, k in zip(verdict, kinds, strict=True) if k != "asks"]
    return {
        "head_cpu_ms_median": round(1000 * float(np.median(run["head_cpu"])), 1),
        "head_cpu_ms_mean": round(1000 * float(np.mean(run["head_cpu"])), 1),
        "piece_cpu_ms_median": round(1000 * float(np.median(run["piece_cpu"])), 1),
        "same_words_as_shipped":
            f"{sum(a == b for a, b in zip(run['words'], shipped['words'], strict=True))}/{len(kinds)}",
        "same_verdict_as_shipped": f"{sum(a == b for a, b in zip(verdict, shipped_verdict, strict=True))}/{len(kinds)}",
        "questions_heard_to_ask": f"{sum(questions)}/{len(questions)}",
        "statements_or_fragments_heard_to_ask": f"{sum(others)}/{len(others)}",
        "same_piece_name_as_shipped": f"{sum(a == b for a, b in zip(run['names'], shipped['names'], strict=True))}"
                                      f"/{len(run['names'])}",
    }


def main() -> None:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--voices", default=DEV_VOICES,
                   help="comma-separated development voices (never festival's held-out)")
    p.add_argument("--per-class", type=int, default=20, help="heads per kind (question, statement, fragment); pieces")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    try:
        voices = [v for v in args.voices.split(",") if v]
        if not voices:
            raise DuplexError("--voices: name at least one voice")
        if args.per_class < 1:
            raise DuplexError(f"--per-class {args.per_class}: must be at least 1")
        for voice in voices:
            check_voice(voice)
        if args.out is not None and args.out.is_dir():
            raise DuplexError(f"--out {args.out}: is a directory")
    except DuplexError as exc:
        fail("recogniser_cost", str(exc))
    with tempfile.TemporaryDirectory() as tmp:
        heads, pieces = clips(voices, args.per_class, args.seed, Path(tmp))
    kinds = [k for k, _ in heads]
    runs = {name: decode(settings, heads, pieces) for name, settings in SETTINGS.items()}
    shipped_cpu = float(np.mean(runs[SHIPPED]["head_cpu"]))
    report = {
        "bench": "recogniser_cost", "command": " ".join(["python", *sys.argv]), "voices": voices,
        "heads": len(heads), "pieces": len(pieces), "head_s": HEAD_S,
        "settings": {name: {"decoder": SETTINGS[name], **summary(run, runs[SHIPPED], kinds),
                            "head_cpu_ratio_to_shipped": round(float(np.mean(run["head_cpu"])) / shipped_cpu, 2)}
                     for name, run in runs.items()},
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
