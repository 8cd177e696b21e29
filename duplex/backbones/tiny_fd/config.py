"""The `tiny_fd:` config section: which checkpoint, how much context, how many threads.

Kept free of torch (like the covo section) so `--print-config` and config errors stay instant.
"""

from __future__ import annotations

from dataclasses import dataclass

from duplex.backbones.registry import BackboneEntry, register
from duplex.fields import opt

# tiny_fd.cue_checkpoint and policy.cue_checkpoint: one key, two sections
CUE_CHECKPOINT_HELP = ("with cues: the cue network, a `python -m duplex.cue.train --out` file (relative to the "
                       "config file); '' = the shipped checkpoints/cue/cue.pt")


@dataclass(frozen=True)
class TinyFdConfig:
    checkpoint: str = opt("", "checkpoint folder (relative to the config file); '' = the shipped checkpoints/tiny-fd")
    context_steps: int = opt(48, "KV-cache budget in 160 ms steps, then a refill (at most the model's positions)",
                             lo=8, hi=102)
    window_steps: int = opt(16, "steps of recent history kept when the context is refilled", lo=1, hi=100)
    shift_threshold: float = opt(0.5, "probability of SHIFT needed to take the turn (higher: fewer takeovers, later)",
                                 lo=0.01, hi=0.99)
    break_threshold: float = opt(0.5, "probability of BREAK needed to stop for good (below it the reply only holds)",
                                 lo=0.01, hi=0.99)
    turn_silence_s: float = opt(0.0, "no turn before the user has been silent this long (VAD; 0 = the network's own "
                                "timing): fewer starts in long thinking pauses, later answers", lo=0.0, hi=5.0)
    cues: bool = opt(True, "the cue model (duplex/cue) hears the user's last words: a backchannel lets the held reply "
                     "go on at once, a stop word ends it, a turn not ending on a question waits unfinished_silence_s "
                     "(docs/cue.md; false: the network's own timing, which starts in most thinking pauses)")
    cue_words: bool = opt(True, "with cues: a recogniser (pocketsphinx, a process of its own per conversation, "
                          "about 60 MB) hears the words: a question's or request's opening is answered after 0.32 s "
                          "whatever the cue network says, a statement's opening waits unfinished_silence_s unless the "
                          "network is sure of a question, a held piece heard as a backchannel lets the reply go on at "
                          "once (docs/cue.md; false: most questions wait unfinished_silence_s, "
                          "examples/tiny-fd-cues.yaml)")
    cue_checkpoint: str = opt("", CUE_CHECKPOINT_HELP)
    unfinished_silence_s: float = opt(1.6, "with cues: silence needed before a turn that ended on a statement or a "
                                      "comma (longer than a thinking pause)", lo=0.16, hi=10.0)
    vad: str = opt("webrtc", "the barge-in rules' voice detector: webrtc (tiny, no extra) or silero (loud rooms: "
                   "WebRTC's hears white noise at -25 dBFS as speech; needs the 'silero' extra)",
                   choices=("webrtc", "silero"))
    threads: int = opt(1, "torch CPU threads for inference (0 = leave torch's default)", lo=0, hi=256)


register(BackboneEntry("tiny-fd", "built-in full-duplex model", "duplex.backbones.tiny_fd.loader:load_tiny_fd",
                       ("tiny_fd",)))
