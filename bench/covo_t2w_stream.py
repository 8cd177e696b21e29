"""Streaming token2wav at random weights: cost per chunk, first audio after SHIFT, seams vs one decode; print JSON.

Builds the release's token2wav architecture (duplex/backbones/covo/t2w_model.py, our implementation)
from a token2wav config.json, with random weights and a random voice prompt of the release's shape
(291 units, 1167 latent frames), and decodes one reply of `--units` speech units four ways or more:

- per-step: what calling the release's decode every 160 ms amounts to (4 units a call, 24 units of
  left context decoded again, fresh noise every call, no right context, no cross-fade);
- streaming variants (t2w_stream.py): growing chunks decoded ahead, left context, lookahead,
  cross-fade, noise fixed per turn; also with fewer ODE points and a shortened voice prompt.

The "speaker" asks for 3 units at SHIFT and 4 per step after, and the LLM is assumed to be
`--ahead` units ahead of it (the turn-mode burst buffer). Per variant: wall time of every decode
call (a chunk, or nothing when the audio is already there), the first call's (SHIFT -> first audio
from the vocoder, on top of the LLM's first unit), and the seams: the streamed audio against one
decode of all units with the same noise, as SNR over all samples and within 10 ms of chunk
boundaries, and the log-spectral distance in 20 ms frames at the boundaries and elsewhere.

    nice python bench/covo_t2w_stream.py --config tiny --units 24 > bench/results/covo_t2w_stream_cpu_tiny.json
    python bench/covo_t2w_stream.py --config ~/Covo-Audio/token2wav/config.json --device cuda   (GPU)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import NoReturn

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from duplex.backbones.covo.t2w_model import Token2Wav, tiny_token2wav_config  # noqa: E402
from duplex.backbones.covo.t2w_stream import StreamingToken2Wav, StreamSettings, Synth, VoicePrompt  # noqa: E402

DEFAULT = StreamSettings()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="tiny", help="'tiny' or the path of a token2wav/config.json")
    p.add_argument("--device", default="cpu")
    p.add_argument("--units", type=int, default=40, help="speech units in the reply (25 per second)")
    p.add_argument("--ahead", type=int, default=12, help="units the LLM has decoded ahead of the speaker")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="only per-step and the default streaming (CI)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = tiny_token2wav_config() if args.config == "tiny" else load_config(Path(args.config))
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    model = Token2Wav(config)
    prompt = VoicePrompt.random(model)
    units = [int(u) for u in np.random.default_rng(0).integers(0, 16_384, args.units)]
    variants = {"stream-default": DEFAULT}
    if not args.quick:
        variants |= {"stream-no-lookahead-no-crossfade": replace(DEFAULT, lookahead=0, crossfade_ms=0.0),
                     "stream-6-ode-points": replace(DEFAULT, steps=6),
                     "stream-prompt-96-units": replace(DEFAULT, prompt_units=96),
                     "stream-max-chunk-8": replace(DEFAULT, max_chunk=8)}
    results = {}
    for name, settings in [("per-step", replace(DEFAULT, lookahead=0)), *variants.items()]:
        synth = Synth(model, prompt, settings, device=device, dtype=dtype)
        reference = synth(units, 0)  # one decode of every unit, this variant's noise and settings
        if name == "per-step":
            audio, calls, bounds = per_step(synth, units, device)
        else:
            audio, calls, bounds = streamed(synth, units, args.ahead, device)
        if name == "per-step":
            release = reference  # one decode at the release's settings, which fewer points etc. depart from
        results[name] = {"settings": asdict(settings), **timing(calls, device, units),
                         **seams(audio, reference, bounds), "snr_vs_release_one_shot_db": snr(release, audio - release)}
    out = {"bench": "covo_t2w_stream", "command": "python bench/covo_t2w_stream.py " + " ".join(sys.argv[1:]),
           "config": args.config, "device": device_name(device), "dtype": str(dtype),
           "torch": torch.__version__, "units": args.units, "ahead": args.ahead,
           "token2latent_params": sum(p.numel() for p in model.token2latent.parameters()),
           "wavegan_params": sum(p.numel() for p in model.wavegan.parameters()), "variants": results}
    print(json.dumps(out, indent=2))


def load_config(path: Path) -> dict:
    try:
        return json.loads(path.read_text())  # the release's file is plain JSON (read by json5 there)
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"covo_t2w_stream.py: {path}: not a readable token2wav config.json ({exc})")


def per_step(synth: Synth, units: list[int], device: torch.device) -> tuple[np.ndarray, list, list[int]]:
    """The release's decode called per step: [24 context + 4 new] units, fresh noise, the tail kept."""
    out, calls, bounds, pos = [], [], [], 0
    lag = 3 * synth.model.wavegan.hop
    for n in [3] + [4] * len(units):
        n = min(n, len(units) - pos)
        if n <= 0:
            break
        left = max(0, pos - 24)
        synth.new_turn()  # the release draws fresh noise on every call
        started, cpu = time.perf_counter(), time.process_time()
        wav = synth(units[left: pos + n], left)
        sync(device)
        calls.append((time.perf_counter() - started, n, n, time.process_time() - cpu))
        want = n * synth.model.unit_samples - (lag if pos == 0 else 0)
        out.append(wav[wav.size - want:])
        pos += n
        bounds.append(sum(a.size for a in out))
    return np.concatenate(out), calls, bounds[:-1]


def streamed(synth: Synth, units: list[int], ahead: int, device: torch.device) -> tuple[np.ndarray, list, list[int]]:
    asked = 0
    voc = StreamingToken2Wav(synth, ahead=lambda: (units[asked: asked + ahead], asked + ahead >= len(units)))
    voc.reset()
    synth.turn = 0  # the same noise as the reference decode
    synth._noise.clear()
    out, calls = [], []
    for n in [3] + [4] * len(units):
        n = min(n, len(units) - asked)
        if n <= 0:
            break
        before = len(voc.chunks)
        started, cpu = time.perf_counter(), time.process_time()
        chunk = units[asked: asked + n]
        asked += n
        out.append(voc.decode(chunk))
        sync(device)
        decoded = sum(c[1] for c in voc.chunks[before:])
        calls.append((time.perf_counter() - started, n, decoded, time.process_time() - cpu))
    lag = 3 * synth.model.wavegan.hop
    bounds = [(s * synth.model.unit_samples - lag) for s, _ in voc.chunks[1:]]
    return np.concatenate(out), calls, bounds


def timing(calls: list, device: torch.device, units: list[int]) -> dict:
    """Per decode call: CPU time of this process on CPU (the machine is shared: wall time mostly measures
    the other jobs), wall time on a GPU."""
    cost = [(c[3] if device.type == "cpu" else c[0]) * 1000 for c in calls]
    chunk_ms = [ms for ms, c in zip(cost, calls, strict=True) if c[2]]
    per_unit = [ms / c[2] for ms, c in zip(cost, calls, strict=True) if c[2]]
    total = sum(cost)
    return {"cost_is": "process CPU time" if device.type == "cpu" else "wall time", "calls": len(calls),
            "chunks": len(chunk_ms), "chunk_units": [c[2] for c in calls if c[2]],
            "chunk_ms": [round(x, 1) for x in chunk_ms], "chunk_ms_p50": pct(chunk_ms, 50),
            "chunk_ms_max": round(max(chunk_ms), 1), "ms_per_unit_p50": pct(per_unit, 50),
            "first_audio_ms": round(cost[0], 1), "total_decode_ms": round(total, 1),
            "wall_total_ms": round(sum(c[0] for c in calls) * 1000, 1),
            "audio_ms": round(len(units) * 40 - 30, 1), "cost_over_audio": round(total / (len(units) * 40), 3)}


def seams(audio: np.ndarray, reference: np.ndarray, bounds: list[int], rate: int = 24_000) -> dict:
    """Streamed vs one decode of the same units: where do they differ, and is it at the boundaries?"""
    assert audio.size == reference.size, (audio.size, reference.size)
    err = audio - reference
    near = np.zeros(audio.size, dtype=bool)
    w = rate // 100
    for b in bounds:
        near[max(0, b - w): b + w] = True
    frame = rate // 50
    lsd_at, lsd_else = [], []
    for start in range(0, audio.size - frame, frame // 2):
        a, r = (np.log10(np.abs(np.fft.rfft(x[start: start + frame] * np.hanning(frame))) ** 2 + 1e-8)
                for x in (audio, reference))
        d = float(np.sqrt(np.mean((10 * (a - r)) ** 2)))
        (lsd_at if any(start <= b < start + frame for b in bounds) else lsd_else).append(d)
    return {"boundaries": len(bounds), "snr_db": snr(reference, err), "snr_near_boundaries_db":
            snr(reference[near], err[near]) if near.any() else None,
            "lsd_at_boundaries_db": round(float(np.mean(lsd_at)), 2) if lsd_at else None,
            "lsd_elsewhere_db": round(float(np.mean(lsd_else)), 2) if lsd_else else None}


def snr(ref: np.ndarray, err: np.ndarray) -> float:
    return round(float(10 * np.log10(np.sum(ref**2) / max(np.sum(err**2), 1e-20))), 2)


def fail(message: str) -> NoReturn:
    """Bad input: one line naming the culprit, exit status 2."""
    print(message, file=sys.stderr)
    sys.exit(2)


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 1) if xs else 0.0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu, {torch.get_num_threads()} thread(s), 2 cores shared with other jobs"


if __name__ == "__main__":
    main()
