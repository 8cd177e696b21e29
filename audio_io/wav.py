"""WAV devices for offline sessions: a file as the microphone, a file as the speaker.

The input accepts any rate from 8 to 384 kHz, any channel count and any sample format libsndfile
reads, and streams it as 16 kHz mono 160 ms chunks (soxr, exact across block boundaries), decoding
in bounded blocks so that memory never depends on the file's length or rate. The output records exactly what
the speaker would have played, one step per step, so it is sample-aligned with the session clock.
It is flushed to disk every second, so even an interrupted session leaves a readable WAV.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audio_io.errors import AudioFileError, one_line
from audio_io.format import SAMPLE_RATE, STEP_SAMPLES, next_chunk, to_mono
from audio_io.speaker import SpeakerQueue

MIN_RATE = 8_000  # below this a file is not speech audio (a 1 Hz WAV would become hours of 16 kHz samples)
MAX_RATE = 384_000  # the highest rate sound hardware uses
BLOCK_BYTES = 1 << 21  # input read per block (2 MB): with the rate bounds, a block yields at most 2x as many samples


def probe(path: Path, *, check_rate: bool = True) -> sf._SoundFileInfo:
    """Check that `path` is a non-empty audio file at a rate we convert (8..384 kHz); else AudioFileError naming it."""
    if not path.exists():
        raise AudioFileError(path, "no such file")
    if path.is_dir():
        raise AudioFileError(path, "is a directory, not an audio file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFileError(path, f"not a readable audio file ({one_line(exc)})") from exc
    except PermissionError as exc:
        raise AudioFileError(path, "permission denied") from exc
    if info.frames <= 0:
        raise AudioFileError(path, "holds no audio frames")
    if check_rate and not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise AudioFileError(path, f"sample rate {info.samplerate} Hz is outside {MIN_RATE}..{MAX_RATE} Hz")
    return info


class Decoder:
    """Any audio file libsndfile reads -> 16 kHz mono float32, in bounded blocks.

    Each `read()` decodes at most `BLOCK_BYTES` of input (fewer frames for many channels) and
    returns its converted samples (soxr streaming: exact across block boundaries), so memory
    depends on the block, never on the file's length or rate; an empty array once the file ends.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.info = probe(self.path)
        try:
            self._file = sf.SoundFile(str(self.path))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioFileError(self.path, f"not a readable audio file ({one_line(exc)})") from exc
        rate = self._file.samplerate
        self.block = max(64, min(8192, BLOCK_BYTES // (4 * self._file.channels)))
        self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32") if rate != SAMPLE_RATE else None
        self.done = False

    def read(self) -> np.ndarray:
        """The next block at 16 kHz (possibly empty mid-file while soxr fills its window); empty at the end."""
        if self.done:
            return np.zeros(0, dtype=np.float32)
        try:
            block = self._file.read(self.block, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioFileError(self.path, f"corrupt audio data ({one_line(exc)})") from exc
        self.done = len(block) < self.block
        mono = to_mono(block)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono, last=self.done)
        return mono

    def close(self) -> None:
        self._file.close()


def load_mono16k(path: Path, *, max_seconds: float | None = None) -> np.ndarray:
    """The file as 16 kHz mono float32 (clips, replies, noise, tests), at most `max_seconds` of it.

    Decoded block by block, so memory is the result plus one block whatever the file's rate.
    """
    limit = None if max_seconds is None else max(0, round(max_seconds * SAMPLE_RATE))
    decoder = Decoder(path)
    blocks: list[np.ndarray] = []
    got = 0
    try:
        while not decoder.done and (limit is None or got < limit):
            block = decoder.read()
            blocks.append(block)
            got += block.size
    finally:
        decoder.close()
    out = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return out if limit is None else out[:limit].copy()


class WavInput:
    """A WAV file as the microphone: 160 ms chunks, the last one padded with silence."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._decoder = Decoder(self.path)
        info = self._decoder.info
        self.duration = info.frames / info.samplerate
        self._pending = np.zeros(0, dtype=np.float32)

    async def read(self) -> np.ndarray | None:
        return self.read_now()

    def read_now(self) -> np.ndarray | None:
        while self._pending.size < STEP_SAMPLES and not self._decoder.done:
            self._pending = np.concatenate([self._pending, self._decoder.read()])
        if self._pending.size == 0:
            return None
        chunk, self._pending = next_chunk(self._pending)
        return chunk

    def close(self) -> None:
        self._decoder.close()


_SFC_UPDATE_HEADER_NOW = 0x1060  # libsndfile: rewrite the header for the frames written so far


def sync_header(file: sf.SoundFile) -> None:
    """Push samples and a correct header to disk, so the file is a valid WAV right now."""
    file.flush()
    sf._snd.sf_command(file._file, _SFC_UPDATE_HEADER_NOW, sf._ffi.NULL, 0)


class WavOutput:
    """A WAV file as the speaker: each `advance` plays one step from the queue into the file."""

    clocked = True

    def __init__(self, path: Path, *, queue: SpeakerQueue | None = None) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise AudioFileError(self.path, "is a directory")
        if not self.path.parent.exists():
            raise AudioFileError(self.path, "its folder does not exist")
        self.queue = queue or SpeakerQueue()
        try:
            self._file = sf.SoundFile(str(self.path), "w", SAMPLE_RATE, 1, subtype="PCM_16")
        except (sf.LibsndfileError, RuntimeError, PermissionError) as exc:
            raise AudioFileError(self.path, f"cannot write ({one_line(exc)})") from exc
        self._block = np.zeros(STEP_SAMPLES, dtype=np.float32)
        self._steps = 0

    def advance(self) -> np.ndarray:
        """Play one step's worth of queued audio (or silence); return what was played."""
        self.queue.pull_into(self._block)
        try:
            self._file.write(np.clip(self._block, -1.0, 1.0))
            self._steps += 1
            if self._steps % 6 == 0:
                self.sync()
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:  # a full disk, a vanished device
            raise AudioFileError(self.path, f"writing failed after {self._steps * STEP_SAMPLES / SAMPLE_RATE:.2f} s "
                                            f"({one_line(exc)}: disk full?); the WAV keeps what was written") from exc
        return self._block

    def sync(self) -> None:
        sync_header(self._file)

    def close(self) -> None:
        if not self._file.closed:
            # a write that failed was reported already; the header covers what reached the disk
            with contextlib.suppress(sf.LibsndfileError, RuntimeError, OSError):
                self._file.close()


class NullOutput:
    """A speaker nobody hears (for benchmarks and embedding without audio out)."""

    clocked = True

    def __init__(self) -> None:
        self.queue = SpeakerQueue()
        self._block = np.zeros(STEP_SAMPLES, dtype=np.float32)

    def advance(self) -> np.ndarray:
        self.queue.pull_into(self._block)
        return self._block

    def close(self) -> None:
        pass



class MemoryOutput(NullOutput):
    """A speaker that keeps everything it played (for scenario runs and tests)."""

    def __init__(self) -> None:
        super().__init__()
        self._blocks: list[np.ndarray] = []

    def advance(self) -> np.ndarray:
        block = super().advance()
        self._blocks.append(block.copy())
        return block

    def audio(self) -> np.ndarray:
        return np.concatenate(self._blocks) if self._blocks else np.zeros(0, dtype=np.float32)
