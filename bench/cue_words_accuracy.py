"""How well the recogniser of words (duplex/cue/words.py) hears its two cues, per voice family, as JSON.

Openings: template sentences (duplex/cue/text.py: questions, statements, fragments), the first 1.3
s of each decoded as the runtime decodes an utterance's head; a question should be heard to ask, a
statement or fragment should not, and a question should never be heard to state. Pieces:
backchannels and stop words, each named by the piece grammar; a stop word heard as a backchannel is
the mistake that would resume a reply over the user. The same pieces as the rules judge them
(`rules_on_*`: the network and the words together, `CueWindow.piece_verdict`): a stop word that
goes on, at once or a step later, is a reply resumed over a hesitant barge-in. Noises: synthetic
coughs, which a piece's lack of voice should tell from any word.

    python bench/cue_words_accuracy.py --voices festival:kal_diphone [--per-class 20] [--seed 5] [--piece-draws 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import emit  # noqa: E402

from audio_io.format import SAMPLE_RATE, STEP_SAMPLES  # noqa: E402
from duplex.backbones.floor.pitch import voiced_share  # noqa: E402
from duplex.cue.runtime import CueModel, CueWindow  # noqa: E402
from duplex.cue.text import ASKS, FRAGMENT, STATEMENT, Sentences  # noqa: E402
from duplex.cue.thresholds import NOISE_VOICED_SHARE  # noqa: E402
from duplex.cue.words import OpeningWords  # noqa: E402
from duplex.errors import DuplexError  # noqa: E402
from duplex.eval.tts import cough  # noqa: E402
from duplex.tts import check_voice, speak  # noqa: E402

BACKCHANNELS = ["mm-hmm", "uh-huh", "yeah", "right", "okay", "I see", "sure", "yep", "alright"]
STOPS = ["wait", "no", "stop", "hold on", "hang on", "sorry", "actually", "hey", "nope"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--voices", required=True, help="comma-separated family:voice list")
    p.add_argument("--per-class", type=int, default=20, help="template sentences per class")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--piece-draws", type=int, default=1, help="each backchannel and stop word, per voice, this many "
                   "times (each with its own tempo, pitch and level)")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "duplex-tts-cache")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    voices = [v for v in args.voices.split(",") if v]
    try:
        if args.per_class < 1:
            raise DuplexError(f"--per-class {args.per_class}: must be at least 1")
        if args.piece_draws < 1:
            raise DuplexError(f"--piece-draws {args.piece_draws}: must be at least 1")
        if not voices:
            raise DuplexError("--voices: give at least one family:voice")
        for voice in voices:
            check_voice(voice)
    except DuplexError as exc:
        print(f"cue_words_accuracy: {exc}", file=sys.stderr)
        sys.exit(2)
    args.cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    text, words = Sentences(rng), OpeningWords()

    def said(phrase: str, voice: str) -> np.ndarray:
        return speak(args.cache, phrase, voice, float(rng.uniform(0.9, 1.12)), float(rng.uniform(0.2, 0.8)))

    pad = np.zeros(SAMPLE_RATE // 2, np.float32)
    asked = {ASKS: 0, STATEMENT: 0, FRAGMENT: 0}
    stated = {ASKS: 0, STATEMENT: 0, FRAGMENT: 0}
    for i in range(3 * args.per_class):
        label = (ASKS, STATEMENT, FRAGMENT)[i % 3]
        audio = said(text.of(label), voices[i % len(voices)])
        words.reset()
        for chunk in np.array_split(np.concatenate([pad, audio, pad]), max(1, (audio.size + pad.size * 2) // 2560)):
            words.push(chunk)
        asked[label] += bool(words.verdict())
        stated[label] += words.stated()
    named = {kind: {"backchannel": 0, "stop": 0, None: 0} for kind in ("backchannel", "stop")}
    # the rules' own verdict (CueWindow.piece_verdict: the network, raised by the words): goes on at
    # once (BACKCHANNEL), a step later (LIKELY_BACKCHANNEL: the words alone named it), ends it, or waits
    window = CueWindow(CueModel(words=True))
    judged = {kind: dict.fromkeys(["backchannel", "likely backchannel", "stop", "undecided"], 0)
              for kind in ("backchannel", "stop")}
    for voice in [v for _ in range(args.piece_draws) for v in voices]:
        for kind, phrases in (("backchannel", BACKCHANNELS), ("stop", STOPS)):
            for phrase in phrases:
                piece = np.concatenate([pad[:1600], said(phrase, voice), pad[:2560]])  # as the rules cut it
                named[kind][words.piece_said(piece)] += 1
                judged[kind][_rules_verdict(window, piece)] += 1
    noises = [cough(rng, float(rng.uniform(0.15, 0.5))) for _ in range(10 * len(voices))]
    quiet = sum(voiced_share(np.concatenate([pad[:1600], c, pad[:2560]])) < NOISE_VOICED_SHARE for c in noises)
    voiced = [voiced_share(said(p, v)) for v in voices for p in BACKCHANNELS + STOPS]
    n_bc, n_stop = len(BACKCHANNELS) * len(voices) * args.piece_draws, len(STOPS) * len(voices) * args.piece_draws
    emit({"bench": "cue_words_accuracy", "voices": voices, "seed": args.seed, "per_class": args.per_class,
          "piece_draws": args.piece_draws,
          "questions_heard_to_ask": f"{asked[ASKS]}/{args.per_class}",
          "statements_heard_to_ask": f"{asked[STATEMENT]}/{args.per_class}",
          "fragments_heard_to_ask": f"{asked[FRAGMENT]}/{args.per_class}",
          "questions_heard_to_state": f"{stated[ASKS]}/{args.per_class}",
          "statements_heard_to_state": f"{stated[STATEMENT]}/{args.per_class}",
          "fragments_heard_to_state": f"{stated[FRAGMENT]}/{args.per_class}",
          "backchannels_heard_as_backchannels": f"{named['backchannel']['backchannel']}/{n_bc}",
          "backchannels_heard_as_stop_words": f"{named['backchannel']['stop']}/{n_bc}",
          "stop_words_heard_as_stop_words": f"{named['stop']['stop']}/{n_stop}",
          "stop_words_heard_as_backchannels": f"{named['stop']['backchannel']}/{n_stop}",
          "rules_on_backchannels": {k: f"{v}/{n_bc}" for k, v in judged["backchannel"].items()},
          "rules_on_stop_words": {k: f"{v}/{n_stop}" for k, v in judged["stop"].items()},
          "coughs_without_voice": f"{quiet}/{len(noises)}",
          "words_taken_for_noises": f"{sum(v < NOISE_VOICED_SHARE for v in voiced)}/{len(voiced)}",
          "lowest_voiced_share_of_a_word": round(min(voiced), 3)}, args.out)


def _rules_verdict(window: CueWindow, piece: np.ndarray) -> str:
    """What the rules make of a held piece heard after a second of the held reply's silence."""
    window.reset()
    audio = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), piece])
    for chunk in np.array_split(audio, max(1, audio.size // STEP_SAMPLES)):
        window.push(chunk)
    verdict, _ = window.piece_verdict(piece.size / SAMPLE_RATE, None)
    return verdict.value if verdict is not None else "undecided"


if __name__ == "__main__":
    main()
