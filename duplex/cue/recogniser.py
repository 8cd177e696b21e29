"""The recogniser's own process: pocketsphinx decoding off the runtime's steps.

Why a process: pocketsphinx holds Python's GIL while it decodes (tens of milliseconds for a step's
audio), so on a thread it still stretched the steps of every conversation in the process (a p99
of 270 ms against 24 ms without it). In a child process it runs on its own core; a step only
writes its audio to a pipe, and a verdict waits for the child, which has had the whole utterance
to catch up.

The protocol on the child's stdin: one byte of kind, four of length (big-endian), the payload:
`S` start an utterance (payload: its first audio), `F` feed audio, `E` end the utterance, `P`
judge a held piece (audio) by the piece grammar, `X` a new conversation (the verdicts forgotten,
the decoder's adaptation undone), `R` reply; audio is
16 kHz 16-bit PCM. Jobs run in order; only `R` answers, one JSON line on stdout: the latest
utterance's words, the words of the one before it, the latest piece, and the first error since the
last reply, if any.
"""

from __future__ import annotations

import json
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from duplex.cue.vocabulary import pronunciations, vocabulary, wheel_dictionary

HEADER = struct.Struct(">cI")

# A held piece is judged by a forced choice among these phrases (surer than open recognition). A
# stop word taken for a backchannel would resume a reply over the user, so only the first group
# says "backchannel", and the phrases that development voices' stop words were heard as ("oh" for
# "no", "exactly" for "actually", "fine" for "hang on") are in the last, which says nothing. The
# second group says "stop" (the reply does not go on, whatever the network heard); "what", which
# development voices' backchannels were heard as more often than their stop words, says nothing.
BACKCHANNEL_WORDS = ("mm hmm", "uh huh", "yeah", "yes", "right", "okay", "i see", "sure", "alright", "mhm", "yep",
                     "got it", "of course", "i know")
STOP_WORDS = ("wait", "no", "stop", "hold on", "hang on", "sorry", "excuse me", "actually", "but", "hey", "listen",
              "one second", "not that", "pardon", "enough", "cancel", "nope", "just a moment", "wait a second")
UNSURE_WORDS = ("what",)
NEITHER_WORDS = ("oh", "fine", "exactly", "well", "so", "and", "um", "uh")
PIECE_SEARCH = "piece"
PIECE_PHRASES = BACKCHANNEL_WORDS + STOP_WORDS + UNSURE_WORDS + NEITHER_WORDS
PIECE_GRAMMAR = ("#JSGF V1.0;\ngrammar piece;\npublic <piece> = "
                 + " | ".join(f"( {p} )" for p in PIECE_PHRASES) + ";\n")


def _read(stream: BinaryIO, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        part = stream.read(n - len(data))
        if not part:
            return None
        data += part
    return data


def new_decoder(*, whole_dictionary: bool = False, **settings: Any) -> Any:
    """A pocketsphinx decoder of US English with the held-piece grammar added, that knows only duplex's
    vocabulary (vocabulary.py) unless `whole_dictionary` (the wheel's, as before round 14: benches)."""
    import pocketsphinx

    if whole_dictionary:
        decoder = pocketsphinx.Decoder(samprate=16_000, loglevel="FATAL", **settings)
    else:
        with tempfile.TemporaryDirectory(prefix="duplex-recogniser-") as tmp:
            dictionary = Path(tmp) / "vocabulary.dict"
            dictionary.write_text(pronunciations(vocabulary(), wheel_dictionary()), encoding="utf-8")
            decoder = pocketsphinx.Decoder(samprate=16_000, loglevel="FATAL", dict=str(dictionary), **settings)
    decoder.add_jsgf_string(PIECE_SEARCH, PIECE_GRAMMAR)
    return decoder


def serve(jobs: BinaryIO, replies: BinaryIO) -> None:
    decoder = new_decoder()
    heard: list[str] | None = None
    previous: list[str] | None = None  # the utterance before the latest
    piece, error = "", None
    while (header := _read(jobs, HEADER.size)) is not None:
        kind, size = HEADER.unpack(header)
        payload = _read(jobs, size) if size else b""
        if payload is None:
            return
        try:
            if kind == b"S":
                previous, heard = heard, None
                decoder.start_utt()
                if payload:
                    decoder.process_raw(payload, False, False)
            elif kind == b"F":
                decoder.process_raw(payload, False, False)
            elif kind == b"E":
                decoder.end_utt()
                hyp = decoder.hyp()
                heard = hyp.hypstr.split() if hyp is not None else []
            elif kind == b"P":
                # heard on its own, with the features' state (their cepstral mean among it) as at a
                # conversation's start: with the state the conversation had left, development voices'
                # backchannels were named stop words ("sorry", "listen", "wait a second") 15 times in
                # 57 and backchannels 18 times, against 7 and 24 (docs/cue.md); the utterances' state
                # is put back after
                live_cmn = decoder.get_cmn()
                decoder.reinit_feat()
                decoder.activate_search(PIECE_SEARCH)
                try:
                    decoder.start_utt()
                    if payload:
                        decoder.process_raw(payload, False, True)
                    decoder.end_utt()
                    hyp = decoder.hyp()
                finally:
                    decoder.activate_search("_default")
                    decoder.set_cmn(live_cmn)
                piece = hyp.hypstr if hyp is not None else ""
            elif kind == b"X":
                # Its cepstral mean adapts to what it hears; a new conversation starts from the state of
                # a fresh process, so no conversation's voice moves the next one's words (as with the
                # VAD's state: docs/cue.md). Setting the mean back (round 7) left how fast it adapts,
                # and some first words came out otherwise than in a fresh process.
                heard, previous, piece = None, None, ""
                decoder.reinit_feat()
            elif kind == b"R":
                replies.write(json.dumps({"heard": heard, "previous": previous, "piece": piece,
                                          "error": error}).encode() + b"\n")
                replies.flush()
                error = None
            else:
                raise ValueError(f"unknown job {kind!r}")
        except Exception as exc:  # reported at the next reply; the child goes on
            error = error or f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
