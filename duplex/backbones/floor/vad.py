"""The VAD floor: turn-taking rules over a voice activity detector, one decision per 160 ms step.

Silence is the room's: a chunk the detector does not call speech but that stands above the
room's noise floor (audio_io.levels.NoiseFloor: a word's soft onset, a breath) is counted neither as
speech nor as silence, so it cannot end the user's turn or a held reply's wait; only the chunk
right after speech, which straddles the word's end, is silence when the detector says so.

Listening: the user's turn is over after `min_silence_s` of silence following at least
`min_speech_s` of speech, or after `unfinished_silence_s` when the last fragment's pitch does not
fall (a speaker pausing mid-thought holds or raises it; see pitch.py). With the words alone
(`policy.cue_words` without the cue model, examples/policy-words-only.yaml; duplex/cue/words.py,
pocketsphinx in a process of its own, no torch) an utterance whose opening asks is answered after
`min_silence_s`, one that opens a statement or a clause waits `unfinished_silence_s`, and the pitch
decides when the words were misheard; after a barge-in, only a question's opening is answered at
`min_silence_s` (a hesitant "hold on, ... no, ..." has gaps longer than it).

Speaking: user speech over the reply first *holds* it (the model goes quiet at once). Each piece
of speech over the held reply is heard out (a pair of backchannels, "mm-hmm ... yeah", is as
common as a hesitant "wait, ... no, ..."), and the hold ends one of these ways:
- the user goes quiet for `resume_after_s` (longer than a hesitation's gaps): it was a
  backchannel, the reply resumes;
- a piece outlasts `backchannel_max_s`: a barge-in (BREAK); "wait, ... no, ... that is not it"
  breaks on its third piece, and the reply is silent from the first;
- a piece was a "shh" (no voice, a sustained hiss: pitch.py's `hushed`): a barge-in as soon as
  it is over, and no turn to answer (it asked for quiet);
- a piece had no voice at all (a cough, a knock: every word has a vowel or a hum): the reply goes
  on at once.
The rules do not act on words over the reply: without the cue network the recogniser heard "wait"
and "no" as "yep" and "yeah" often enough to resume replies inside held-out barge-ins (round 15),
so "stop." followed by silence resumes the reply like a backchannel, after `resume_after_s`; the
cue model (`policy.cues`) hears stop words and backchannels.
While the model speaks, the microphone must be louder than the model's own recent output plus
`echo_gate_db` to count as the user, so a speaker leaking into the microphone does not hold it.

With `policy.cues` the cue model (duplex/cue) hears the words: it replaces the pitch cue (a turn
that did not end on a question waits `unfinished_silence_s`), and at the first silence
after a held piece a backchannel resumes the reply at once and a stop word ends it; a second
piece is heard out and judged the same way, and resumes the reply only if the first sounded like a
backchannel too ("[cough] ... mm-hmm"); anything else it hears there is the barge-in it was.
After a barge-in, the answer to the interruption is not held back by the unfinished silence (the
user has just asked for the floor) unless the words so far were only a short piece, a stop word or
what sounds like "yeah" ("hold on, ... no, ...": the rest is still to come), as tiny-fd's rules do.
With the cue model, `policy.cue_words` lets recognised words raise "it asks" and "backchannel" and
say "it states" (duplex/cue/words.py).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from audio_io.format import STEP_SECONDS, rms, steps_covering
from audio_io.levels import NoiseFloor
from audio_io.vad import Vad
from duplex.backbones.floor import Move
from duplex.backbones.floor.pitch import ending_falls, hushed, voiced_share
from duplex.config import PolicyConfig
from duplex.cue.text import ASKS, BACKCHANNEL, STOP
from duplex.cue.thresholds import (
    ASKS_P,
    LIKELY_WAIT_STEPS,
    NOISE_VOICED_SHARE,
    STOPPED_ONLY_P,
    HeldPiece,
)

if TYPE_CHECKING:
    from duplex.cue.runtime import CueModel, CueWindow
    from duplex.cue.words import OpeningWords

PIECE_GAP_STEPS = 2  # silence (0.32 s) that separates two pieces of speech; shorter gaps are inside a word


class Floor(enum.Enum):
    LISTEN = "listen"
    REPLY = "reply"
    PAUSED = "paused"  # the reply is held: the user overlaps it, backchannel or barge-in not yet known


@dataclass(slots=True)
class Utterance:
    """The user's current utterance: its audio and how much of it was speech."""

    chunks: list[np.ndarray] = field(default_factory=list)
    speech: int = 0  # steps of speech so far
    piece_speech: int = 0  # ... in the latest piece
    silence: int = 0  # steps of silence (only the room: NoiseFloor) since the last speech
    after: int = 0  # steps of any kind since the last speech
    pieces: int = 0  # runs of speech separated by PIECE_GAP_STEPS or more of silence
    first_backchannel: float = 0.0  # the cue model's P(backchannel) for the first piece
    piece_start: int = 0  # the chunk where the latest piece began

    def add(self, chunk: np.ndarray, speech: bool, room: bool = True) -> None:
        """`room`: a chunk that is not speech holds only the room's noise (else a sound the voice
        detector does not call speech, such as a word's soft onset: not counted as silence)."""
        if speech or self.chunks:
            self.chunks.append(chunk.copy())
        if speech:
            if self.speech == 0 or self.silence >= PIECE_GAP_STEPS:
                self.pieces += 1
                self.piece_start = len(self.chunks) - 1
                self.piece_speech = 0
            self.speech += 1
            self.piece_speech += 1
            self.silence = self.after = 0
        elif self.chunks:
            self.after += 1
            self.silence += room

    def audio(self) -> np.ndarray:
        """The utterance without what followed its last speech."""
        keep = len(self.chunks) - self.after
        return np.concatenate(self.chunks[: max(keep, 1)]) if self.chunks else np.zeros(0, np.float32)


class VadFloor:
    """The floor decided by VAD, silence lengths, overlap length and the pitch of the last fragment."""

    def __init__(self, cfg: PolicyConfig, vad: Vad, cues: CueModel | None = None,
                 words: OpeningWords | None = None) -> None:
        self.cfg = cfg
        self.cues: CueWindow | None = None
        if cues is not None:
            from duplex.cue.runtime import CueWindow  # (torch)

            self.cues = CueWindow(cues)
        self.words = words  # the recogniser without the cue network (policy.cue_words alone)
        self.vad = vad
        self.min_speech = max(1, steps_covering(cfg.min_speech_s))
        self.min_silence = steps_covering(cfg.min_silence_s)
        self.unfinished_silence = max(self.min_silence, steps_covering(cfg.unfinished_silence_s))
        self.barge_in = steps_covering(cfg.barge_in_s)
        self.backchannel_max = steps_covering(cfg.backchannel_max_s)
        self.resume_after = steps_covering(cfg.resume_after_s)
        self._min_level = 10 ** (cfg.min_level_db / 20)
        self.noise = NoiseFloor(least=self._min_level)
        self._recent_output: deque[float] = deque(maxlen=6)  # model output RMS, last ~1 s (live paths delay the echo)
        self.reset()

    @property
    def speaking(self) -> bool:
        return self.state is not Floor.LISTEN

    def reset(self) -> None:
        self.state = Floor.LISTEN
        self.utterance = Utterance()
        self._overlap = Utterance()
        self._turn = np.zeros(0, np.float32)
        self._wait: int | None = None  # silence steps this utterance needs before the turn is taken
        self._interrupted = False  # the utterance began as a barge-in over the reply
        self.vad.reset()
        self.noise.reset()
        self._recent_output.clear()
        if self.cues is not None:
            self.cues.reset()
        if self.words is not None:
            self.words.reset()

    def decide(self, chunk: np.ndarray, *, offer: bool = False) -> Move:
        level = rms(chunk)
        self.noise.observe(level)
        speech = self._is_user_speech(chunk, level)
        room = not speech and self.noise.silent(level)
        if self.cues is not None:
            self.cues.push(chunk)
        if self.words is not None:
            self.words.push(chunk)
        if self.state is Floor.LISTEN:
            if offer and not speech and not self.utterance.chunks:
                self._start_reply()
                return Move.OFFER
            return self._listen(chunk, speech, room)
        return self._overlapped(chunk, speech, room)

    def turn_audio(self) -> np.ndarray:
        return self._turn

    def played(self, level: float, audio: np.ndarray | None = None) -> None:
        self._recent_output.append(level)

    def ended(self) -> None:
        self.state = Floor.LISTEN

    def cut(self) -> None:
        if self.state is not Floor.LISTEN:
            self.state = Floor.LISTEN
            self._overlap = Utterance()

    # ---- per state --------------------------------------------------------------------------

    def _listen(self, chunk: np.ndarray, speech: bool, room: bool) -> Move:
        u = self.utterance
        # The chunk right after speech is the word's own tail when the detector calls it silence (a
        # 160 ms chunk straddles the word's end): silence, or the answer would come a step late.
        tail = bool(u.chunks) and u.after == 0
        u.add(chunk, speech, room or tail)
        if speech:
            self._wait = None
        if u.speech >= self.min_speech and u.silence >= self.min_silence:
            if self._wait is None:
                self._wait = self._silence_needed(u)
            if u.silence >= self._wait:
                self._turn = u.audio()
                self._start_reply()
                return Move.TAKE
        elif u.chunks and u.silence >= self.min_silence:
            self.utterance = Utterance()  # a blip too short to answer
        return Move.WAIT

    def _silence_needed(self, u: Utterance) -> int:
        """min_silence after a falling (or unreadable) ending; longer after a level or rising one.
        With the cue model: min_silence after a question or an interruption that was more than a
        short piece, longer after anything else."""
        if self.unfinished_silence <= self.min_silence:
            return self.min_silence
        if self.words is not None:
            if self.words.verdict():  # a question's or a request's opening
                return self.min_silence
            if self._interrupted or self.words.stated():  # a statement's or a clause's: the user may go on
                return self.unfinished_silence
            # misheard: the pitch cue decides, below
        if self.cues is not None:
            p = self.cues.probs()
            if self._interrupted:
                only_stopped = p[STOP] + p[BACKCHANNEL] >= STOPPED_ONLY_P
                return self.unfinished_silence if only_stopped else self.min_silence
            return self.min_silence if p[ASKS] >= ASKS_P else self.unfinished_silence
        return self.unfinished_silence if ending_falls(u.audio()) is False else self.min_silence

    def _overlapped(self, chunk: np.ndarray, speech: bool, room: bool) -> Move:
        """REPLY or PAUSED: watch for the user while speaking."""
        o = self._overlap
        new_piece = speech and o.speech > 0 and o.silence >= PIECE_GAP_STEPS
        o.add(chunk, speech, room)
        if not o.chunks:
            return Move.SPEAK
        if self.state is Floor.PAUSED:
            # With cues, a second piece is heard out and judged (the reply is silent meanwhile).
            # Without, every piece is (a pair of backchannels is as common as "wait, ... no"); a
            # piece longer than any backchannel is the barge-in, and the reply stays silent until
            # the user has been quiet for resume_after_s, longer than a hesitation's gaps.
            if self.cues is None:
                if o.piece_speech > self.backchannel_max:
                    return self._barge_in()
            elif o.speech > self.backchannel_max or (new_piece and o.pieces > 2):
                return self._barge_in()
            piece = np.concatenate(o.chunks[o.piece_start:]) if o.silence == 1 else None  # a piece is over
            if piece is not None and hushed(piece, NOISE_VOICED_SHARE):
                return self._barge_in(asked_quiet=True)
            if self.cues is None and piece is not None and voiced_share(piece) < NOISE_VOICED_SHARE:
                o.silence = self.resume_after  # no voice in it (a cough, a knock): the reply goes on at once
            if self.cues is not None and o.pieces <= 2 and o.silence == 1:  # a piece is over: what was it?
                verdict, backchannel = self.cues.piece_verdict((len(o.chunks) - o.piece_start + 1) * STEP_SECONDS,
                                                               None if o.pieces == 1 else o.first_backchannel)
                if verdict is HeldPiece.STOP or (verdict is None and o.pieces == 2):  # "wait ... no": as without cues
                    return self._barge_in()
                if verdict is HeldPiece.BACKCHANNEL:
                    o.silence = self.resume_after
                elif verdict is HeldPiece.LIKELY_BACKCHANNEL:  # after one more silent step
                    o.silence = max(o.silence, self.resume_after - LIKELY_WAIT_STEPS)
                o.first_backchannel = backchannel
            if o.silence >= self.resume_after:
                self._overlap = Utterance()  # a backchannel: carry on
                self.state = Floor.REPLY
                return Move.SPEAK
            return Move.HOLD
        if o.speech < self.barge_in:
            if not speech:
                self._overlap = Utterance()  # a blip
            return Move.SPEAK
        if o.speech > self.backchannel_max:
            return self._barge_in()
        self.state = Floor.PAUSED
        return Move.HOLD

    def _start_reply(self) -> None:
        self.utterance = Utterance()
        self._overlap = Utterance()
        self._wait = None
        self._interrupted = False
        self.state = Floor.REPLY

    def _barge_in(self, asked_quiet: bool = False) -> Move:
        """BREAK. What the user said over the model starts their turn, unless it was a "shh": that
        asks for quiet, not for an answer."""
        self.utterance = Utterance() if asked_quiet else self._overlap
        self._overlap = Utterance()
        self._wait = None
        self._interrupted = True
        self.state = Floor.LISTEN
        return Move.BREAK

    def _is_user_speech(self, chunk: np.ndarray, level: float) -> bool:
        speech = level > self._min_level and self.vad.speech_prob(chunk) >= self.cfg.speech_threshold
        if speech and self.state is not Floor.LISTEN:
            reference = max(self._recent_output, default=0.0)
            speech = level > reference * 10 ** (self.cfg.echo_gate_db / 20)
        return speech
