"""Covo backbone speed: native step, turn-mode SHIFT -> first audible sample, token2wav chunk cost; print JSON.

Same code as the runtime, two decoders over one set of weights, side by side in one run:

- eager: transformers' Qwen2 forward with its DynamicCache, one call per token, encoder eager
  (how the released inference code runs the model);
- static: our static KV cache, one device call per multi-token decode, bf16 on GPU, no graphs;
- optimised (GPU only): the same, the step (encoder window and decode) captured as CUDA graphs;
  `--compile` adds a torch.compile column (minutes to build on a small CPU).

Measured per variant:
- native: compute of one 160 ms step (encoder window + 1 frame + 4 tokens), p50/p99 over
  `--steps` steps after warm-up, on speech audio; and the cost of one context refill.
- turn: from SHIFT (the policy decided to answer) to the first speech unit of the reply, for a
  5 s utterance: encode it, prefill Covo's dialog prompt, decode until the first unit. The reply
  is forced to Covo's "5 text tokens then 15 audio tokens" pattern (covo.interleave = 5,15),
  because random weights would otherwise emit speech units at random; so it is five text tokens
  and then the first unit, as with the trained model. Also the whole SHIFT step (3 units), and
  SHIFT -> first audible sample: that step plus token2wav's first chunk (streaming, t2w_stream.py).
- token2wav: one first chunk (3 units) and one steady chunk (16 units) at the streaming defaults,
  against the release's way per step (4 units + 24 of context, fp32) as the eager column.

`--random-init` builds everything at random weights (no download): `--config 7b` is the published
7B architecture (needs a GPU with ~20 GB) and the full-size token2wav (its config.json's shape, or
`--t2w-config` pointing at a checkout's token2wav/config.json); the tokenizer is a stand-in with
Qwen2's vocabulary size and Covo's special tokens (the prompt lengths are close to the real
tokenizer's). `--config tiny` writes the test suite's tiny checkpoint, loads it through the real
loader, and uses the tiny token2wav.

    python bench/covo_step.py --config tiny --device cpu > bench/results/covo-cpu-tiny.json
    python bench/covo_step.py --config 7b --random-init --device cuda > bench/results/covo_h200_7b.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from audio_io.format import STEP_SAMPLES  # noqa: E402
from audio_io.wav import load_mono16k  # noqa: E402
from duplex.backbones.covo import factory  # noqa: E402
from duplex.backbones.covo.config import CovoConfig  # noqa: E402
from duplex.backbones.covo.loader import Checkpoint, load_checkpoint  # noqa: E402
from duplex.backbones.covo.vocab import Vocab, checkpoint_vocab  # noqa: E402

SPEECH = ROOT / "examples" / "audio" / "question.wav"


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """--config, --random-init, --device: which covo model a benchmark builds (this one and covo_capacity.py)."""
    p.add_argument("--config", choices=("tiny", "7b"), default="tiny")
    p.add_argument("--random-init", action="store_true", help="random weights (always so: no weights are read)")
    p.add_argument("--device", default="auto")


def check_model_arguments(args: argparse.Namespace, rt: factory.Runtime, prog: str) -> None:
    """A one-line error (exit 2) for a 7B run without a GPU or without --random-init."""
    if args.config == "7b" and rt.device.type != "cuda":
        fail(f"{prog}: --config 7b needs a CUDA GPU (about 20 GB); run --config tiny on CPU")
    if args.config == "7b" and not args.random_init:
        fail(f"{prog}: --config 7b reads no weights: add --random-init")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(p)
    p.add_argument("--steps", type=int, default=200, help="native steps measured per variant")
    p.add_argument("--repeats", type=int, default=10, help="turn-mode SHIFTs measured per variant")
    p.add_argument("--threads", type=int, default=1, help="CPU intra-op threads")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (static cache)")
    p.add_argument("--t2w-config", type=Path, help="a token2wav/config.json (default: the release's shape for 7b)")
    p.add_argument("--t2w-prompt-units", type=int, default=291, help="voice-prompt units (the release: 291)")
    args = p.parse_args()
    base = CovoConfig(device=args.device, context_tokens=4096, refill_keep_tokens=2048, encoder_window_steps=16)
    rt = factory.runtime(base)
    if rt.device.type == "cpu":
        torch.set_num_threads(args.threads)
    check_model_arguments(args, rt, "covo_step.py")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = tiny_checkpoint(Path(tmp), rt) if args.config == "tiny" else random_7b(rt)
        variants = {"eager": dataclasses.replace(base, cache="dynamic", optimise="none"),
                    "static": dataclasses.replace(base, cache="static", optimise="none")}
        if rt.device.type == "cuda":
            variants["optimised"] = dataclasses.replace(base, cache="static", optimise="graphs")
        if args.compile:
            variants["optimised+compile"] = dataclasses.replace(base, cache="static", optimise="compile")
        best = "optimised" if "optimised" in variants else "static"
        speech = load_mono16k(SPEECH)
        native = bench_native(variants, ckpt, rt, speech, args.steps)
        t2w = bench_token2wav(t2w_config(args), rt, args.t2w_prompt_units)
        turn = bench_turn(variants, ckpt, rt, speech, args.repeats, t2w.pop("_vocoder"))
    out = {
        "bench": "covo_step", "config": args.config, "device": device_name(rt.device), "dtype": str(rt.dtype),
        "command": "python bench/covo_step.py " + " ".join(sys.argv[1:]),
        "variants": {"eager": "transformers forward + DynamicCache, one call per token",
                     "static": "static KV cache, one device call per multi-token decode, eager kernels",
                     "optimised": "static KV cache + CUDA graphs (GPU only)"},
        "torch": torch.__version__, "transformers": __import__("transformers").__version__,
        "params": sum(p.numel() for p in ckpt.model.parameters()),
        "native": {"encoder_window_steps": base.encoder_window_steps, "context_tokens": base.context_tokens,
                   **native, "p50_ratio_eager_over_best": ratio(native, "step_ms_p50", best),
                   "p99_ratio_eager_over_best": ratio(native, "step_ms_p99", best)},
        "turn": {"utterance_s": 5.0, "interleave": "5,15", **turn,
                 "first_unit_ratio_eager_over_best": ratio(turn, "first_unit_ms_p50", best),
                 "first_audible_ratio_eager_over_best": ratio(turn, "first_audible_ms_p50", best)},
        "token2wav": t2w,
        "targets_on_one_h100": {"native_step_ms_p99": 50, "turn_first_unit_ms": 150},
    }
    if rt.device.type != "cuda":
        out["note"] = ("CPU run: same code as on a GPU, without CUDA graphs and bf16. It shows the paths work and "
                       "how the costs split; it says nothing about the 7B targets on a GPU, not measured here.")
    print(json.dumps(out, indent=2))


def t2w_config(args: argparse.Namespace) -> dict:
    from duplex.backbones.covo.t2w_model import release_token2wav_config, tiny_token2wav_config

    if args.t2w_config:
        try:
            return json.loads(args.t2w_config.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            fail(f"covo_step.py: {args.t2w_config}: not a readable token2wav config.json ({exc})")
    return tiny_token2wav_config() if args.config == "tiny" else release_token2wav_config()


def bench_token2wav(config: dict, rt: factory.Runtime, prompt_units: int) -> dict:
    """One chunk's cost: the release's way per step (eager) vs the streaming defaults (bf16 on GPU)."""
    from duplex.backbones.covo.t2w_model import Token2Wav
    from duplex.backbones.covo.t2w_stream import StreamingToken2Wav, StreamSettings, Synth, VoicePrompt

    model = Token2Wav(config)
    prompt = VoicePrompt.random(model, prompt_units)
    fast = Synth(model, prompt, StreamSettings(), device=rt.device, dtype=rt.dtype)
    units = [int(u) for u in np.random.default_rng(0).integers(0, 16_384, 64)]
    first = [timed(rt, lambda: fast(units[:5], 0)) for _ in range(3)]  # 3 units + 2 of lookahead
    steady = [timed(rt, lambda: fast(units[:26], 0)) for _ in range(3)]  # 8 context + 16 + 2 lookahead
    eager_model = Token2Wav(config)
    eager_model.load_state_dict(model.state_dict())
    eager = Synth(eager_model, prompt, StreamSettings(lookahead=0), device=rt.device, dtype=torch.float32)
    per_step = [timed(rt, lambda: eager(units[:28], 0)) for _ in range(3)]  # 24 context + 4 new, fp32
    out = {"prompt_units": prompt_units, "ode_points": StreamSettings().steps,
           "eager_per_step_ms_p50": pct(per_step, 50), "eager_ms_per_unit": round(pct(per_step, 50) / 4, 2),
           "first_chunk_ms_p50": pct(first, 50), "steady_chunk_16_ms_p50": pct(steady, 50),
           "steady_ms_per_unit": round(pct(steady, 50) / 16, 2),
           "ms_per_unit_ratio_eager_over_streaming": round(pct(per_step, 50) / 4 / max(pct(steady, 50) / 16, 1e-9), 2),
           "realtime_factor_streaming": round(pct(steady, 50) / (16 * 40), 3),
           "_vocoder": {"eager": StreamingToken2Wav(eager), "fast": StreamingToken2Wav(fast)}}
    return out


def bench_native(variants: dict[str, CovoConfig], ckpt: Checkpoint, rt: factory.Runtime, speech: np.ndarray,
                 steps: int) -> dict[str, dict]:
    """Step compute per variant; the variants take turns step by step, so they share the machine's load."""
    backbones = {name: factory.native_backbone(dataclasses.replace(c, mode="native"), ckpt, vocab_of(ckpt), rt)
                 for name, c in variants.items()}
    chunks = [speech[i : i + STEP_SAMPLES] for i in range(0, speech.size - STEP_SAMPLES + 1, STEP_SAMPLES)]
    times: dict[str, list[float]] = {name: [] for name in backbones}
    encoder: dict[str, list[float]] = {name: [] for name in backbones}
    refill: dict[str, list[float]] = {name: [] for name in backbones}
    for k in range(10 + steps):  # 10 warm-up steps
        for name, b in backbones.items():
            started = time.perf_counter()
            b.step(chunks[k % len(chunks)])  # ends in the host copy of the four ids: synchronised
            if k >= 10:
                times[name].append((time.perf_counter() - started) * 1000)
    for k in range(min(steps, 50)):  # the encoder window alone, to split the step
        for name, b in backbones.items():
            b.encoder.push(chunks[k % len(chunks)])
            encoder[name].append(timed(rt, b._encode))
    for _ in range(3):  # fill the context to the brim (random history), then time one refill
        for name, b in backbones.items():
            dec = b.decoder
            dec.prefill(torch.randn(dec.room(), dec.hidden, device=rt.device, dtype=rt.dtype) * 0.02)
            refill[name].append(timed(rt, b.refill))
    return {name: {"step_ms_p50": pct(times[name], 50), "step_ms_p99": pct(times[name], 99),
                   "step_ms_mean": round(float(np.mean(times[name])), 3), "steps": steps,
                   "encoder_window_ms_p50": pct(encoder[name], 50), "refill_ms_p50": pct(refill[name], 50),
                   "refill_keep_tokens": b.keep} for name, b in backbones.items()}


def bench_turn(variants: dict[str, CovoConfig], ckpt: Checkpoint, rt: factory.Runtime, speech: np.ndarray,
               repeats: int, vocoders: dict[str, Any]) -> dict[str, dict]:
    """SHIFT -> first speech unit, and -> first audible sample (+ token2wav's first chunk); the variants take turns."""
    chats = {name: factory.chat_context(dataclasses.replace(c, mode="turn", interleave="5,15", max_reply_tokens=200),
                                        ckpt, vocab_of(ckpt), rt) for name, c in variants.items()}
    utterance = np.resize(speech, 5 * 16000).astype(np.float32)  # 5.0 s
    first: dict[str, list[float]] = {name: [] for name in chats}
    shift: dict[str, list[float]] = {name: [] for name in chats}
    audible: dict[str, list[float]] = {name: [] for name in chats}
    for k in range(repeats + 2):  # two warm-ups
        for name, chat in chats.items():
            vocoder = vocoders["eager" if name == "eager" else "fast"]  # eager: fp32, no lookahead
            chat.reset()
            vocoder.reset()
            vocoder.ahead = lambda chat=chat: factory.units_ahead(chat)
            started = time.perf_counter()
            chat.start_reply(utterance)
            reply = chat.reply
            units = chat.next_units(3)  # what the SHIFT step needs: SHIFT + 3 units
            done = time.perf_counter()
            wav = vocoder.decode([u % 16_384 for u in units])
            sync(rt)
            heard = time.perf_counter()
            assert reply is not None and reply.first_unit_s is not None and len(units) == 3 and wav.size
            if k >= 2:
                first[name].append((reply.first_unit_s - started) * 1000)
                shift[name].append((done - started) * 1000)
                audible[name].append((heard - started) * 1000)
    return {name: {"first_unit_ms_p50": pct(first[name], 50), "first_unit_ms_p99": pct(first[name], 99),
                   "shift_step_ms_p50": pct(shift[name], 50), "first_audible_ms_p50": pct(audible[name], 50),
                   "first_audible_ms_p99": pct(audible[name], 99),
                   "prompt_tokens": chat.decoder.length - chat.prefix,
                   "system_prompt_tokens": chat.prefix, "repeats": repeats} for name, chat in chats.items()}


def timed(rt: factory.Runtime, fn: Any) -> float:
    sync(rt)
    started = time.perf_counter()
    fn()
    sync(rt)
    return (time.perf_counter() - started) * 1000


def tiny_checkpoint(folder: Path, rt: factory.Runtime) -> Checkpoint:
    from duplex.backbones.covo.tiny import write_tiny_checkpoint

    write_tiny_checkpoint(folder / "tiny-covo")
    return load_checkpoint(folder / "tiny-covo", device=rt.device, dtype=rt.dtype)


class StandInTokenizer:
    """Qwen2's vocabulary size (151,643 + specials) and Covo's special tokens; one token per character."""

    SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begofcAUDIO|>", "<|cAUDIO|>", "<|endofcAUDIO|>",
                "<|THINK|>", "<|SHIFT|>", "<|BREAK|>", "<|EOT|>"]

    def __init__(self, size: int = 151_671) -> None:
        self.size = size
        self.ids = {s: 151_643 + i for i, s in enumerate(self.SPECIALS)}

    def get_vocab_size(self, with_added_tokens: bool = True) -> int:
        return self.size

    def token_to_id(self, text: str) -> int | None:
        return self.ids.get(text)

    def encode(self, text: str, add_special_tokens: bool = False) -> Any:
        ids: list[int] = []
        while text:
            special = next((s for s in self.SPECIALS if text.startswith(s)), None)
            if special:
                ids.append(self.ids[special])
                text = text[len(special):]
            else:
                ids.append(ord(text[0]) % 151_000)
                text = text[1:]
        return type("Encoding", (), {"ids": ids})()

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return ""


def random_7b(rt: factory.Runtime) -> Checkpoint:
    from duplex.backbones.covo.arch import CovoAudioModel, published_config
    from duplex.backbones.covo.loader import _rebuild_buffers

    config = published_config()
    with torch.device("meta"):
        model = CovoAudioModel(config)
    model = model.to_empty(device=rt.device).to(rt.dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    _rebuild_buffers(model, rt.device)
    model.eval().requires_grad_(False)
    return Checkpoint(Path("random-7b"), config, model, StandInTokenizer(), Path("stand-in tokenizer"))


def vocab_of(ckpt: Checkpoint) -> Vocab:
    return checkpoint_vocab(ckpt)


def fail(message: str) -> NoReturn:
    """Bad input: one line naming the culprit, exit status 2."""
    print(message, file=sys.stderr)
    sys.exit(2)


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 3)


def ratio(results: dict[str, dict], key: str, best: str) -> float:
    return round(results["eager"][key] / max(results[best][key], 1e-9), 2)


def sync(rt: factory.Runtime) -> None:
    if rt.device.type == "cuda":
        torch.cuda.synchronize()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    return f"cpu: {model}, {torch.get_num_threads()} thread(s), shared with other jobs"


if __name__ == "__main__":
    main()
