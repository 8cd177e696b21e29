"""Words, recognised: a question's opening and a backchannel, the cues the network misses on voices
it never heard.

Why: on held-out voices the cue network's P(asks) is too unsure to answer a question quickly, so a
turn with cues waited the unfinished silence (1.6 s) after most questions. English questions and
requests open with a few dozen words (a wh-word, an auxiliary before its subject, "tell me",
"any idea"), and a general recogniser (pocketsphinx and the US English model its wheel ships) hears
the first one or two of them on voices no part of duplex was trained on. It mishears often enough
to miss many questions, and rarely enough hears a question in a statement that its "it asks" can
be trusted. The other way round, a statement's or a clause's opening (a subject, a determiner, a
conjunction: "it took ...", "when my cousin ...") heard as such is a "no": the network had taken a
quarter of the development voices' pauses for questions. An opening read as neither (most
misheard ones) leaves the network and the long wait to decide, as before.

A held piece of user speech over the reply ("yeah", or "wait") is judged by a forced choice among
backchannels, stop words and a few words that decide nothing; only a backchannel heard as one
overrules the network ("it was a backchannel": the reply goes on at once), never the other way.

Online: each utterance (speech after at least `GAP_S` of silence) has its first `HEAD_S` decoded
as it arrives, in a process of its own (duplex/cue/recogniser.py), so a step only writes its
audio to a pipe, and the verdict is ready, or nearly, when the utterance is over. An utterance
that follows a question after a breath (under `JOINED_GAP_S`) and opens as neither a question nor
a statement is that question's rest, and asks with it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np

from audio_io.format import SAMPLE_RATE, dbfs
from duplex.cue.recogniser import BACKCHANNEL_WORDS, HEADER, STOP_WORDS
from duplex.errors import DuplexError

GAP_S = 0.3  # silence that separates two utterances (the pauses inside a sentence are shorter)
HEAD_S = 1.2  # how much of an utterance is decoded: its first words
PREROLL_S = 0.1  # audio before the first speech frame, so the recogniser hears the onset
FRAME = SAMPLE_RATE // 50  # 20 ms
SPEECH_DBFS = -45.0  # a frame louder than this is speech (the user's voice, not the room) ...
ABOVE_FLOOR_DB = 12.0  # ... and louder than the room's noise floor by this much
FLOOR_RISE_DB = 0.05  # per frame (2.5 dB a second): a steady noise becomes the floor within seconds
# the floor before the first frame: a room that starts with a steady noise (-45 dBFS pink noise) is its
# own floor from the first frame (from -57 dBFS it took seconds to rise, and its noise opened the first
# utterance: "if I would like ..."); a voice from the very first frame is still 12 dB above it
INITIAL_FLOOR_DBFS = -40.0
SILENCE_DBFS = -120.0  # the level of digital silence, so the floor can rise from it
ENDED_AFTER_S = 0.1  # a verdict asked after this much silence ends the utterance's decoding
# An utterance that follows the one before it after less silence than this, and opens as neither a
# question nor a statement, is that one's continuation: a question that asks in its opening asks to
# its end. Voices pause for breath inside a long question ("when is the best time of year ... to
# see the northern lights?", 0.3 s), and the words "to see the northern line" ask nothing.
JOINED_GAP_S = 0.45

AUXILIARIES = frozenset({"is", "are", "was", "were", "am", "do", "does", "did", "can", "could", "will", "would",
                         "should", "shall", "may", "have", "has", "any", "isn't", "aren't", "don't", "doesn't",
                         "didn't", "can't", "won't", "wouldn't", "shouldn't"})
# An auxiliary asks only before its subject ("is there", "can you", "does the bus"): the recogniser
# puts one on onsets it cannot read ("was real", "should get rid" for development voices' statements)
SUBJECTS = frozenset({"i", "you", "we", "he", "she", "it", "they", "there", "the", "a", "an", "this", "that", "these",
                      "those", "my", "your", "our", "his", "her", "their", "anyone", "anybody", "someone", "somebody",
                      "anything", "something", "any", "some", "one"})
# A wh-word asks only with the word a question puts after it: an auxiliary ("what is", "when does"),
# a noun after "which" or "what" ("which museum"), or one of these ("how many", "where else"). The
# recogniser puts a "what" on many onsets it cannot read ("what on and", "what what got it", for
# "the lights went out"), and a wh-word before its subject opens a clause ("when the plumber came",
# "what I mean is").
# (round 23: bank c's questions, "who wrote the song", "how soon", found "who" and "how" shorter
# than English; "who" asks as "what" does, before anything that is not a subject or a determiner)
WH_NEXT = {
    "how": frozenset({"many", "much", "long", "far", "often", "old", "big", "about", "come", "else", "soon",
                      "late", "early", "fast", "quickly", "well", "hot", "cold", "tall", "deep", "wide", "heavy",
                      "expensive", "cheap", "high", "close", "near", "loud", "bad", "good", "large", "small"}),
    "when": frozenset(), "where": frozenset({"else"}), "why": frozenset({"not"}),
}
NOUN_ASKING = frozenset({"what", "which", "whose", "who"})  # ... before a noun or a verb: NOT_A_NOUN below
ASKING_CONTRACTIONS = frozenset({"what's", "where's", "who's", "how's", "when's", "why's", "which's"})
# after "which" / "what" / "whose" / "who", anything but these is a question's noun or verb: a subject with its
# verb ("what i'd do next", "what they've got") opens a clause, as "what another ..." exclaims
# (round 22: held-out statements heard so started the reply in a pause; "you'd" stays a question's,
# "what would you ..." heard as "what you'd")
NOT_A_NOUN = frozenset({"i", "we", "they", "he", "she", "it", "you", "my", "our", "your", "the", "a", "his", "her",
                        "their", "this", "that", "i'm", "you're", "we're", "they're", "it's", "that's", "i'd",
                        "i'll", "i've", "we'd", "we'll", "we've", "he'd", "he'll", "she'd", "she'll", "they'd",
                        "they'll", "they've", "it'd", "it'll", "another", "what", "which", "on", "in", "at", "to",
                        "of", "for", "with", "and", "but", "or", "so", "an"})
REQUESTS = frozenset({"tell", "give", "show", "please", "find", "help", "remind", "recommend", "suggest",
                      "explain", "describe"})
OPENERS = frozenset({"um", "uh", "so", "and", "well", "oh", "okay", "now", "hey", "but", "then"})
# "I want ...", "I need ...", "I wonder ...", "I would like ...", "I'd love ...": a wish is a request;
# "I'd change ...", "I would go ..." are not ("I changed the cartridge" is heard as "I'd change")
WISHES = frozenset({"want", "need", "wanna", "wonder", "wondered", "wondering"})
LIKING = frozenset({"like", "love", "prefer"})
# A statement or a clause opens with its subject, a determiner or a conjunction; a question almost
# never does (its auxiliary or wh-word comes first). Such a first word, heard, is a "no" the network
# may lack: on development voices the network heard "it took much longer", "he says the boiler",
# "when my cousin" as questions (P(asks) 0.5-0.86) in a quarter of the user's pauses. "you" is not among
# them ("you mean the ferry?"), nor "i" before an auxiliary that asks with "I" after it ("how do I ...",
# "can I ..." are heard as "I do ...", "I can ...").
STATES = frozenset({"i", "i'd", "we", "he", "she", "they", "it", "my", "our", "his", "her", "their", "the", "this",
                    "that", "these", "those", "a", "an", "some", "every", "last", "unfortunately", "if", "when",
                    "before", "after", "since", "once", "because", "although"})
ASKS_BEFORE_I = frozenset({"do", "does", "did", "can", "could", "should", "shall", "may"})


def asks(words: list[str]) -> bool:
    """Do these first words open a question or a request? (lower-case words, as recognised)"""
    rest = [w for w in words if w not in OPENERS]
    if not rest:
        return False
    first = rest[0]
    if first in REQUESTS or first == "any":
        return True
    if first in AUXILIARIES:
        return len(rest) > 1 and rest[1] in SUBJECTS
    if first == "i'd":
        return len(rest) > 1 and rest[1] in LIKING
    if first == "i":
        return len(rest) > 1 and (rest[1] in WISHES or (rest[1] == "would" and len(rest) > 2 and rest[2] in LIKING))
    if first in ASKING_CONTRACTIONS:
        return True
    if len(rest) < 2:
        return False
    if first in NOUN_ASKING:
        return rest[1] in AUXILIARIES or rest[1] not in NOT_A_NOUN
    return first in WH_NEXT and (rest[1] in AUXILIARIES or rest[1] in WH_NEXT[first])


WH_WORDS = NOUN_ASKING | frozenset(WH_NEXT) | ASKING_CONTRACTIONS


def opens_with_wh(words: list[str]) -> bool:
    """Does a wh-word open these words (after the openers)? The recogniser's language model puts
    "what" on clauses it misheard ("Once ..." -> "what is that ..."); a question it hears opening
    with an auxiliary ("could you ...") is seldom a clause misheard."""
    rest = [w for w in words if w not in OPENERS]
    return bool(rest) and rest[0] in WH_WORDS


def states(words: list[str]) -> bool:
    """Do these first words open a statement or a clause, and not a question or a request?"""
    rest = [w for w in words if w not in OPENERS]
    if not rest or asks(words) or rest[0] not in STATES:
        return False
    return not (rest[0] == "i" and len(rest) > 1 and rest[1] in ASKS_BEFORE_I)


def _pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes()


class _Recogniser:
    """The client of one recogniser process (duplex/cue/recogniser.py): jobs are written to its pipe
    and never waited for; `wait` asks for the verdicts, which come after every job before it."""

    def __init__(self) -> None:
        if importlib.util.find_spec("pocketsphinx") is None:
            raise DuplexError("cue_words needs pocketsphinx (pip install pocketsphinx; 'duplex[model]' has it too); "
                              "or turn it off: cue_words: false")
        root = str(Path(__file__).resolve().parents[2])  # duplex itself, however this process found it
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-m", "duplex.cue.recogniser"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.heard: list[str] = []  # the latest utterance's opening words
        self.gap_s = 0.0  # the silence before it (set by OpeningWords as it opens an utterance)
        self.asked: bool | None = None
        self.stated = False  # its opening words open a statement or a clause
        self.asked_wh = False  # ... ask, with a wh-word first (`opens_with_wh`)
        self.piece = ""  # what the latest held piece was heard as
        self.pending = True  # jobs sent since the last reply: its verdicts may be out of date

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(HEADER.pack(kind, len(payload)) + payload)
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise self._gone() from exc
        self.pending = self.pending or kind != b"R"

    def wait(self) -> None:
        """The verdicts after every job sent so far (no round trip when none was sent since the last)."""
        if not self.pending:
            if self.process.poll() is not None:
                raise self._gone()
            return
        self.send(b"R")
        self.pending = False
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise self._gone()
        reply = json.loads(line)
        if reply["error"]:
            raise DuplexError(f"cue_words: the recogniser failed ({reply['error']})")
        self.heard = reply["heard"] or []
        self.asked = None if reply["heard"] is None else asks(reply["heard"])
        self.stated = reply["heard"] is not None and states(reply["heard"])
        self.asked_wh = bool(self.asked) and opens_with_wh(self.heard)
        if self.asked is False and not self.stated and self.gap_s < JOINED_GAP_S and asks(reply["previous"] or []):
            self.asked = True  # the continuation of a question
            self.asked_wh = opens_with_wh(reply["previous"])
        self.piece = reply["piece"]

    def _gone(self) -> DuplexError:
        return DuplexError(f"cue_words: the recogniser process ended (status {self.process.poll()})")


def _close(process: subprocess.Popen[bytes]) -> None:
    """Ends a recogniser process: its stdin closed, it reads the end and exits."""
    try:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


class OpeningWords:
    """One conversation's recogniser: the first words of each utterance, and whether they ask; and,
    asked for it, whether a short held piece was a backchannel.

    `asked` is the verdict on the latest utterance: True when its opening words ask, False when
    they don't (or nothing was recognised), None while no utterance has been heard out."""

    def __init__(self) -> None:
        self.recogniser = _Recogniser()
        weakref.finalize(self, _close, self.recogniser.process)  # the process ends with its window
        self.open = False
        self.reset()

    def reset(self) -> None:
        if self.open:
            self.recogniser.send(b"E")
        self.recogniser.send(b"X")
        self.tail = np.zeros(0, dtype=np.float32)  # less than a frame, carried to the next chunk
        self.preroll = np.zeros(0, dtype=np.float32)
        self.floor = INITIAL_FLOOR_DBFS
        self.quiet = GAP_S  # seconds of silence so far: the conversation starts in silence
        self.fed = 0.0  # seconds of the current utterance given to the decoder
        self.open = False  # an utterance is being decoded

    @property
    def asked(self) -> bool | None:
        self.recogniser.wait()
        return self.recogniser.asked

    @property
    def heard(self) -> list[str]:
        self.recogniser.wait()
        return self.recogniser.heard

    @property
    def piece(self) -> str:
        self.recogniser.wait()
        return self.recogniser.piece

    def verdict(self) -> bool | None:
        """The latest utterance's verdict; asked in a silence, it ends that utterance's decoding
        (a rule wants the answer now, and a silence is where an utterance may have ended)."""
        if self.open and self.quiet >= ENDED_AFTER_S:
            self._finish()
        return self.asked

    def catch_up(self) -> None:
        """Wait for the recogniser's verdicts on the audio sent so far, unless an utterance is still
        being decoded (a verdict asked now would end it first: that is the verdict's to do)."""
        if not self.open:
            self.recogniser.wait()

    def stated(self) -> bool:
        """After `verdict()`: did the latest utterance open as a statement or a clause (`states`)?"""
        return self.recogniser.stated

    def asked_wh(self) -> bool:
        """After `verdict()`: did the latest utterance ask with a wh-word first (`opens_with_wh`)?"""
        return self.recogniser.asked_wh

    def piece_said(self, audio: np.ndarray) -> str | None:
        """What this short piece (a held piece of user speech) was heard as: "backchannel" (one of
        BACKCHANNEL_WORDS), "stop" (one of STOP_WORDS) or None (anything else, or nothing heard)."""
        self._finish()  # (the opening words' search must be closed before another is used)
        self.recogniser.send(b"P", _pcm(audio))
        piece = self.piece
        return "backchannel" if piece in BACKCHANNEL_WORDS else "stop" if piece in STOP_WORDS else None

    def push(self, chunk: np.ndarray) -> None:
        audio = np.concatenate([self.tail, chunk.astype(np.float32, copy=False)])
        whole = audio.size - audio.size % FRAME
        self.tail = audio[whole:]
        feed: list[np.ndarray] = []  # this chunk's audio for the open utterance, queued as one job
        preroll = round(PREROLL_S * SAMPLE_RATE)
        for start in range(0, whole, FRAME):
            frame = audio[start: start + FRAME]
            level = max(dbfs(frame), SILENCE_DBFS)
            # the room's floor: follows a quieter frame at once, a louder one slowly (speech is brief)
            self.floor = min(level, self.floor + FLOOR_RISE_DB)
            speech = level > max(SPEECH_DBFS, self.floor + ABOVE_FLOOR_DB)
            if speech and self.quiet >= GAP_S:  # a new utterance
                self._flush(feed)
                self._finish()
                before = np.concatenate([self.preroll, audio[:start]])[-preroll:]
                self.recogniser.gap_s = self.quiet
                self.recogniser.send(b"S", _pcm(before))
                self.open, self.fed = True, before.size / SAMPLE_RATE
            self.quiet = 0.0 if speech else self.quiet + FRAME / SAMPLE_RATE
            if self.open:
                if self.fed < HEAD_S and self.quiet < GAP_S:
                    feed.append(frame)
                    self.fed += FRAME / SAMPLE_RATE
                else:
                    self._flush(feed)
                    self._finish()
        self.preroll = np.concatenate([self.preroll, audio[:whole]])[-preroll:]  # the chunk's last PREROLL_S
        self._flush(feed)

    def _flush(self, feed: list[np.ndarray]) -> None:
        if feed:
            self.recogniser.send(b"F", _pcm(np.concatenate(feed)))
            feed.clear()

    def _finish(self) -> None:
        if self.open:
            self.recogniser.send(b"E")
            self.open = False
