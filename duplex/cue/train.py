"""Train the cue model on CPU: `python -m duplex.cue.train` (about 21 minutes on two cores).

Builds its examples first (duplex/cue/data.py: espeak-ng and flite voices, and with
`--pico-examples` some in SVOX Pico's two, scripts/install-pico.sh; festival never; `--shards`
processes, each seeded, cached under `--cache`), then trains with seeded shuffling, gain jitter and
SpecAugment masks, and reports each epoch on a held-out draw of the same voices and, when
`--dev-voices` names some, on a family it never trains on. The checkpoint keeps the epoch with the
best development accuracy. `--smoke` runs the whole pipeline on a few dozen examples in seconds.

`--init` starts from a trained network and `--harvested` adds windows cut from conversations
(duplex/cue/harvest.py) to every epoch: round 20's network is round 5's taught, so, the windows of
backchannels and stop words the templates do not make (docs/cue.md, "Training").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F

from duplex.cue.data import PICO_VOICES, build
from duplex.cue.model import CueNet
from duplex.cue.text import CLASSES
from duplex.errors import DuplexError
from duplex.tts import check_voice

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "checkpoints" / "cue" / "cue.pt"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "duplex-cue-cache"


def _shard(args: tuple[Path, int, int, list[str] | None, bool, float]) -> Path:
    cache, seed, n, voices, balanced, room_noise = args
    named = "-" + hashlib.sha1(",".join(voices).encode()).hexdigest()[:8] if voices else ""
    room = f"-room{room_noise:g}" if room_noise else ""
    path = cache / f"shard-{seed}-{n}-{len(voices or [])}{named}{room}.pt"
    if not path.exists():
        torch.set_num_threads(1)
        labels = list(range(len(CLASSES))) if balanced else None
        x, y, texts = build(cache / "tts", seed, n, voices, labels, room_noise)
        torch.save({"x": x, "y": y, "texts": texts}, path)
    return path


def load(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [torch.load(p) for p in paths]
    return torch.cat([p["x"] for p in parts]), torch.cat([p["y"] for p in parts])


def harvested_files(patterns: str, option: str) -> list[Path]:
    """The files a comma-separated list of files or globs names (none for ''); a name or glob that
    matches no file is an error naming the option."""
    from duplex.paths import listed_files

    try:
        files = listed_files(patterns, patterns) if patterns else []
        missing = next((f for f in files if not f.exists()), None)
        if missing is not None:
            raise DuplexError(f"{missing}: no file matches")
    except DuplexError as exc:
        raise DuplexError(f"{option}: {exc}") from exc
    return files


def load_windows(paths: list[Path], option: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Harvested windows (duplex/cue/harvest.py files), or one line naming the file that is not one."""
    if not paths:
        return None
    xs, ys = [], []
    for path in paths:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            x, y = saved["x"], saved["y"]
        except Exception as exc:  # noqa: BLE001 - torch's unpickling errors are many, and a page long
            raise DuplexError(f"{option}: {path}: not a python -m duplex.cue.harvest file "
                              f"({type(exc).__name__})") from exc
        if x.ndim != 3 or len(x) != len(y):
            raise DuplexError(f"{option}: {path}: not a python -m duplex.cue.harvest file (shapes {tuple(x.shape)})")
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def harvested_classes(text: str) -> list[int]:
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in CLASSES]
    if unknown or not names:
        raise DuplexError(f"--harvested-classes {text!r}: expected some of {', '.join(CLASSES)}")
    return [CLASSES.index(n) for n in names]


def load_start(path: Path) -> CueNet:
    """The network `--init` names, loaded as the runtime loads one (the same one-line errors)."""
    from duplex.cue.runtime import CueModel

    try:
        return CueModel(path).net
    except DuplexError as exc:
        raise DuplexError(f"--init: {exc}") from exc


def _lerp(x: torch.Tensor, pos: torch.Tensor, dim: int, fill: float) -> torch.Tensor:
    """`x` read at fractional positions `pos` (B, n) along `dim` (1: mel bins, 2: frames); `fill` outside."""
    size = x.shape[dim]
    inside = (pos >= 0) & (pos <= size - 1)
    pos = pos.clamp(0, size - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=size - 1)
    w = (pos - lo).to(x.dtype)
    if dim == 1:
        lo, hi, w, inside = lo[:, :, None], hi[:, :, None], w[:, :, None], inside[:, :, None]
        shape = (-1, -1, x.shape[2])
    else:
        lo, hi, w, inside = lo[:, None, :], hi[:, None, :], w[:, None, :], inside[:, None, :]
        shape = (-1, x.shape[1], -1)
    out = x.gather(dim, lo.expand(*shape)) * (1 - w) + x.gather(dim, hi.expand(*shape)) * w
    return torch.where(inside.expand(*shape), out, torch.full_like(out, fill))


def warp(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Another vocal tract (the mel axis stretched by 0.85-1.18) and another pace (time by 0.85-1.15,
    the window's end kept where it is): what makes one synthetic voice sound like many."""
    b, mels, frames = x.shape
    alpha = 0.85 + torch.rand(b, 1, generator=gen) * 0.33
    x = _lerp(x, torch.arange(mels, dtype=x.dtype)[None] / alpha, 1, -1.0)
    beta = 0.85 + torch.rand(b, 1, generator=gen) * 0.3
    back = (frames - 1 - torch.arange(frames, dtype=x.dtype))[None] * beta
    return _lerp(x, (frames - 1) - back, 2, -1.0)


def augment(x: torch.Tensor, gen: torch.Generator, warped: bool = False) -> torch.Tensor:
    """Level, spectral tilt and bandwidth (voices and microphones differ in all three), then masks;
    with `warped`, vocal tract and pace first (`warp`)."""
    if warped:
        x = warp(x, gen)
    b, mels, frames = x.shape
    band = torch.arange(mels)[None]
    x = x + (torch.rand(b, 1, 1, generator=gen) - 0.5) * 0.3  # +-9 dB
    tilt = (torch.rand(b, 1, 1, generator=gen) - 0.5) * 0.2  # up to +-6 dB across the band
    x = x + tilt * (torch.arange(mels, dtype=x.dtype)[None, :, None] / mels - 0.5) * 2
    cutoff = torch.where(torch.rand(b, generator=gen) < 0.3, torch.randint(24, mels, (b,), generator=gen), mels)
    x = torch.where((band >= cutoff[:, None])[:, :, None], torch.full_like(x, -1.0), x)  # a narrower band
    for _ in range(2):
        width = torch.randint(0, 7, (b,), generator=gen)
        start = torch.randint(0, mels - 6, (b,), generator=gen)
        x = x.masked_fill(((band >= start[:, None]) & (band < (start + width)[:, None]))[:, :, None], 0.0)
    width = torch.randint(0, 25, (b,), generator=gen)
    start = torch.randint(0, frames - 60, (b,), generator=gen)
    t = torch.arange(frames)[None]
    return x.masked_fill(((t >= start[:, None]) & (t < (start + width)[:, None]))[:, None, :], 0.0)


def evaluate(net: CueNet, x: torch.Tensor, y: torch.Tensor) -> dict[str, object]:
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x[i: i + 256].float()).argmax(-1) for i in range(0, len(x), 256)])
    net.train()
    confusion = torch.zeros(len(CLASSES), len(CLASSES), dtype=torch.long)
    for t, p in zip(y.tolist(), pred.tolist(), strict=True):
        confusion[t, p] += 1
    return {"accuracy": round(float((pred == y).float().mean()), 4), "confusion": confusion.tolist()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m duplex.cue.train", description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=13332, help="training examples")
    ap.add_argument("--pico-examples", type=int, default=0,
                    help="more training examples in SVOX Pico's two voices (an experiment: docs/cue.md; "
                         "the shipped model has none)")
    ap.add_argument("--shards", type=int, default=4, help="seeded parts they are built in")
    ap.add_argument("--workers", type=int, default=2, help="processes building the parts")
    ap.add_argument("--val-examples", type=int, default=500, help="held-out examples in the training voices")
    ap.add_argument("--dev-examples", type=int, default=333, help="examples in --dev-voices")
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dev-voices", default="festival:kal_diphone",
                    help="comma-separated voices of a family never trained on ('' for none)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--log", type=Path, default=None, help="also write the log here")
    ap.add_argument("--warp", action="store_true",
                    help="also stretch the mel axis and time (an experiment: docs/cue.md; not the shipped model)")
    ap.add_argument("--room-noise", type=float, default=0.0,
                    help="share of the training examples heard under a steady white or pink noise at -45 to -28 dBFS "
                         "(an experiment: docs/cue.md; the shipped model has none)")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from this network (e.g. checkpoints/cue/cue.pt) and keep the last epoch, not the best "
                         "development one: a short run whose length was chosen on development conversations")
    ap.add_argument("--harvested", default="",
                    help="comma-separated files or globs of conversation windows (python -m duplex.cue.harvest), "
                         "added to the template examples in every epoch")
    ap.add_argument("--harvested-classes", default=",".join(CLASSES),
                    help=f"the labels of the harvested windows to train on (of {', '.join(CLASSES)})")
    ap.add_argument("--harvested-val", default="", help="harvested windows of other seeds, reported each epoch")
    ap.add_argument("--max-lr", type=float, default=3e-3, help="the one-cycle schedule's peak learning rate")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.examples, args.epochs, args.shards, args.workers = 40, 2, 1, 1
        args.val_examples, args.dev_examples, args.pico_examples = 10, 10, min(args.pico_examples, 10)
    dev_voices = [v for v in args.dev_voices.split(",") if v]
    try:
        for name, value in (("--examples", args.examples), ("--shards", args.shards), ("--workers", args.workers),
                            ("--val-examples", args.val_examples), ("--dev-examples", args.dev_examples),
                            ("--epochs", args.epochs), ("--threads", args.threads)):
            if value < 1:
                raise DuplexError(f"{name} {value}: must be at least 1")
        if args.pico_examples < 0:
            raise DuplexError(f"--pico-examples {args.pico_examples}: must be 0 or more")
        if not 0.0 <= args.room_noise <= 1.0:
            raise DuplexError(f"--room-noise {args.room_noise}: must be a share, 0 to 1")
        for voice in dev_voices + (PICO_VOICES if args.pico_examples else []):
            check_voice(voice)
        if not args.max_lr > 0:
            raise DuplexError(f"--max-lr {args.max_lr}: must be above 0")
        keep = harvested_classes(args.harvested_classes)
        harvested = load_windows(harvested_files(args.harvested, "--harvested"), "--harvested")
        conversations = load_windows(harvested_files(args.harvested_val, "--harvested-val"), "--harvested-val")
        start = load_start(args.init) if args.init else None
    except DuplexError as exc:
        print(f"duplex.cue.train: {exc}", file=sys.stderr)
        return 2
    args.cache.mkdir(parents=True, exist_ok=True)
    per = args.examples // args.shards
    train = [(args.cache, args.seed * 1000 + k, per, None, False, args.room_noise) for k in range(args.shards)]
    if args.pico_examples:
        train.append((args.cache, args.seed * 1000 + 700, args.pico_examples, PICO_VOICES, False, args.room_noise))
    # validated in quiet rooms, as the shipped model was (its figures stay comparable)
    val = (args.cache, args.seed * 1000 + 500, args.val_examples, None, True, 0.0)  # the same voices
    dev = [(args.cache, args.seed * 1000 + 900, args.dev_examples, dev_voices, True, 0.0)] if dev_voices else []
    t0 = time.monotonic()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:  # festival is the slowest to speak: first
        paths = list(pool.map(_shard, [*dev, *train, val]))
    dev_paths, train_paths, val_path = paths[: len(dev)], paths[len(dev): -1], paths[-1]
    log = args.log.open("w") if args.log else None

    def say(record: dict[str, object]) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        if log:
            log.write(line + "\n")
            log.flush()

    say({"built": [p.name for p in paths], "s": round(time.monotonic() - t0, 1)})
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x, y = load(train_paths)
    if harvested is not None:
        hx, hy = harvested
        chosen = torch.isin(hy, torch.tensor(keep))
        x, y = torch.cat([x, hx[chosen]]), torch.cat([y, hy[chosen]])
        say({"harvested": int(chosen.sum()), "of": len(hy), "classes": [CLASSES[k] for k in keep]})
    vx, vy = load([val_path])
    dev_set = load(dev_paths) if dev_paths else None
    net = start.train() if start is not None else CueNet()
    opt = torch.optim.AdamW(net.parameters(), lr=args.max_lr, weight_decay=1e-2)
    steps = args.epochs * -(-len(x) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.max_lr, total_steps=steps, pct_start=0.1)
    best = -1.0
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), 64):
            idx = order[i: i + 64]
            loss = F.cross_entropy(net(augment(x[idx].float(), gen, args.warp)), y[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        record: dict[str, object] = {"epoch": epoch, "loss": round(total / len(x), 4),
                                     "same_voices": evaluate(net, vx, vy)["accuracy"]}
        score = float(record["same_voices"])  # type: ignore[arg-type]
        if dev_set is not None:
            record["dev"] = evaluate(net, *dev_set)
            score = float(record["dev"]["accuracy"])  # type: ignore[index]
        if conversations is not None:
            record["conversations"] = evaluate(net, *conversations)
        record["s"] = round(time.monotonic() - t0, 1)
        say(record)
        if start is not None or score > best:
            best = score
            args.out.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"state": net.state_dict(), "net": net.shape, "classes": list(CLASSES), "epoch": epoch},
                       args.out)
    say({"best": best, "out": str(args.out)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
