"""The cue model at run time: one loaded network, and a window of microphone audio per conversation.

The network is loaded once and shared (a server's lanes, a floor model's responders); each
conversation keeps its own last `WINDOW_S` of microphone audio and asks for the probabilities only
at the moments a rule needs them (a silence after a piece of speech), so a step usually costs
nothing and at most one window's classification (a few milliseconds).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from audio_io.format import SAMPLE_RATE
from duplex.backbones.floor.pitch import voiced_share
from duplex.backbones.tiny_fd.features import LogMel
from duplex.cue.data import WINDOW_S
from duplex.cue.model import CueNet
from duplex.cue.text import ASKS, BACKCHANNEL, CLASSES, FRAGMENT, STATEMENT, STOP
from duplex.cue.thresholds import (
    ASKED_P,
    BACKCHANNEL_P,
    LIKELY_BACKCHANNEL_P,
    NOISE_VOICED_SHARE,
    HeldPiece,
    held_piece_verdict,
)
from duplex.cue.words import OpeningWords
from duplex.errors import ConfigError, DuplexError

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "cue" / "cue.pt"


WORDS_ASK_P = 0.95  # P(asks) when the opening words ask: above ASKED_P, a question answered at once
# P(asks) at most, when they open a statement or a clause (words.states) and the network is not sure
# of a question (under ASKED_P): under ASKS_P, so the turn waits the unfinished silence. On development
# voices this took back 17 of the 29 pauses the network heard as questions, and 1 of the 87 questions
# it heard ("although what it all" ...)
WORDS_STATES_P = 0.3
# ... and the opening words' "it asks", with a wh-word first, is not taken when the network hears a
# clause ended on a comma (P(fragment) at least this, and above its P(asks)): the recogniser's
# language model puts "what" where a clause opens with "once" or "now that" ("what is that because
# of the" for "Once the painters have finished the hallway,"), and only the network hears the held
# pitch of its end. A question opening with an auxiliary keeps its "it asks": "could you ...",
# "can I ..." rise at their end, and 7 of the 9 questions development and held-out traces had the
# network hear as clauses opened so
WORDS_ASK_FRAGMENT_P = 0.4
# ... nor, whatever opens it, when the network is this sure of a statement (the words' "it states"
# yields to a network sure of a question, ASKED_P, the same way): held-out statements in long
# pauses heard as "but i want to do what", "but why do so to what" at P(statement) 0.87-0.88 started
# the reply in the pause; no question's ending of 240 (held-out seeds 211-228) nor of 94 (development
# voices) was heard over 0.85, and the highest were 0.81-0.84 ("to see the northern lights" after a
# question's opening), so the bar stays over them (round 22, docs/cue.md)
WORDS_ASK_STATEMENT_P = 0.85
WORDS_BACKCHANNEL_P = 0.95  # P(backchannel) when a held piece was heard as one: above BACKCHANNEL_P
# ... unless the network is sure it was something else: the forced choice names anything, a whole
# sentence too ("mhm" for a held-out interruption whose P(backchannel) was 0.02; development voices'
# backchannels named so: 0.02 once in 18, the rest 0.17 and over), or (round 20) it leans to a stop
# word: a held-out "wait" named "yep", at P(stop) 0.54 against P(backchannel) 0.30, resumed a reply
WORDS_BACKCHANNEL_NETWORK_P = 0.1
NOISE_MAX_STOP_P = 0.5  # a piece with no voice (NOISE_VOICED_SHARE) is a noise if the network hears no stop word in it
NOISE_P = 0.95  # P(backchannel), the class of coughs too, for such a piece


class CueModel:
    """The trained network, for any number of `CueWindow`s; `words`: each window also runs the
    recogniser (duplex/cue/words.py), whose "it asks" or "it states" (opening words) and "it was a
    backchannel" or "a stop word" (a held piece) overrule the network's verdict."""

    def __init__(self, path: Path = SHIPPED, words: bool = False) -> None:
        self.words = words
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except OSError as exc:
            raise DuplexError(f"cue model {path}: cannot be read ({exc.strerror or exc})") from exc
        except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # torch's own words run to a page
            raise DuplexError(f"cue model {path}: cannot be read (not a torch checkpoint)") from exc
        if not isinstance(saved, dict):
            raise DuplexError(f"cue model {path}: cannot be read (not a duplex.cue.train checkpoint)")
        if tuple(saved.get("classes", ())) != CLASSES:
            raise DuplexError(f"cue model {path}: classes {saved.get('classes')} differ from {list(CLASSES)}")
        try:
            self.net = CueNet(**saved.get("net", {}))
            self.net.load_state_dict(saved["state"])
        except (KeyError, TypeError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise DuplexError(f"cue model {path}: does not fit duplex.cue.model.CueNet ({first})") from exc
        self.net.eval()
        self.mel = LogMel()

    def probs(self, window: np.ndarray) -> np.ndarray:
        """Class probabilities (CLASSES order) for one window of 16 kHz audio."""
        with torch.inference_mode():
            mel = self.mel.full(torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32))[None])
            return torch.softmax(self.net(mel), dim=-1)[0].numpy()


def load_cue_model(checkpoint: str, words: bool, resolve: Callable[[str], Path], key: str) -> CueModel:
    """The cue model a config names (`key`, e.g. tiny_fd.cue_checkpoint: '' is the shipped one, else a
    path resolved against the config file); a checkpoint that cannot be used is a config error that
    names the key as well as the file."""
    try:
        return CueModel(resolve(checkpoint) if checkpoint else SHIPPED, words=words)
    except DuplexError as exc:
        raise ConfigError(f"{key}: {exc}") from exc


class CueWindow:
    """One conversation's last WINDOW_S of microphone audio, classified on demand (once per step).

    A ring: a step writes its chunk in place; the window is put in order only when it is asked for,
    so the steps in which no rule asks cost one small copy."""

    # Told the microphone time (s since the window's reset) of every window the network reads, in
    # any conversation of the process: duplex/cue/harvest.py cuts its training windows where the
    # rules ask. None in a deployment.
    listener: ClassVar[Callable[[float], None] | None] = None

    def __init__(self, model: CueModel) -> None:
        self.model = model
        self.ring = np.zeros(round(WINDOW_S * SAMPLE_RATE), dtype=np.float32)
        self.head = 0  # where the next chunk goes: the oldest sample
        self.heard = 0  # samples pushed since the reset: the window's end on the microphone's clock
        self.cached: np.ndarray | None = None
        self.words = OpeningWords() if model.words else None

    @property
    def audio(self) -> np.ndarray:
        """The window, oldest sample first."""
        return np.roll(self.ring, -self.head)

    def reset(self) -> None:
        self.ring[:] = 0.0
        self.head = self.heard = 0
        self.cached = None
        if self.words is not None:
            self.words.reset()

    def push(self, chunk: np.ndarray) -> None:
        n, size = chunk.size, self.ring.size
        first = min(n, size - self.head)
        self.ring[self.head: self.head + first] = chunk[:first]
        self.ring[: n - first] = chunk[first:]
        self.head = (self.head + n) % size
        self.heard += n
        self.cached = None
        if self.words is not None:
            self.words.push(chunk)

    def probs(self) -> np.ndarray:
        """The network's verdict on the last utterance; with words, "it asks" raised by an opening
        that asks (unless the network doubts it: `_doubts_asking`), and lowered by one that states
        (unless the network is sure it asked)."""
        p = self._network()
        if self.words is None:
            return p
        if self.words.verdict() and not _doubts_asking(p, self.words.asked_wh()):
            return _raised(p, ASKS, WORDS_ASK_P)
        if self.words.stated() and p[ASKS] < ASKED_P:
            return _lowered(p, ASKS, WORDS_STATES_P)
        return p

    def prefetch(self) -> None:
        """Work out now what a verdict asked at this step will read: the network on the window, and
        the recogniser's reply to the audio it has been sent (nothing that changes what it hears)."""
        self._network()
        if self.words is not None:
            self.words.catch_up()

    def _network(self) -> np.ndarray:
        if self.cached is None:
            self.cached = self.model.probs(self.audio)
            if CueWindow.listener is not None:
                CueWindow.listener(self.heard / SAMPLE_RATE)
        return self.cached

    def piece_probs(self, seconds: float) -> np.ndarray:
        """`probs()` at the end of a held piece of user speech, the window's last `seconds`. A piece
        with no voice in it is a noise (a cough: the reply goes on; a "shh", which has none either,
        the rules hear before they ask: pitch.py's `hushed`). With words, what the
        recogniser heard overrules a network unsure of it: a backchannel raises P(backchannel) past
        its bar (unless the network is sure of something else or leans to a stop word), a stop word
        takes it away (the reply does not go on; nothing ends it either, the words being less sure
        of that) unless the network is nearly sure of a backchannel (`piece_verdict`: a step later)."""
        return self._judge_piece(seconds)[0]

    def _judge_piece(self, seconds: float) -> tuple[np.ndarray, bool]:
        """`piece_probs`, and whether the piece passed the backchannel bar with a doubt: on its
        words alone, or on a network nearly sure (LIKELY_BACKCHANNEL_P) of a backchannel the words
        named a stop word."""
        p = self._network()  # (not the opening words' "it asks": a piece is judged by its own words)
        piece = self.audio[-round(seconds * SAMPLE_RATE):]
        if p[STOP] < NOISE_MAX_STOP_P and voiced_share(piece) < NOISE_VOICED_SHARE:
            return _raised(p, BACKCHANNEL, NOISE_P), False
        if self.words is None:
            return p, False
        said = self.words.piece_said(piece)
        if said == "backchannel" and p[BACKCHANNEL] >= max(WORDS_BACKCHANNEL_NETWORK_P, p[STOP]):
            return _raised(p, BACKCHANNEL, WORDS_BACKCHANNEL_P), p[BACKCHANNEL] < BACKCHANNEL_P
        if said == "stop":
            # round 20: the network, not the words, was right on these; round 22: at its likely bar too
            if p[BACKCHANNEL] >= LIKELY_BACKCHANNEL_P:
                return p, True
            return _lowered(p, BACKCHANNEL, 0.0), False
        return p, False

    def piece_verdict(self, seconds: float, first_backchannel: float | None) -> tuple[HeldPiece | None, float]:
        """The rules' verdict on a held piece (`held_piece_verdict` on `piece_probs`) and the
        P(backchannel) a second piece's verdict reads. A backchannel that only the recogniser named
        (the network under its own bar) is a likely one: the reply goes on one silent step later,
        for its first silence can be the detector losing a step inside a longer interruption. At
        once, "I already | know that part, ..." named "all right" resumed a reply inside the
        interruption (development seed 39, round 15's code).

        Until round 20 the network alone got no such lower tier: round 5's network put a held-out
        hesitation's "wait" at 0.85 (round 16, `policy-words`, seed 163), as round 12 found for the
        loopback's "Stop,". Round 20's, taught on conversation windows, put none of those 396 stop
        words above 0.27, nor any of 106 pieces of held-out barge-ins above 0.76, and left held-out
        backchannels at 0.81-0.85 to come back late: since round 21 a piece it puts at
        LIKELY_BACKCHANNEL_P or over, that the words did not name a stop word (round 22: whatever
        they named), is a likely one.

        A piece the network is sure of (round 20's network, taught on conversation windows) but
        the words named a stop word is a likely one too: on development conversations the words
        had named "listen" or "just a moment" backchannels the network put at 0.95-0.99, and kept
        the reply from going on over them; on windows cut from conversations the network took
        none of 396 stop words for a backchannel (bench/results/cue-windows-*.json). Since round 22
        at LIKELY_BACKCHANNEL_P as well: the words name a stop word for one held-out backchannel in
        twenty ("no", "sorry" at 0.83-0.86 came back late), while of 253 held-out barge-in pieces
        (seeds 199-228), 191 named stop words, the network put none above 0.57."""
        p, doubted = self._judge_piece(seconds)
        verdict = held_piece_verdict(p, first_backchannel)
        if verdict is None:  # the network alone, nearly sure
            verdict, doubted = held_piece_verdict(p, first_backchannel, LIKELY_BACKCHANNEL_P), True
        if verdict is HeldPiece.BACKCHANNEL and doubted:
            verdict = HeldPiece.LIKELY_BACKCHANNEL
        return verdict, float(p[BACKCHANNEL])


def _doubts_asking(p: np.ndarray, wh: bool) -> bool:
    """Does the network hear what an opening that asks cannot end in: a statement it is sure of, or,
    after a wh-word (`wh`), a clause ended on a comma?"""
    if p[STATEMENT] >= WORDS_ASK_STATEMENT_P:
        return True
    return wh and p[FRAGMENT] >= WORDS_ASK_FRAGMENT_P and p[FRAGMENT] > p[ASKS]


def _raised(p: np.ndarray, k: int, value: float) -> np.ndarray:
    """`p` with class k raised to at least `value`, the others scaled to keep the sum at 1."""
    return p if p[k] >= value else _set(p, k, value)


def _lowered(p: np.ndarray, k: int, value: float) -> np.ndarray:
    """`p` with class k lowered to at most `value`, the others scaled to keep the sum at 1."""
    return p if p[k] <= value else _set(p, k, value)


def _set(p: np.ndarray, k: int, value: float) -> np.ndarray:
    out = p * ((1.0 - value) / max(1.0 - float(p[k]), 1e-6))
    out[k] = value
    return out
