"""The grammar's barge-in rules: what tiny-fd may do once the user has talked over its reply.

The network hears a hesitant interruption ("wait, ... no, ... that is not what I asked") as pieces
with silences between them, and a silence after a short piece sounds just like the end of a
backchannel: on voices it has not met, it resumes the reply (or takes a new turn) in the user's
inner pauses. That is the one thing a user never forgives, so these rules do not leave it to the
network. They read the microphone only when the speaker is quiet (the reply held, or the model
listening after a BREAK), so the model's own voice cannot pass for the user, but one:

- user speech over the playing reply, louder than any echo could be (within 6 dB of what the
  speaker plays, or louder), for `OVER_REPLY_STEPS` (0.64 s) holds the reply if the network has not
  already: a network can take a voice it has never met for its own echo and talk on;
- a held reply resumes only after `RESUME_QUIET_STEPS` of user silence (0.8 s), longer than the
  gaps of a hesitant barge-in (0.2-0.6 s) and the pauses inside a sentence; silence is the room's
  (round 16): a chunk over the noise floor the detector does not call speech (the soft onset of the
  next piece) is not counted, unless it follows speech directly (a word's tail);
- a second piece of user speech while the reply is held is a barge-in (BREAK), as is user speech
  over the held reply for longer than any backchannel (`HELD_SPEECH_STEPS`);
- after a BREAK, the next turn waits for `AFTER_BREAK_QUIET_STEPS` of silence (0.48 s), so the
  reply to an interruption starts when it is over, not at its first comma;
- a held piece that was a "shh" (no voice, a sustained hiss: floor/pitch.py's `hushed`) ends the
  reply at its first silence, and no turn is taken until the user speaks again (it asked for quiet);
- optionally (`tiny_fd.turn_silence_s`), no turn before the user has been silent that long;
- (round 17) a turn the network never claims (under white noise at -30 dBFS) is taken
  `UNCLAIMED_EXTRA_STEPS` after the longest wait above, if the user spoke for longer than a cough;
- (round 23) no turn at a step whose chunk, silent to the detector, ends in the user's voice.

With the cue model (`tiny_fd.cues`: the words and the melody of the user's last utterance), more,
which the network's sense of timing cannot give: a silence sounds the same after "mm-hmm" as after
"wait", and after a question as after the first of three sentences:

- a held reply goes on as soon as a short piece is over when the piece was a backchannel (or a
  cough), instead of after 0.8 s; a second piece is judged too, when it is over, and goes on only
  if the first sounded like a backchannel as well ("[cough] ... mm-hmm"), else it is a barge-in;
- a piece heard as a stop word ends the reply at once;
- (round 8) a piece is heard out before anything ends the reply: a BREAK the network proposes over
  the reply or over a piece still going on is a hold until the piece is over and judged (the
  speaker is silent either way), and it ends the reply then unless the piece was a backchannel
  or a noise; speech over the held reply ends it after `HEARD_OUT_STEPS` (1.44 s since round 22:
  a drawn-out "uh-huh" is 0.9-1.1 s) instead of 0.96 s; a piece is judged once the detector has
  heard it and it is over (the echo's margin can hide a voice's first step), or, never heard,
  once the microphone is quiet;
- a turn that did not end on a question (a statement, a clause ended on a comma) is taken only after
  `unfinished_quiet_steps` of silence (1.6 s), or (round 24) twice the pauses the user left between
  their sentences in the turn (pace.py): no start in the user's pauses, a later answer to a statement;
- a clear question is answered after 0.32 s of silence even when the network would wait longer;
- after a BREAK, words that were only a short piece (a stop word, or what sounds like "yeah") are
  not the end of the interruption ("hold on, ... no, ..."): the turn waits the unfinished silence,
  or for the rest of it; (round 23) nor is a reply held within `FALSE_START_STEPS` (0.32 s) of its
  start interrupted: it was a false start, and the turn the user went on with is timed as any.

With `tiny_fd.cue_words` a recogniser (duplex/cue/words.py) can raise two of those verdicts past
their bars: "it asks" (a question's opening words) and "backchannel" (a held piece heard as one).
A backchannel only the words named goes on a silent step later (round 16): the detector can lose a step.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from audio_io.format import STEP_SAMPLES, STEP_SECONDS
from duplex.backbones.floor.pitch import hushed
from duplex.backbones.tiny_fd import vocab as V
from duplex.backbones.tiny_fd.pace import TurnPace
from duplex.backbones.tiny_fd.user_voice import UserVoice
from duplex.cue.text import ASKS, BACKCHANNEL, STOP
from duplex.cue.thresholds import (
    ASKED_P,
    ASKS_P,
    LIKELY_WAIT_STEPS,
    NOISE_VOICED_SHARE,
    STOPPED_ONLY_P,
    HeldPiece,
)

if TYPE_CHECKING:
    from duplex.cue.runtime import CueModel

RESUME_QUIET_STEPS = 5  # a held reply resumes after this much user silence (0.8 s)
PIECE_GAP_STEPS = 2  # silence (0.32 s) that separates two pieces of speech
PIECE_ONSET_STEPS = 2  # a held piece began up to this much before the hold (the network holds late)
# user speech over the playing reply this long (0.64 s: what tiny-fd's training calls a barge-in, the
# oracle's break_lag) holds it, if the network has not; shorter pieces (most backchannels) are its call
OVER_REPLY_STEPS = 4
HELD_SPEECH_STEPS = 6  # user speech over a held reply this long (0.96 s) is a barge-in
# ... with cues, 1.44 s: a drawn-out "uh-huh" (0.9-1.1 s: eight steps if late in one) is heard out and judged
HEARD_OUT_STEPS = 9
ASKED_QUIET_STEPS = 2  # with cues: a clear question is answered after this much silence (0.32 s)
AFTER_BREAK_QUIET_STEPS = 3  # silence (0.48 s) before the turn after a BREAK
AFTER_BREAK_LIMIT_STEPS = 31  # ... a rule that gives way after 5 s (a detector fooled by noise)
UNCLAIMED_EXTRA_STEPS = 2  # a turn the network never claims: taken this long (0.32 s) after the rules' longest wait
UNCLAIMED_SPEECH_STEPS = 3  # ... once the user has spoken this long (0.48 s: more than a cough or a click)
FALSE_START_STEPS = 2  # a reply held this soon (0.32 s) was a false start: nobody reacts to one that fast


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """What a deployment chooses of the rules (tiny_fd config): shared by every conversation."""

    turn_quiet_steps: int = 0  # tiny_fd.turn_silence_s
    cues: CueModel | None = None  # tiny_fd.cues: the loaded cue model, or None for the rules without it
    unfinished_quiet_steps: int = 10  # tiny_fd.unfinished_silence_s
    vad: str = "webrtc"  # tiny_fd.vad: the user voice's detector


NO_CUES = RuleSettings()  # the rules without the cue model: tests and benchmarks of the network alone


class BargeInRules:
    """The rules above, as a filter on the network's choice of the step's first token."""

    def __init__(self, settings: RuleSettings = NO_CUES) -> None:
        from duplex.cue.runtime import CueWindow

        self.voice = UserVoice(settings.vad)
        self.turn_quiet_steps = settings.turn_quiet_steps
        self.unfinished_quiet_steps = settings.unfinished_quiet_steps
        self.unclaimed_quiet_steps = max(self.unfinished_quiet_steps, self.turn_quiet_steps) + UNCLAIMED_EXTRA_STEPS
        self.cues = CueWindow(settings.cues) if settings.cues is not None else None
        self.held_speech_steps = HELD_SPEECH_STEPS if self.cues is None else HEARD_OUT_STEPS
        # without the cue model's window, the last chunks a held piece can span: was it a "shh"?
        self.recent: deque[np.ndarray] = deque(maxlen=HELD_SPEECH_STEPS + PIECE_ONSET_STEPS + 2)
        self.reset()

    def reset(self) -> None:
        self.voice.reset()
        if self.cues is not None:
            self.cues.reset()
        self.recent.clear()
        self.pushed = False  # `prepare` has put this step's chunk in the cue window already
        self.asked_quiet = False  # the reply ended for a "shh": no turn until the user speaks again
        self.judged_pieces = 0  # held pieces the cue model has had its say on
        self.first_bc = 0.0  # its P(backchannel) for the first held piece
        self.likely = False  # the latest held piece was likely a backchannel: goes on if the silence lasts
        self.verdict: float | None = None  # its P(asks) for the utterance before this silence
        self.only_stopped: bool | None = None  # ... after a BREAK: were those words only a short piece?
        self.pace = TurnPace()  # the user's pauses between the sentences of their turn
        self.spoke = False  # the user has spoken since the model last took the turn
        self.spoken = 0  # ... steps of it
        self.since_break = False  # the model's last BREAK has not been answered yet
        self.replied = 0  # steps the speaker has played since the model last listened (not counted while held)
        self.holding = False  # the reply is held (a silent beat) for user speech
        self.quiet = 0  # steps of user silence, counted while the speaker is quiet
        self.speech = 0  # steps of user speech over the held reply
        self.pieces = 0  # runs of user speech while held
        self.piece_steps = 0  # steps since the latest of them began
        self.voiced = 0  # steps of the hold in which the detector heard the user
        self.judged_voiced = 0  # ... how many of them the latest verdict covered
        self.break_wanted = False  # the network asked to BREAK over this piece: unless it is judged a backchannel
        self.after_break: int | None = None  # steps since the model's BREAK, until the next turn
        self.wanted = 0  # consecutive steps the network has wanted the turn
        self.over = 0  # consecutive steps of user speech over the playing reply
        self.deferred = False  # the network wanted to resume or take the turn; a rule said "not yet"
        self.fired: dict[str, int] = dict.fromkeys(
            ("resume_held", "second_piece", "held_speech", "user_over_reply", "turn_after_break", "turn_silence",
             "backchannel", "likely_backchannel", "stop_word", "question_answered", "unfinished_turn",
             "stop_word_pending", "break_deferred", "break_held", "break_heard_out", "hushed", "hushed_quiet",
             "missed_sound", "turn_unclaimed", "voice_returning"), 0)

    def prepare(self, chunk: np.ndarray, speaking: bool) -> None:
        """Before the step, on the thread that owns this conversation (a server lane's own, not the
        model thread that batches every lane's step): the chunk joins the cue window, and a verdict
        `filter` may ask for at this step is worked out now (the cue network on the window, the
        recogniser catching up), so that the shared thread finds it ready instead of making every
        lane wait for one. The verdicts are the ones asked lazily, from the same window: only where
        they are computed moves. `speaking`: the floor is the model's (its reply, maybe held)."""
        if self.cues is None:
            return
        self.cues.push(chunk)
        self.pushed = True
        if self._may_judge(speaking):
            self.cues.prefetch()

    def _may_judge(self, speaking: bool) -> bool:
        """Whether this step may ask the cue model for a verdict (from the state before it): a held
        piece, an utterance or an interruption is judged here if this chunk turns out silent. A wrong
        guess costs a verdict worked out for nothing, or one worked out in `filter` after all."""
        if speaking:
            return (self.holding and self.pieces <= 2 and self.speech < self.held_speech_steps
                    and ((self.voiced > self.judged_voiced and self.quiet == 0)
                         or (self.voiced == 0 and self.judged_pieces < self.pieces)))
        if self.after_break is None:  # a clear question is answered at its second silent step
            return self.spoke and not self.deferred and self.verdict is None and self.quiet + 1 == ASKED_QUIET_STEPS
        return self.only_stopped is None and self.quiet + 1 == AFTER_BREAK_QUIET_STEPS  # was it only a piece?

    def filter(self, first: int, decision: int, chunk: np.ndarray, played: float) -> int:
        """The network's `first` token, or what the rules put in its place."""
        level = self.voice.observe(chunk, played)
        if self.cues is not None and not self.pushed:
            self.cues.push(chunk)
        elif self.cues is None:
            self.recent.append(np.array(chunk, dtype=np.float32))
        self.pushed = False
        if decision == V.SPEAK_DECISION:
            self.after_break = None
            first = self._speaking(first, chunk, level)
        elif decision == V.LISTEN_DECISION:
            self.holding = False
            first = self._listening(first, chunk, level)
        else:
            self.holding = False
        if first == V.BREAK:  # after a false start, the turn the user went on with is timed as any turn
            self.after_break, self.quiet, self.deferred, self.verdict = 0, 0, False, None
            self.since_break = self.replied > FALSE_START_STEPS  # (with cues a BREAK ends a hold)
        return first

    def _speaking(self, first: int, chunk: np.ndarray, level: float) -> int:
        if self.holding:
            if self.voice.speaking(chunk, level):
                self.deferred = False
                if self.speech == 0 or self.quiet >= PIECE_GAP_STEPS:
                    self.pieces += 1
                    self.piece_steps = 0
                self.speech += 1
                self.voiced += 1
                self.quiet = 0
                self.likely = False  # it was not over: judged again at its next silence
            elif self.quiet == 0 or self.voice.silent(level):
                self.quiet += 1  # the room's silence, or the chunk right after speech (a word's tail)
            else:
                self.fired["missed_sound"] += 1  # a sound the detector missed (a soft onset): not silence
            self.piece_steps += 1
            if first == V.BREAK:
                if not self._unjudged() and not self.likely:
                    return self._released(V.BREAK)
                first = self._fire("break_deferred", V.THINK)  # heard out first: it may be "mm-hmm"
                self.break_wanted = True
            if self._hushed():
                self.asked_quiet = True  # ... and no turn to answer it until the user speaks again
                return self._fire("hushed", self._released(V.BREAK))
            heard = self._heard_piece(level)
            if heard is HeldPiece.STOP:
                return self._fire("stop_word", self._released(V.BREAK))
            if heard is HeldPiece.BACKCHANNEL:
                return self._fire("backchannel", self._released(V.CONT))
            self.likely = self.likely or heard is HeldPiece.LIKELY_BACKCHANNEL
            if self.likely:  # goes on once the silence has outlasted a dropout of the detector
                if self.quiet > LIKELY_WAIT_STEPS:
                    return self._fire("likely_backchannel", self._released(V.CONT))
                return V.THINK
            if heard is None and self.break_wanted and self.judged:  # heard out, not a backchannel
                return self._fire("break_heard_out", self._released(V.BREAK))
            # With cues a second piece is judged once over: "[cough] ... mm-hmm" goes on; else (no verdict too) a BREAK.
            if self.pieces >= 2 and (self.cues is None or self.pieces > 2 or self.judged):
                return self._fire("second_piece", self._released(V.BREAK))
            if self.speech >= self.held_speech_steps:
                return self._fire("held_speech", self._released(V.BREAK))
            if first == V.CONT and self.quiet < RESUME_QUIET_STEPS:
                self.deferred = True
                return self._fire("resume_held", V.THINK)
            if first == V.CONT or (self.deferred and first == V.THINK and self.quiet >= RESUME_QUIET_STEPS):
                return self._released(V.CONT)
            return first
        self.quiet = 0  # the speaker plays: silence is counted again from the hold or the reply's end
        self.replied += 1
        # The one rule that reads the microphone while the speaker plays: a user clearly louder than
        # any echo of it (within 6 dB of what it plays, or louder) for OVER_REPLY_STEPS holds the reply,
        # whatever the network made of the sound (it can take a voice it has not met for its own).
        heard = self.voice.speaking(chunk, level)
        was_over = self.over
        self.over = self.over + 1 if first == V.CONT and heard else 0
        if self.over >= OVER_REPLY_STEPS:
            first = self._fire("user_over_reply", V.THINK)
        if first == V.BREAK and self.cues is not None:  # silent all the same, and judged before it ends the reply
            first = self._fire("break_held", V.THINK)
            self.break_wanted = True
        elif first == V.THINK:
            self.break_wanted = False
        if first == V.THINK:
            self.over = 0
            self.holding, self.quiet, self.speech, self.pieces = True, 0, 1, 1  # held for a sound it heard
            self.piece_steps = 1
            self.voiced = int(heard or was_over > 0)  # the detector heard it too (over the echo margin)
            self.judged_pieces, self.judged_voiced, self.first_bc = 0, 0, 0.0
        return first

    def _heard_piece(self, level: float) -> HeldPiece | None:
        """At the first silence after a held piece: the cue model's verdict on it
        (`held_piece_verdict`), for each of the first two pieces. A piece is judged once the
        detector has heard it (for a step or two after the hold the echo's margin can hide a voice
        as loud as the reply, and a "silence" then is the piece's start, not its end), and again if
        it went on after a verdict that left it undecided."""
        if self.cues is None or self.pieces > 2 or self.speech >= self.held_speech_steps:
            return None
        if self.voiced > self.judged_voiced:  # heard: judged at its first silence
            if self.quiet != 1:
                return None
        elif self.voiced > 0 or self.judged_pieces >= self.pieces or self.quiet < 1 or not self.voice.silent(level):
            return None  # never heard (a cough, a "yeah" under the echo margin): judged once the microphone is quiet
        self.judged_pieces, self.judged_voiced = self.pieces, self.voiced
        verdict, backchannel = self.cues.piece_verdict((self.piece_steps + PIECE_ONSET_STEPS) * STEP_SECONDS,
                                                       None if self.pieces == 1 else self.first_bc)
        if self.pieces == 1:
            self.first_bc = backchannel
        return verdict

    def _hushed(self) -> bool:
        """At the first silence after a held piece: was it a "shh" (no voice, a sustained hiss)? Taken
        for a cough (no voice) or left to the network, it was resumed over."""
        if self.pieces > 2 or self.quiet != 1 or self.speech >= self.held_speech_steps:
            return False
        steps = self.piece_steps + PIECE_ONSET_STEPS
        piece = (self.cues.audio[-steps * STEP_SAMPLES:] if self.cues is not None
                 else np.concatenate(list(self.recent)[-steps:]))
        return hushed(piece, NOISE_VOICED_SHARE)

    def _unjudged(self) -> bool:
        """With cues: a held piece no verdict has covered yet: speech the detector heard (still going
        on, or over and not yet judged), or, since round 21, a sound it never heard that the network
        held for (an "uh-huh"'s tail, a step after the reply went on over it)."""
        return self.cues is not None and not self.judged and self.pieces <= 2 and self.speech < self.held_speech_steps

    @property
    def judged(self) -> bool:
        """The cue model has had its say on the latest held piece, all of it (not only up to a silence inside it)."""
        return self.judged_pieces >= self.pieces and self.judged_voiced >= self.voiced

    def _asks(self) -> float:
        """The cue model's P(the utterance before this silence asked something): asked once per
        silence, at its second step or the network's first wish for the turn if that comes first
        (it was trained on windows ending 0.1-0.8 s after the words)."""
        if self.cues is None:
            return 1.0
        if self.verdict is None:
            self.verdict = float(self.cues.probs()[ASKS])
        return self.verdict

    def _interruption_over(self) -> bool:
        """After a BREAK: AFTER_BREAK_QUIET_STEPS of silence; with cues, the unfinished silence when
        the last words were only a short piece, a stop word or what sounds like a backchannel
        ("hold on, ... no, ...": what the user wants is still to come, maybe after a pause longer
        than 0.48 s; and nobody interrupts to say "mm-hmm")."""
        if self.after_break is not None and self.after_break > AFTER_BREAK_LIMIT_STEPS:
            return True
        if self.quiet < AFTER_BREAK_QUIET_STEPS:
            return False
        if self.cues is None or self.quiet >= self.unfinished_quiet_steps:
            return True
        if self.only_stopped is None:  # a short piece: a stop word, or one that sounds like "yeah" or "no"
            p = self.cues.probs()
            self.only_stopped = float(p[STOP] + p[BACKCHANNEL]) >= STOPPED_ONLY_P
            self.fired["stop_word_pending"] += self.only_stopped
        return not self.only_stopped

    def _listening(self, first: int, chunk: np.ndarray, level: float) -> int:
        if self.replied:  # the model has spoken: the user's next turn has a pace of its own
            self.pace.reset()
        self.replied = 0
        if self.voice.speaking(chunk, level):
            self.pace.spoke(self.quiet, self.verdict)
            self.quiet, self.deferred, self.verdict, self.spoke = 0, False, None, True
            self.only_stopped, self.asked_quiet, self.spoken = None, False, self.spoken + 1
        else:
            self.quiet += 1
        if self.asked_quiet:  # a "shh" asked for quiet: the network's wish for the turn waits for the user's voice
            return self._fire("hushed_quiet", V.THINK) if first == V.SHIFT else first
        self.wanted = self.wanted + 1 if first == V.SHIFT or self.deferred else 0
        if self.after_break is not None:
            self.after_break += 1
            if self._interruption_over():
                self.after_break = None
        if (first == V.THINK and not self.deferred and self.spoke and self.cues is not None
                and self.after_break is None and self.quiet == ASKED_QUIET_STEPS and self._asks() >= ASKED_P):
            first = self._fire("question_answered", V.SHIFT)  # a clear question: answer it now
        if (first == V.THINK and not self.deferred and self.after_break is None
                and self.quiet == self.unclaimed_quiet_steps and self.spoken >= UNCLAIMED_SPEECH_STEPS):
            first = self._fire("turn_unclaimed", V.SHIFT)  # the network never asked for it (a loud room)
        if first != V.SHIFT and not self.deferred:
            return first
        # A rule that says "not yet" defers the network's wish (it may not repeat it: its context now
        # holds a THINK there) until the user has been silent long enough, or speaks again.
        if self.after_break is not None:
            self.deferred = True
            return self._fire("turn_after_break", V.THINK)
        # A detector hearing a noise as speech must not keep the turn from the user for ever: the network's wish wins.
        if self.quiet < self.turn_quiet_steps and self.wanted <= self.turn_quiet_steps:
            self.deferred = True
            return self._fire("turn_silence", V.THINK)
        # Not after a statement or a comma (the user may go on, pace.py); an interruption's answer is not held back.
        if (not self.since_break and self.quiet < self.pace.wait(self.unfinished_quiet_steps)
                and self.wanted <= self.unfinished_quiet_steps and self._asks() < ASKS_P):
            self.deferred = True
            return self._fire("unfinished_turn", V.THINK)
        if self.voice.returning(chunk):  # round 23: a chunk "silent" but for its end, the voice coming back
            self.deferred = True
            return self._fire("voice_returning", V.THINK)
        self.deferred, self.spoke, self.since_break, self.spoken = False, False, False, 0
        return V.SHIFT

    def _released(self, token: int) -> int:
        self.holding, self.speech, self.pieces, self.deferred, self.likely = False, 0, 0, False, False
        return token

    def _fire(self, rule: str, token: int) -> int:
        self.fired[rule] += 1
        return token
