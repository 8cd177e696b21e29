"""The cue model on voices it never trained on: per-class accuracy, confusions, and its cost.

    python bench/cue_accuracy.py --voices festival:ked_diphone,festival:cmu_us_slt_arctic_hts --seed 7 [--out F]

Builds a balanced draw of examples (duplex/cue/data.py, template sentences) in the given voices and
prints JSON: accuracy per class, the confusion matrix (rows: truth, columns: verdict, in
duplex.cue.text.CLASSES order), the two errors the rules care about (a stop word heard as a
backchannel would resume a reply over a barge-in; a statement heard as a question starts a turn in
a pause) at the thresholds the rules use, and the milliseconds one window costs (median, p99).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import emit  # noqa: E402
from duplex.cue.data import Examples, window  # noqa: E402
from duplex.cue.runtime import SHIPPED, CueModel  # noqa: E402
from duplex.cue.text import ASKS, BACKCHANNEL, CLASSES, FRAGMENT, STATEMENT, STOP  # noqa: E402
from duplex.cue.thresholds import ASKS_P, BACKCHANNEL_P, STOP_P  # noqa: E402
from duplex.errors import DuplexError  # noqa: E402
from duplex.tts import check_voice  # noqa: E402

BARS = (0.5, 0.6, 0.7, 0.8, 0.9)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", default="festival:ked_diphone,festival:cmu_us_slt_arctic_hts")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--per-class", type=int, default=80)
    ap.add_argument("--checkpoint", type=Path, default=SHIPPED)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "duplex-cue-cache" / "tts")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    try:
        if args.per_class < 1:
            raise DuplexError(f"--per-class {args.per_class}: must be at least 1")
        for voice in args.voices.split(","):
            check_voice(voice)
        model = CueModel(args.checkpoint)
    except DuplexError as exc:
        print(f"cue_accuracy: {exc}", file=sys.stderr)
        return 2
    examples = Examples(args.cache, args.seed, args.voices.split(","))
    confusion = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    probs, truth, cost = [], [], []
    for i in range(args.per_class * len(CLASSES)):
        label = i % len(CLASSES)
        audio, _ = examples.one(label)
        t0 = time.perf_counter()
        p = model.probs(window(audio))
        cost.append((time.perf_counter() - t0) * 1000)
        confusion[label, int(np.argmax(p))] += 1
        probs.append(p)
        truth.append(label)
    p, y = np.asarray(probs), np.asarray(truth)
    stops, bcs = p[y == STOP], p[y == BACKCHANNEL]
    holding = p[(y == STATEMENT) | (y == FRAGMENT)]
    emit({
        "voices": args.voices, "seed": args.seed, "examples_per_class": args.per_class,
        "accuracy": round(float(np.trace(confusion) / confusion.sum()), 3),
        "per_class": {c: round(float(confusion[k, k] / confusion[k].sum()), 3) for k, c in enumerate(CLASSES)},
        "confusion": confusion.tolist(),
        "rules": {
            "stop_heard_as_backchannel": round(float(np.mean(stops[:, BACKCHANNEL] >= BACKCHANNEL_P)), 3),
            "stop_heard_as_stop": round(float(np.mean(stops[:, STOP] >= STOP_P)), 3),
            "backchannel_goes_on": round(float(np.mean(bcs[:, BACKCHANNEL] >= BACKCHANNEL_P)), 3),
            "backchannel_heard_as_stop": round(float(np.mean(bcs[:, STOP] >= STOP_P)), 3),
            "unfinished_heard_as_asking": round(float(np.mean(holding[:, ASKS] >= ASKS_P)), 3),
            "asking_heard_as_asking": round(float(np.mean(p[y == ASKS][:, ASKS] >= ASKS_P)), 3),
        },
        # the backchannel bar's trade at other heights: what a lower one would let through
        "backchannel_bar": {
            str(bar): {"backchannel_goes_on": round(float(np.mean(bcs[:, BACKCHANNEL] >= bar)), 3),
                       "stop_heard_as_backchannel": round(float(np.mean(stops[:, BACKCHANNEL] >= bar)), 3)}
            for bar in BARS},
        "window_ms": {"median": round(float(np.median(cost)), 2), "p99": round(float(np.percentile(cost, 99)), 2)},
    }, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
