"""Compare the echo cancellers (none, webrtc, speex) in simulated rooms; print JSON.

A closed loop on the offline engine with the default config (backbone and all): whatever the
speaker plays leaks back into the microphone through a room (delay + decaying impulse response)
at `--echo-db` below the speaker, plus a little noise; the canceller sees the played signal as
reference, the same pairing the live input uses. Two setups, with no config change between them:

- `headset`: no echo path at all (the canceller has nothing to cancel);
- `speakers`: the speaker leaks back at `--echo-db`.

Cancellers: `auto` (the default: the best engine installed, behind the echo-path gate of
`audio_io.echo_path`), `none`, and each engine `gated` or `bare` (the bare one is the behaviour
before the gate). Two sessions per canceller and setup:

- `reply`: the user asks once, the model answers for `--reply-s` seconds, the user stays silent.
  Any BREAK (or reply pause) is a false barge-in. ERLE is measured on this echo-only stretch.
- `barge_in`: the same, and the user says "Hold on a second, let me interrupt you right there"
  `--cut-s` into the reply. Reported: whether the model
  yielded, how long after the user's onset, and how much of the user's voice survived the
  canceller during double talk (near-end attenuation; 0 dB = untouched).

    python bench/aec_compare.py [--echo-db -10] [--delay-ms 100] [--reply-s 60] [--setups headset,speakers]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio_io.aec import FRAME, EchoCanceller, erle_db, make_aec  # noqa: E402
from audio_io.format import SAMPLE_RATE, STEP_SAMPLES  # noqa: E402
from audio_io.speaker import SpeakerQueue  # noqa: E402
from duplex.clock import VirtualClock  # noqa: E402
from duplex.config import load_config  # noqa: E402
from duplex.events import Control, Speaker  # noqa: E402
from duplex.session import DuplexSession  # noqa: E402
from duplex.tokens import Kind  # noqa: E402
from tests.speech import speak  # noqa: E402

REPLY_TEXT = ("Here is the long answer you asked for. The weather this week will be mild, with sunshine in the "
              "morning and clouds building in the afternoon. On Tuesday a weak front brings light rain to the "
              "north, clearing by the evening. Wednesday and Thursday stay dry and bright, a little warmer, with "
              "a gentle breeze from the south west. Friday turns cooler again as the wind moves round to the "
              "north. ")


class Room:
    """The offline speaker and microphone of one simulated room with a speaker-to-mic leak."""

    clocked = True

    def __init__(self, user: np.ndarray, aec: EchoCanceller, *, echo_db: float, delay_ms: float, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        n = np.arange(int(0.12 * SAMPLE_RATE))
        rir = rng.standard_normal(n.size) * np.exp(-n / (0.025 * SAMPLE_RATE)) * 0.4
        rir[0] = 1.0
        rir *= 10 ** (echo_db / 20) / np.sqrt(np.sum(rir**2))  # echo energy = speaker energy x echo_db
        self.rir = np.concatenate([np.zeros(round(delay_ms * SAMPLE_RATE / 1000)), rir]).astype(np.float32)
        self.user, self.aec = user, aec
        self.noise = (rng.standard_normal(user.size) * 10 ** (-65 / 20)).astype(np.float32)
        self.queue = SpeakerQueue()
        self.played = np.zeros(user.size, dtype=np.float32)
        self.echo = np.zeros(user.size, dtype=np.float32)
        self.cleaned = np.zeros(user.size, dtype=np.float32)
        self._k = 0
        self._out = np.zeros(FRAME, dtype=np.float32)

    def advance(self) -> np.ndarray:
        lo = self._k * STEP_SAMPLES
        block = self.played[lo : lo + STEP_SAMPLES]
        self.queue.pull_into(block)
        return block

    async def read(self) -> np.ndarray | None:
        lo, hi = self._k * STEP_SAMPLES, (self._k + 1) * STEP_SAMPLES
        if hi > self.user.size:
            return None
        start = max(0, lo - self.rir.size)
        self.echo[lo:hi] = np.convolve(self.played[start:hi], self.rir)[lo - start : hi - start]
        near = self.user[lo:hi] + self.echo[lo:hi] + self.noise[lo:hi]
        for i in range(0, STEP_SAMPLES, FRAME):
            self.aec.process(near[i : i + FRAME], self.played[lo + i : lo + i + FRAME], self._out)
            self.cleaned[lo + i : lo + i + FRAME] = self._out
        self._k += 1
        return self.cleaned[lo:hi].copy()

    def close(self) -> None:
        pass


def canceller(kind: str) -> EchoCanceller:
    """`auto`, `none`, `webrtc`/`speex` (gated, as live), `webrtc-bare`/`speex-bare` (no gate)."""
    name, _, bare = kind.partition("-")
    return make_aec(name, gated=bare != "bare")


def session(kind: str, user: np.ndarray, cfg_sets: list[str], args: argparse.Namespace) -> tuple[Room, list]:
    cfg = load_config(sets=cfg_sets)
    room = Room(user, canceller(kind), echo_db=args.echo_db, delay_ms=args.delay_ms)
    # live=True: the session ends with the room's input (no offline tail); the virtual clock keeps it fast.
    events = asyncio.run(DuplexSession(config=cfg, input=room, output=room, live=True, clock=VirtualClock()).play())
    return room, events


def false_barge_ins(events: list, until: float = float("inf")) -> int:
    """Times the model stopped talking on its own echo: BREAKs, and pauses inside the reply."""
    breaks = [e for e in events if isinstance(e, Control) and e.token is Kind.BREAK and e.t < until]
    starts = [e for e in events if isinstance(e, Speaker) and e.audible and e.t < until]
    return len(breaks) + max(0, len(starts) - 1 - len(breaks))


def measure(kind: str, args: argparse.Namespace, clips: dict[str, np.ndarray], reply_wav: Path) -> dict:
    sets = ["policy.responder=wav", f"policy.reply_wav={reply_wav}", f"policy.max_reply_s={args.reply_s + 5}"]
    total = int((args.reply_s + 6) * SAMPLE_RATE)
    q = clips["question"]
    user = np.zeros(total, dtype=np.float32)
    user[SAMPLE_RATE // 2 : SAMPLE_RATE // 2 + q.size] = q
    started = time.perf_counter()
    room, events = session(kind, user, sets, args)
    wall = time.perf_counter() - started
    speak_t = [e.t for e in events if isinstance(e, Speaker) and e.audible]
    if not speak_t:
        raise SystemExit(f"{kind}: the model never answered the question")
    breaks = [e.t for e in events if isinstance(e, Control) and e.token is Kind.BREAK]
    first = speak_t[0]
    lo, hi = int((first + 2.0) * SAMPLE_RATE), int((first + args.reply_s - 1) * SAMPLE_RATE)
    mic = room.echo[lo:hi] + room.noise[lo:hi]
    echo = bool(np.any(room.echo))  # ERLE means nothing without an echo (headset)
    reply = {"false_barge_ins": false_barge_ins(events), "breaks": len(breaks),
             "erle_db": round(erle_db(mic, room.cleaned[lo:hi]), 1) if echo else None,
             "erle_first_2s_db": round(erle_db(room.echo[lo - 2 * SAMPLE_RATE : lo],
                                               room.cleaned[lo - 2 * SAMPLE_RATE : lo]), 1) if echo else None,
             "session_ms_per_s_audio": round(wall * 1000 / (total / SAMPLE_RATE), 1),
             **(room.aec.figures() if hasattr(room.aec, "figures") else {})}
    # The same, with the user cutting in `--cut-s` into the reply.
    stop = clips["stop"]
    cut = int((first + args.cut_s) * SAMPLE_RATE)
    user2 = user.copy()
    user2[cut : cut + stop.size] += stop
    room2, events2 = session(kind, user2, sets, args)
    after = [e for e in events2 if e.t >= cut / SAMPLE_RATE]
    silent = next((e.t for e in after if isinstance(e, Speaker) and not e.audible), None)
    broke = next((e.t for e in after if isinstance(e, Control) and e.token is Kind.BREAK), None)
    seg = slice(cut, cut + stop.size)
    heard = np.mean((stop + room2.echo[seg]) ** 2)
    near_change = 10 * np.log10(np.mean(room2.cleaned[seg] ** 2) / max(float(heard), 1e-20))
    barge = {"yielded": silent is not None, "break": broke is not None,
             "stop_latency_s": round(silent - cut / SAMPLE_RATE, 3) if silent is not None else None,
             "near_end_change_db": round(float(near_change), 1),
             "false_barge_ins_before_cut": false_barge_ins(events2, until=cut / SAMPLE_RATE),
             **(room2.aec.figures() if hasattr(room2.aec, "figures") else {})}
    return {"reply": reply, "barge_in": barge}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--echo-db", type=float, default=-10.0, help="echo level relative to the speaker (speakers setup)")
    p.add_argument("--setups", default="headset,speakers", help="headset (no echo path), speakers (--echo-db)")
    p.add_argument("--delay-ms", type=float, default=100.0, help="speaker-to-mic delay (device buffering)")
    p.add_argument("--reply-s", type=float, default=60.0, help="length of the model's reply")
    p.add_argument("--cut-s", type=float, default=1.5, help="when the user cuts in, seconds into the reply")
    p.add_argument("--kinds", default="auto,none,webrtc-bare,speex,speex-bare")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        reply = np.concatenate([sf.read(speak(cache, REPLY_TEXT, voice="en-us+m3"), dtype="float32")[0]] * 4)
        reply = reply[: int(args.reply_s * SAMPLE_RATE)]
        reply_wav = cache / "reply.wav"
        sf.write(reply_wav, reply, SAMPLE_RATE)
        clips = {name: sf.read(speak(cache, text, gain_db=-6.0), dtype="float32")[0]
                 for name, text in (("question", "What will the weather be like this week?"),
                                    ("stop", "Hold on a second, let me interrupt you right there."))}
        results: dict[str, dict] = {}
        for setup in args.setups.split(","):
            if setup not in ("headset", "speakers"):
                raise SystemExit(f"--setups: unknown setup {setup!r} (headset, speakers)")
            run = argparse.Namespace(**{**vars(args), "echo_db": -np.inf if setup == "headset" else args.echo_db})
            results[setup] = {kind: measure(kind, run, clips, reply_wav) for kind in args.kinds.split(",")}
    cfg = load_config()
    print(json.dumps({"echo_db": {"headset": None, "speakers": args.echo_db}, "delay_ms": args.delay_ms,
                      "reply_s": args.reply_s, "cut_s": args.cut_s, "backbone": cfg.backbone,
                      "live": dataclasses.asdict(cfg.live), "results": results}, indent=1))


if __name__ == "__main__":
    main()
