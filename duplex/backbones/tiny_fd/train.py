"""Train tiny-fd on CPU from synthetic dialogues: `python -m duplex.backbones.tiny_fd.train`.

Seeded end to end (numpy and torch), one thread by default (the machine is shared), bounded by
`--minutes` and `--steps`, whichever comes first. The clip pool (espeak-ng and flite voices;
festival is never used here, it is the held-out family) is built once and cached under `--cache`
(not committed). `--init` warm-starts from a checkpoint (same network shape, same repertoire).
The checkpoint is written every few minutes and at the end, so an interrupted run still leaves a
usable model. `--smoke` trains a toy network for a few hundred steps in seconds: the test that
the whole pipeline runs.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from duplex.backbones.tiny_fd import vocab as V
from duplex.backbones.tiny_fd.dialogue import UNIT, Synth, Timing
from duplex.backbones.tiny_fd.speech import REPLIES, Pool, repertoire

DEFAULT_OUT = Path(__file__).resolve().parents[3] / "checkpoints" / "tiny-fd"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "duplex-tiny-fd-cache"


def bank(clips: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Replies as one array of 40 ms frames, and (first unit, length) per reply."""
    frames, replies, first = [], [], 0
    for clip in clips:
        n = -(-clip.size // UNIT)
        padded = np.zeros(n * UNIT, dtype=np.float32)
        padded[: clip.size] = clip
        frames.append(padded.reshape(n, UNIT))
        replies.append((first, n))
        first += n
    return np.concatenate(frames), replies


def batch_loss(model, batch, replies):  # noqa: ANN001, ANN201 - torch types stay local
    import torch
    import torch.nn.functional as F

    mic, ref, tokens, decision, label, weight = batch
    hidden = model(mic, ref, tokens)
    b, s = decision.shape
    logits = model.logits(hidden[:, 1: 1 + 5 * s: 5])  # (B, S, V): at U_k, the step's first token
    allowed = torch.zeros_like(logits, dtype=torch.bool)
    listen = decision == V.LISTEN_DECISION
    speak = decision == V.SPEAK_DECISION
    allowed[..., V.THINK] = listen | speak
    allowed[..., V.SHIFT] = listen
    allowed[..., V.BREAK] = speak
    allowed[..., V.CONT] = speak
    allowed[..., V.EOT] = decision == V.FORCED
    masked = logits.masked_fill(~allowed, -1e9)
    target = label  # the oracle's label, which may differ from the executed token (dialogue.py)
    ce = F.cross_entropy(masked.reshape(b * s, -1), target.reshape(-1), reduction="none")
    loss = (ce * weight.reshape(-1)).sum() / weight.sum().clamp(min=1.0)
    shifts = tokens[..., 0] == V.SHIFT
    if shifts.any():
        starts = torch.tensor([V.unit_id(first) for first, _ in replies])
        choice = model.logits(hidden[:, 2: 2 + 5 * s: 5][shifts])[:, starts]
        chosen = (tokens[..., 1][shifts][:, None] == starts[None]).float().argmax(1)
        loss = loss + 0.2 * F.cross_entropy(choice, chosen)
    pred = masked.argmax(-1)
    return loss, pred, target


def make_batch(synth: Synth, rng: np.random.Generator, size: int, steps: int):  # noqa: ANN201
    import torch

    ds = [synth.dialogue(steps, rng, crop=True) for _ in range(size)]

    def stack(name: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(d, name) for d in ds])).to(dtype)

    return (stack("mic", torch.float32), stack("ref", torch.float32), stack("tokens", torch.long),
            stack("decision", torch.long), stack("target", torch.long), stack("weight", torch.float32))


def train(args: argparse.Namespace) -> dict:
    import torch

    from duplex.backbones.tiny_fd import checkpoint
    from duplex.backbones.tiny_fd.model import NetConfig, TinyFd

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    if args.init:  # warm start: the checkpoint's own repertoire, so its unit ids keep their meaning
        init_meta = checkpoint.read_config(args.init)
        replies = [tuple(r) for r in init_meta["replies"]]
        frames = checkpoint.read_frames(args.init, init_meta["net"]["n_units"]).reshape(-1, UNIT)
    else:
        frames, replies = bank(repertoire(args.cache))
    pool = Pool(args.cache, seed=args.seed, variants=1 if args.smoke else 2, max_voices=2 if args.smoke else None)
    if args.smoke:  # both training families, even in the toy run
        pool.voices += Pool(args.cache, seed=args.seed, variants=1, voices=["flite:slt"]).voices
    timing = Timing(trail_p=args.trail_p, statement_lag=args.statement_lag)
    synth = Synth(pool, frames, replies, timing)
    net = (NetConfig(n_units=len(frames), hidden=64, layers=1, heads=2, kv_heads=1, ffn=128, enc_width=32)
           if args.smoke else NetConfig(n_units=len(frames), hidden=args.hidden, layers=args.layers))
    if args.init:  # a second stage: continue from a checkpoint (its network shape wins)
        net = NetConfig(**checkpoint.read_config(args.init)["net"])
    model = TinyFd(net)
    if args.init:
        checkpoint.load_weights(args.init, model)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"params": params, "pool_s": round(time.perf_counter() - started, 1)}), flush=True)
    meta = {"net": net.to_dict(), "replies": replies, "reply_texts": REPLIES, "timing": asdict(timing),
            "train": {"seed": args.seed, "batch": args.batch, "crop_steps": args.crop, "threads": args.threads,
                      "lr": args.lr, "init": str(args.init) if args.init else None}}
    deadline = started + args.minutes * 60
    last_save = time.perf_counter()
    step, ema, acc = 0, None, None
    while step < args.steps and time.perf_counter() < deadline:
        progress = min(1.0, (time.perf_counter() - started) / (args.minutes * 60))
        progress = max(progress, step / args.steps)
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in opt.param_groups:
            group["lr"] = lr
        batch = make_batch(synth, rng, args.batch, args.crop)
        loss, pred, target = batch_loss(model, batch, replies)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        decision, weight = batch[3], batch[5]
        hit = (pred == target).float()[decision != V.FORCED]
        change = (weight > 1.5)[decision != V.FORCED]
        a = [float(hit.mean()), float(hit[change].mean()) if change.any() else 1.0]
        value = float(loss.detach())
        ema = value if ema is None else 0.98 * ema + 0.02 * value
        acc = a if acc is None else [0.98 * x + 0.02 * y for x, y in zip(acc, a, strict=True)]
        if step % args.log_every == 0:
            print(json.dumps({"step": step, "loss": round(ema, 4), "acc": round(acc[0], 4),
                              "acc_change": round(acc[1], 4), "lr": round(lr, 6),
                              "min": round((time.perf_counter() - started) / 60, 2)}), flush=True)
        if time.perf_counter() - last_save > args.save_every * 60:
            meta["train"] |= {"steps": step, "minutes": round((time.perf_counter() - started) / 60, 1)}
            checkpoint.save(args.out, model, frames, meta)
            last_save = time.perf_counter()
    minutes = round((time.perf_counter() - started) / 60, 2)
    meta["train"] |= {"steps": step, "minutes": minutes, "final_loss": round(ema or 0.0, 4),
                      "final_acc": [round(x, 4) for x in acc or []]}
    checkpoint.save(args.out, model, frames, meta)
    return meta["train"]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="duplex-train-tiny", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="checkpoint folder (default: checkpoints/tiny-fd)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="espeak-ng clip cache")
    p.add_argument("--minutes", type=float, default=45.0, help="wall-clock budget for the whole run")
    p.add_argument("--steps", type=int, default=100_000, help="optimizer steps at most")
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--crop", type=int, default=48, help="160 ms steps per training sequence")
    p.add_argument("--hidden", type=int, default=160, help="transformer width")
    p.add_argument("--layers", type=int, default=3, help="transformer layers")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 is fastest on a shared 2-core machine: no spinning worker threads)")
    p.add_argument("--save-every", type=float, default=5.0, help="minutes between checkpoint saves")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--trail-p", type=float, default=0.08,
                   help="share of user turns that trail off on a comma (SHIFT after 1.7 s of silence)")
    p.add_argument("--statement-lag", type=float, default=0.64,
                   help="silence after a turn that ends on a statement (falling pitch) before SHIFT "
                        "(past the ~0.45 s gaps of a monologue)")
    p.add_argument("--init", type=Path, default=None, help="start from this checkpoint's weights (a second stage)")
    p.add_argument("--smoke", action="store_true", help="toy network, small pool: proves the pipeline in seconds")
    args = p.parse_args(argv)
    if args.smoke:
        args.batch, args.crop = min(args.batch, 2), min(args.crop, 24)
        args.steps, args.minutes = min(args.steps, 300), min(args.minutes, 5.0)
    return args


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(train(parse(argv))))


if __name__ == "__main__":
    main()
