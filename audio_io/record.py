"""`--record DIR`: keep a live session's audio so it can be replayed offline.

Writes three 16 kHz WAVs, sample-aligned with the session clock: `mic.wav` (what the microphone
delivered to the engine, after echo cancellation: replay it with `duplex-chat --input DIR/mic.wav`;
a muted microphone is still recorded, the engine then hears silence),
`mic_raw.wav` (the microphone before echo cancellation: replay it to compare cancellers) and
`speaker.wav` (what the speaker played, lined up with the microphone, i.e. the echo reference).
Disk writes happen on a writer thread so a slow disk never stalls the event loop.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_io.errors import AudioFileError
from audio_io.format import SAMPLE_RATE
from audio_io.wav import sync_header

NAMES = ("mic.wav", "mic_raw.wav", "speaker.wav")


class Recorder:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._files = [sf.SoundFile(str(self.folder / name), "w", SAMPLE_RATE, 1, subtype="PCM_16")
                           for name in NAMES]
        except (OSError, sf.LibsndfileError, RuntimeError) as exc:
            raise AudioFileError(self.folder, f"cannot record here ({exc})") from exc
        self._queue: queue.SimpleQueue[tuple[np.ndarray, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_loop, name="duplex-recorder", daemon=True)
        self._thread.start()

    def chunk(self, raw: np.ndarray, clean: np.ndarray, played: np.ndarray) -> None:
        """Called on the event loop once per chunk; copies and hands off, never touches the disk."""
        self._queue.put((clean.copy(), raw.copy(), played.copy()))

    def _write_loop(self) -> None:
        written = 0
        while (item := self._queue.get()) is not None:
            for f, audio in zip(self._files, item, strict=True):
                f.write(np.clip(audio, -1.0, 1.0))
            written += 1
            if written % 6 == 0:  # about once a second: a killed session still leaves valid WAVs
                for f in self._files:
                    sync_header(f)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5.0)
        for f in self._files:
            f.close()
