"""A question's opening words, recognised: the cue the network misses on voices it never heard.

Why: on held-out voices the cue network's P(asks) is too unsure to answer a question quickly, so a
turn with cues waited the unfinished silence (1.6 s) after most questions. English questions and
requests open with a few dozen words (a wh-word, an auxiliary before its subject, "tell me",
"any idea"), and a general recogniser (pocketsphinx and the US English model its wheel ships) hears
the first one or two of them on voices no part of duplex was trained on. It mishears often enough
to miss many questions, and rarely enough hears a question in a statement that its "it asks" can
be trusted: so the words only ever add "it asks"; when they don't, the network and the long wait
decide as before.

Online: each utterance (speech after at least `GAP_S` of silence) has its first `HEAD_S` decoded
as it arrives, a step's chunk at a time, so its verdict is ready when the utterance is over, and
a step costs at most one chunk's decoding (tens of milliseconds, only while an utterance opens).
"""

from __future__ import annotations

import numpy as np

from audio_io.format import SAMPLE_RATE
from duplex.errors import DuplexError

GAP_S = 0.3  # silence that separates two utterances (the pauses inside a sentence are shorter)
HEAD_S = 1.2  # how much of an utterance is decoded: its first words
PREROLL_S = 0.1  # audio before the first speech frame, so the recogniser hears the onset
FRAME = SAMPLE_RATE // 50  # 20 ms
SPEECH_DBFS = -45.0  # a frame louder than this is speech (the user's voice, not the room) ...
ABOVE_FLOOR_DB = 12.0  # ... and louder than the room's noise floor by this much
FLOOR_RISE_DB = 0.05  # per frame (2.5 dB a second): a steady noise becomes the floor within seconds

WH = frozenset({"what", "which", "who", "whom", "whose", "where", "when", "why", "how"})
AUXILIARIES = frozenset({"is", "are", "was", "were", "am", "do", "does", "did", "can", "could", "will", "would",
                         "should", "shall", "may", "might", "must", "have", "has", "any", "isn't", "aren't",
                         "don't", "doesn't", "didn't", "can't", "won't", "wouldn't", "shouldn't"})
REQUESTS = frozenset({"tell", "give", "show", "please", "find", "help", "remind", "recommend", "suggest",
                      "explain", "describe"})
OPENERS = frozenset({"um", "uh", "so", "and", "well", "oh", "okay", "now", "hey", "but", "then"})
# "when the plumber came," "what I mean is," "when it stopped": a wh-word before its subject opens a
# clause; a question puts the auxiliary first ("when does it stop")
SUBJECTS = frozenset({"i", "we", "they", "he", "she", "it", "you", "my", "our", "your", "the", "a", "his", "her",
                      "their", "this", "that"})


WISHES = frozenset({"would", "want", "need", "wanna", "wonder", "wondered", "wondering"})  # "I would like ..."


def asks(words: list[str]) -> bool:
    """Do these first words open a question or a request? (lower-case words, as recognised)"""
    rest = [w for w in words if w not in OPENERS]
    if not rest:
        return False
    first = rest[0]
    if first in AUXILIARIES or first in REQUESTS or first == "i'd":
        return True
    if first == "i":
        return len(rest) > 1 and rest[1] in WISHES
    if first in WH:
        return not (first != "which" and first != "who" and len(rest) > 1 and rest[1] in SUBJECTS)
    return False


def _decoder() -> object:
    try:
        import pocketsphinx
    except ModuleNotFoundError as exc:
        raise DuplexError("cue_words needs pocketsphinx (pip install 'duplex[model]'); "
                          "or leave it off: cue_words: false") from exc
    return pocketsphinx.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")


class OpeningWords:
    """One conversation's recogniser: the first words of each utterance, and whether they ask.

    `asked` is the verdict on the latest utterance: True when its opening words ask, False when
    they don't (or nothing was recognised), None while no utterance has been heard out."""

    def __init__(self) -> None:
        self.decoder = _decoder()
        self.open = False
        self.reset()

    def reset(self) -> None:
        if self.open:
            self.decoder.end_utt()
        self.tail = np.zeros(0, dtype=np.float32)  # less than a frame, carried to the next chunk
        self.preroll = np.zeros(0, dtype=np.float32)
        self.floor = SPEECH_DBFS - ABOVE_FLOOR_DB
        self.quiet = GAP_S  # seconds of silence so far: the conversation starts in silence
        self.fed = 0.0  # seconds of the current utterance given to the decoder
        self.open = False  # an utterance is being decoded
        self.asked: bool | None = None
        self.heard: list[str] = []

    def verdict(self) -> bool | None:
        """The latest utterance's verdict; asked in a silence, it ends that utterance's decoding
        (a rule wants the answer now, and a silence is where an utterance may have ended)."""
        if self.open and self.quiet >= 0.1:
            self._finish()
        return self.asked

    def push(self, chunk: np.ndarray) -> None:
        audio = np.concatenate([self.tail, chunk.astype(np.float32, copy=False)])
        whole = audio.size - audio.size % FRAME
        self.tail = audio[whole:]
        for start in range(0, whole, FRAME):
            self._frame(audio[start: start + FRAME])

    def _frame(self, frame: np.ndarray) -> None:
        level = 10 * np.log10(float(np.mean(frame.astype(np.float64) ** 2)) + 1e-12)
        # the room's floor: follows a quieter frame at once, a louder one slowly (speech is brief)
        self.floor = min(level, self.floor + FLOOR_RISE_DB)
        speech = level > max(SPEECH_DBFS, self.floor + ABOVE_FLOOR_DB)
        if speech and self.quiet >= GAP_S:  # a new utterance
            self._finish()
            self.decoder.start_utt()
            self.open, self.fed, self.asked = True, 0.0, None
            self._feed(self.preroll)
        self.quiet = 0.0 if speech else self.quiet + FRAME / SAMPLE_RATE
        if self.open:
            if self.fed < HEAD_S and self.quiet < GAP_S:
                self._feed(frame)
            else:
                self._finish()
        self.preroll = np.concatenate([self.preroll, frame])[-round(PREROLL_S * SAMPLE_RATE):]

    def _feed(self, audio: np.ndarray) -> None:
        if not audio.size:  # (pocketsphinx cannot take an empty buffer)
            return
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
        self.decoder.process_raw(pcm.tobytes(), False, False)
        self.fed += audio.size / SAMPLE_RATE

    def _finish(self) -> None:
        if not self.open:
            return
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        self.heard = hyp.hypstr.split() if hyp is not None else []
        self.asked = asks(self.heard)
        self.open = False
