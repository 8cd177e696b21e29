"""Compare the two VADs of the `policy` backbone on the same recordings; print JSON.

Recordings: the scenario clips (several voices), each padded with silence and mixed with white or
pink noise at several levels (seeded). Ground truth per 160 ms chunk: more than half of the chunk
lies inside the clean clip's audible speech. For each VAD and condition: chunk-level precision and
recall, false positives per minute on noise alone, onset delay (first detected chunk after speech
starts), and compute per chunk (median, p99).

    python bench/vad_compare.py [--threshold 0.5] > bench/results/vad-compare.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from audio_io.format import SAMPLE_RATE, STEP_SAMPLES  # noqa: E402
from audio_io.levels import audible_spans  # noqa: E402
from audio_io.scripted import noise_signal  # noqa: E402
from audio_io.vad import make_vad  # noqa: E402
from audio_io.wav import load_mono16k  # noqa: E402

CLIPS = Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "clips"
CONDITIONS = [("clean", None, 0.0), ("pink", -40.0, 0.0), ("white", -35.0, 0.0), ("pink", -30.0, 0.0),
              ("pink", -30.0, -20.0)]  # last: noise at -30 dBFS and the speech 20 dB quieter


def recording(clip: Path, kind: str, noise_db: float | None, speech_gain_db: float, seed: int):
    speech = load_mono16k(clip) * np.float32(10 ** (speech_gain_db / 20))
    pad = np.zeros(SAMPLE_RATE, dtype=np.float32)
    audio = np.concatenate([pad, speech, pad, pad])
    audio = audio[: audio.size // STEP_SAMPLES * STEP_SAMPLES]
    truth = np.zeros(audio.size // STEP_SAMPLES, dtype=bool)
    for s, e in audible_spans(speech, merge_gap_s=0.2):
        lo, hi = (s + 1.0) * SAMPLE_RATE, (e + 1.0) * SAMPLE_RATE
        for k in range(truth.size):
            overlap = min(hi, (k + 1) * STEP_SAMPLES) - max(lo, k * STEP_SAMPLES)
            truth[k] |= overlap > STEP_SAMPLES / 2
    if noise_db is not None:
        audio = audio + noise_signal(kind, noise_db, audio.size, seed)
    return audio, truth


def run(vad_kind: str, threshold: float) -> dict:
    results = {}
    clips = sorted(p for p in CLIPS.glob("*.wav"))
    for kind, noise_db, gain in CONDITIONS:
        name = kind if noise_db is None else f"{kind}{noise_db:g}dB" + (f"_speech{gain:g}dB" if gain else "")
        tp = fp = fn = 0
        delays, times = [], []
        noise_fp, noise_chunks = 0, 0
        for i, clip in enumerate(clips):
            vad = make_vad(vad_kind)
            audio, truth = recording(clip, kind, noise_db, gain, seed=i)
            detected = []
            for k in range(truth.size):
                started = time.perf_counter()
                p = vad.speech_prob(audio[k * STEP_SAMPLES : (k + 1) * STEP_SAMPLES])
                times.append((time.perf_counter() - started) * 1000)
                detected.append(p >= threshold)
            det = np.array(detected)
            tp += int((det & truth).sum())
            fp += int((det & ~truth).sum())
            fn += int((~det & truth).sum())
            onset = int(np.argmax(truth))
            hit = np.flatnonzero(det[onset:])
            delays.append(float(hit[0]) * 0.16 if hit.size else float("nan"))
            if noise_db is not None:  # noise alone, 10 s
                vad.reset()
                alone = noise_signal(kind, noise_db, 10 * SAMPLE_RATE, seed=100 + i)
                for k in range(alone.size // STEP_SAMPLES):
                    noise_fp += vad.speech_prob(alone[k * STEP_SAMPLES : (k + 1) * STEP_SAMPLES]) >= threshold
                    noise_chunks += 1
        results[name] = {
            "precision": round(tp / max(tp + fp, 1), 3),
            "recall": round(tp / max(tp + fn, 1), 3),
            "onset_delay_s_median": round(float(np.nanmedian(delays)), 3),
            "false_positives_per_min_noise_only": round(noise_fp / max(noise_chunks, 1) * 375, 1)
            if noise_chunks else None,
            "ms_per_chunk_p50": round(float(np.percentile(times, 50)), 3),
            "ms_per_chunk_p99": round(float(np.percentile(times, 99)), 3),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    out = {"bench": "vad_compare", "threshold": args.threshold, "machine": platform.machine(),
           "cpu_count": __import__("os").cpu_count(), "clips": len(list(CLIPS.glob("*.wav"))),
           "webrtc": run("webrtc", args.threshold), "silero": run("silero", args.threshold)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
