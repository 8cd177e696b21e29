"""Turn-taking on generated conversations, judged by strict definitions; prints one JSON object.

    python bench/floor_suite.py [--config examples/policy.yaml] [--set key=value ...] [--family espeak|flite|all]

A stand-in for the project's evaluation tool while that is being built: conversations are spoken
by espeak-ng (paused turns as one sentence with SSML breaks, so each fragment keeps the sentence's
intonation) and flite voices (fragments spoken separately, so each can sound final); never festival:
that family is held out for the final evaluation. They are
run through the scenario runner offline, and the speaker's audio is judged directly:

- false start: an audible model onset (>= 60 ms) while the user holds the floor: inside a turn clip,
  its inner pauses included (mid-turn pauses of 0.5-1.5 s, monologues with 0.45 s gaps);
- resume over a barge-in: an audible onset after the model went quiet for a barge-in and before
  that barge-in utterance (hesitant pieces included) ends;
- overlap: seconds of model audio inside each barge-in utterance;
- backchannel continued: no BREAK from the backchannel's start to 1 s after its end, and the
  reply is audible again after it;
- turn latency: end of the last turn clip -> first audible model sample.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout without an install, like the other benchmarks

from audio_io.format import SAMPLE_RATE  # noqa: E402
from audio_io.levels import audible_spans  # noqa: E402
from audio_io.wav import load_mono16k  # noqa: E402
from duplex.scenario.runner import ModelCache, run_scenario_file  # noqa: E402

MIN_ONSET_S = 0.06
ESPEAK = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-us+m4")
FLITE = ("slt", "rms", "awb", "kal16")

PAUSED = [  # fragments of one turn; the pause after each but the last is the user thinking
    ("I was thinking,", "maybe we could go,", "to the seaside this weekend."),
    ("So the thing is.", "I never really liked the old house."),
    ("Could you tell me", "how long the train takes", "to get to the airport?"),
    ("My sister called yesterday,", "and she said", "the baby was born on Monday."),
    ("The report is almost done.", "I only need to add the numbers."),
    ("Well,", "I guess we could try the other restaurant."),
]
MONOLOGUES = [
    ("I moved here three years ago.", "At first I hated the rain.", "Now I cannot imagine living anywhere else."),
    ("The meeting starts at nine.", "Bring the slides and the budget.", "We will finish before lunch."),
    ("My garden is small.", "It has two apple trees and a bench.", "In summer I read there every evening."),
]
QUESTIONS = ["What time does the museum open on Sundays?", "Can you recommend a good book about history?",
             "How far is the nearest train station from here?"]
BARGE_INS = [("Wait,", "no,", "that is not what I asked you about."),
             ("Hold on,", "stop,", "I meant the other one."),
             ("No no,", "wait,", "please listen to me for a second.")]
BACKCHANNELS = ["mm-hmm", "yeah", "right", "okay", "uh-huh"]


@dataclass(frozen=True, slots=True)
class Voice:
    family: str
    name: str


def speak(cache: Path, voice: Voice, text: str) -> np.ndarray:
    """`text` in `voice`, trimmed and peak-normalised; SSML (espeak only) when it starts with <speak>."""
    key = f"{voice.family}-{voice.name}-{hashlib.sha1(text.encode()).hexdigest()[:10]}".replace("+", "_")
    out = cache / f"{key}.wav"
    if not out.exists():
        raw = cache / f"{key}.raw.wav"
        ssml = ["-m"] if text.startswith("<speak>") else []
        cmd = (["espeak-ng", *ssml, "-v", voice.name, "-w", str(raw), text] if voice.family == "espeak"
               else ["flite", "-voice", voice.name, "-t", text, "-o", str(raw)])
        subprocess.run(cmd, check=True, capture_output=True)
        audio = load_mono16k(raw)
        spans = audible_spans(audio)
        if spans:  # trim the engine's own leading/trailing silence: pauses are ours to place
            audio = audio[int(spans[0][0] * SAMPLE_RATE): int(spans[-1][1] * SAMPLE_RATE)]
        audio = audio / max(float(np.abs(audio).max()), 1e-6) * 10 ** (-3 / 20)
        sf.write(out, audio, SAMPLE_RATE, subtype="PCM_16")
        raw.unlink()
    return load_mono16k(out)


def joined(parts: list[np.ndarray], gaps: list[float]) -> np.ndarray:
    out = [parts[0]]
    for gap, part in zip(gaps, parts[1:], strict=True):
        out += [np.zeros(round(gap * SAMPLE_RATE), np.float32), part]
    return np.concatenate(out)


def build(folder: Path, cache: Path, voices: list[Voice], overrides: dict) -> list[tuple[str, Path]]:
    """Scenario files (kind, path) for every voice: paused turns, monologues, barge-ins, backchannels."""
    rng = np.random.default_rng(7)
    made: list[tuple[str, Path]] = []

    def scenario(kind: str, name: str, clips: list[tuple[np.ndarray, str]], duration: float) -> None:
        lines = [f"name: {name}", f"duration: {duration:.2f}", f"config: {json.dumps(overrides)}", "user:"]
        for i, (audio, placement) in enumerate(clips):
            wav = folder / f"{name}-{i}.wav"
            sf.write(wav, audio, SAMPLE_RATE, subtype="PCM_16")
            lines.append(f"  - {{audio: {wav.name}, {placement}}}")
        lines.append("expect: []")
        path = folder / f"{name}.yaml"
        path.write_text("\n".join(lines) + "\n")
        made.append((kind, path))

    for v in voices:
        tag = f"{v.family}-{v.name}".replace("+", "_")
        for k, frags in enumerate(PAUSED):
            gaps = [float(g) for g in rng.uniform(0.5, 1.5, len(frags) - 1)]
            if v.family == "espeak":  # one sentence with breaks: the fragments keep its intonation
                marked = "".join(f'{f} <break time="{round(g * 1000)}ms"/> ' for f, g in zip(frags, gaps, strict=False))
                audio = speak(cache, v, f"<speak>{marked}{frags[-1]}</speak>")
            else:  # flite ignores SSML breaks: fragments spoken on their own (each can sound final)
                audio = joined([speak(cache, v, f) for f in frags], gaps)
            scenario("paused", f"paused-{tag}-{k}", [(audio, "at: 0.5")], 0.5 + audio.size / SAMPLE_RATE + 4)
        for k, sents in enumerate(MONOLOGUES):
            audio = joined([speak(cache, v, s) for s in sents], [0.45] * (len(sents) - 1))
            scenario("monologue", f"mono-{tag}-{k}", [(audio, "at: 0.5")], 0.5 + audio.size / SAMPLE_RATE + 4)
        for k, (q, pieces) in enumerate(zip(QUESTIONS, BARGE_INS, strict=True)):
            question = speak(cache, v, q)
            gaps = [float(g) for g in rng.uniform(0.2, 0.6, len(pieces) - 1)]
            barge = joined([speak(cache, v, p) for p in pieces], gaps)
            scenario("barge_in", f"barge-{tag}-{k}",
                     [(question, "at: 0.3"),
                      (barge, "role: barge_in, after: {event: speaking_started, nth: 1, delay: 1.0}")],
                     0.3 + question.size / SAMPLE_RATE + 2.5 + barge.size / SAMPLE_RATE + 5)
        question = speak(cache, v, "Tell me about the history of this old town and its castle.")
        for k, word in enumerate(BACKCHANNELS):
            bc = speak(cache, v, word)
            after = f"{{event: speaking_started, nth: 1, delay: {0.8 + 0.3 * k:.1f}}}"
            clips = [(question, "at: 0.3"), (bc, f"role: backchannel, after: {after}")]
            scenario("backchannel", f"bc-{tag}-{k}", clips, 0.3 + 2 * question.size / SAMPLE_RATE + 4)
    return made


def onsets(model_audio: np.ndarray) -> list[tuple[float, float]]:
    """Audible model spans of >= 60 ms (20 ms windows, 40 ms gaps bridged)."""
    return [(s, e) for s, e in audible_spans(model_audio, merge_gap_s=0.04) if e - s >= MIN_ONSET_S]


def judge(kind: str, result) -> dict:
    tl = result.timeline
    spans = onsets(tl.model_audio)
    clips = tl.clips
    out: dict = {"kind": kind, "name": result.name}
    if kind in ("paused", "monologue"):
        c = clips[0]
        out["false_start"] = any(c.start < s < c.end for s, _ in spans)
        after = [s for s, _ in spans if s >= c.end]
        out["latency"] = after[0] - c.end if after else None
    elif kind == "barge_in":
        q, b = clips
        out["false_start"] = any(q.start < s < q.end for s, _ in spans)
        after = [s for s, _ in spans if q.end <= s < b.start]
        out["latency"] = after[0] - q.end if after else None
        out["resumed"] = b.start != float("inf") and any(b.start < s < b.end for s, _ in spans)
        out["overlap_s"] = sum(max(0.0, min(e, b.end) - max(s, b.start)) for s, e in spans)
        out["broke"] = any(b.start <= t <= b.end + 0.5 for t in tl.breaks)
    else:
        q, bc = clips
        broke = any(bc.start <= t <= bc.end + 1.0 for t in tl.breaks)
        heard_after = any(e > bc.end + 0.2 for _, e in spans)
        out["continued"] = bc.start != float("inf") and not broke and heard_after
        after = [s for s, _ in spans if s >= q.end]
        out["latency"] = after[0] - q.end if after else None
    return out


def summarise(rows: list[dict]) -> dict:
    turns = [r for r in rows if r["kind"] in ("paused", "monologue")]
    lat = sorted(r["latency"] for r in rows if r.get("latency") is not None)
    barge = [r for r in rows if r["kind"] == "barge_in"]
    bc = [r for r in rows if r["kind"] == "backchannel"]

    def pct(n: int, d: int) -> float:
        return round(100.0 * n / d, 1) if d else 0.0

    fs_paused = sum(r["false_start"] for r in turns if r["kind"] == "paused")
    fs_mono = sum(r["false_start"] for r in turns if r["kind"] == "monologue")
    return {
        "false_starts": f"{fs_paused + fs_mono}/{len(turns)}",
        "false_start_pct": pct(fs_paused + fs_mono, len(turns)),
        "false_starts_paused": f"{fs_paused}/{sum(r['kind'] == 'paused' for r in turns)}",
        "false_starts_monologue": f"{fs_mono}/{sum(r['kind'] == 'monologue' for r in turns)}",
        "resumes_over_barge_in": f"{sum(r['resumed'] for r in barge)}/{len(barge)}",
        "barge_in_broke": f"{sum(r['broke'] for r in barge)}/{len(barge)}",
        "overlap_s_mean": round(statistics.fmean(r["overlap_s"] for r in barge), 3) if barge else None,
        "backchannel_continued": f"{sum(r['continued'] for r in bc)}/{len(bc)}",
        "unanswered": sum(r.get("latency") is None for r in rows),
        "latency_median_s": round(statistics.median(lat), 3) if lat else None,
        "latency_p90_s": round(lat[min(len(lat) - 1, int(0.9 * len(lat)))], 3) if lat else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path("examples/policy.yaml"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--family", choices=("espeak", "flite", "all"), default="all")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "duplex-floor-suite")
    ap.add_argument("--rows", action="store_true", help="also print every conversation's row")
    args = ap.parse_args(argv)
    overrides: dict = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        node = overrides
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(raw)
    voices = ([Voice("espeak", n) for n in ESPEAK] if args.family in ("espeak", "all") else []) + \
             ([Voice("flite", n) for n in FLITE] if args.family in ("flite", "all") else [])
    args.cache.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="floor-suite-"))
    try:
        made = build(folder, args.cache, voices, overrides)
        cache = ModelCache()
        rows = []
        for kind, path in made:
            result = run_scenario_file(path, config=args.config.resolve(), cache=cache)
            if result.timeline is None:
                print(f"floor_suite: {path.name}: {'; '.join(result.failures)}", file=sys.stderr)
                return 1
            rows.append(judge(kind, result))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = {"config": str(args.config), "set": args.set, "family": args.family,
              "conversations": len(rows), "strict": summarise(rows)}
    if args.rows:
        report["rows"] = rows
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
