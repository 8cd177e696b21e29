"""Cue networks on conversation windows (python -m duplex.cue.harvest files), side by side.

    python bench/cue_windows.py --windows '/tmp/devwin/harvest-*.pt' --checkpoint old.pt --checkpoint new.pt

The template bench (cue_accuracy.py) reads windows the network was taught on the pattern of; these
are cut where the rules asked, in whole conversations. Prints JSON: for each network, the counts
the rules act on at their own bars (a backchannel let through, a stop word sure or taken for a
backchannel, a question heard, a statement or fragment heard as one), as "n/of".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import emit  # noqa: E402
from duplex.cue.runtime import SHIPPED, CueModel  # noqa: E402
from duplex.cue.text import ASKS, BACKCHANNEL, CLASSES, FRAGMENT, STATEMENT, STOP  # noqa: E402
from duplex.cue.thresholds import ASKED_P, ASKS_P, BACKCHANNEL_P, STOP_P  # noqa: E402
from duplex.cue.train import harvested_files, load_windows  # noqa: E402
from duplex.errors import DuplexError  # noqa: E402


def counts(p: np.ndarray, y: np.ndarray) -> dict[str, str]:
    def share(truth: np.ndarray, heard: np.ndarray) -> str:
        return f"{int(heard[truth].sum())}/{int(truth.sum())}"

    holding = (y == STATEMENT) | (y == FRAGMENT)
    return {
        "accuracy": f"{int((p.argmax(1) == y).sum())}/{len(y)}",
        "backchannel_goes_on": share(y == BACKCHANNEL, p[:, BACKCHANNEL] >= BACKCHANNEL_P),
        "stop_heard_as_stop": share(y == STOP, p[:, STOP] >= STOP_P),
        "stop_heard_as_backchannel": share(y == STOP, p[:, BACKCHANNEL] >= BACKCHANNEL_P),
        "asking_heard_as_asking": share(y == ASKS, p[:, ASKS] >= ASKS_P),
        "asking_answered_at_once": share(y == ASKS, p[:, ASKS] >= ASKED_P),
        "unfinished_heard_as_asking": share(holding, p[:, ASKS] >= ASKS_P),
        "unfinished_answered_at_once": share(holding, p[:, ASKS] >= ASKED_P),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", required=True, help="comma-separated files or globs of harvested windows")
    ap.add_argument("--checkpoint", type=Path, action="append", default=None,
                    help="a network to score (repeat for several; default: the shipped one)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    try:
        files = harvested_files(args.windows, "--windows")
        if not files:
            raise DuplexError("--windows: no file named")
        loaded = load_windows(files, "--windows")
        assert loaded is not None
        nets = [(path, CueModel(path).net) for path in args.checkpoint or [SHIPPED]]
    except DuplexError as exc:
        print(f"cue_windows: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    x, y = loaded
    report: dict[str, object] = {"windows": args.windows, "files": len(files),
                                 "per_class": dict(zip(CLASSES, np.bincount(y.numpy(), minlength=len(CLASSES))
                                                       .tolist(), strict=True))}
    for path, net in nets:
        with torch.inference_mode():
            p = torch.cat([torch.softmax(net(x[i: i + 256].float()), -1) for i in range(0, len(x), 256)])
        report[str(path)] = counts(p.numpy(), y.numpy())
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
