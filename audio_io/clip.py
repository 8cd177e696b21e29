"""Short audio files loaded whole (say() prompts, fixed replies, scenario clips), with a bound.

`load_mono16k` decodes a whole file and resamples it in one piece: a 148 KB WAV whose header
claims 1 Hz became 9.3 GB of resampled audio. Here the header is checked first (a sample rate
the runtime supports, a length within `max_s`), and the samples are converted in blocks with a
streaming resampler, so memory is the 16 kHz result and one block, and the time is bounded by
`max_s` too. `load_clip_async` does the same on a worker thread for callers on an event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audio_io.errors import AudioFileError, one_line
from audio_io.format import SAMPLE_RATE, to_mono
from audio_io.wav import MAX_RATE, MIN_RATE, probe

MAX_CLIP_S = 120.0  # say() audio and policy.reply_wav
BLOCK_FRAMES = 1 << 16


def check_clip(path: Path, *, max_s: float = MAX_CLIP_S, what: str = "audio") -> int:
    """Read only the header of `path`: its sample rate if supported and within `max_s`, else AudioFileError.

    Cheap enough for an event loop (no samples are read), and a FIFO or device is refused before
    anything opens it, so callers can report a bad file at once and decode it later on a thread.
    """
    path = Path(path)
    if path.exists() and not path.is_dir() and not path.is_file():
        raise AudioFileError(path, f"{what}: not a regular file (a pipe or device); give an audio file")
    info = probe(path, check_rate=False)  # checked below, naming `what`
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise AudioFileError(path, f"{what}: sample rate {info.samplerate} Hz is outside "
                                   f"{MIN_RATE}..{MAX_RATE} Hz")
    seconds = info.frames / info.samplerate
    if seconds > max_s:
        raise AudioFileError(path, f"{what}: {seconds:.1f} s long; at most {max_s:g} s is accepted")
    return int(info.samplerate)


def load_clip(path: Path, *, max_s: float = MAX_CLIP_S, what: str = "audio") -> np.ndarray:
    """`path` as 16 kHz mono float32, refused (AudioFileError naming `what`) beyond `max_s` seconds."""
    path = Path(path)
    rate = check_clip(path, max_s=max_s, what=what)
    resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32") if rate != SAMPLE_RATE else None
    parts: list[np.ndarray] = []
    try:
        with sf.SoundFile(str(path)) as f:
            while True:
                block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                last = len(block) < BLOCK_FRAMES
                mono = to_mono(block)
                parts.append(resampler.resample_chunk(mono, last=last) if resampler is not None else mono)
                if last:
                    break
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFileError(path, f"corrupt audio data ({one_line(exc)})") from exc
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if not np.isfinite(audio).all():
        raise AudioFileError(path, f"{what}: holds NaN or infinite samples")
    return audio


async def load_clip_async(path: Path, *, max_s: float = MAX_CLIP_S, what: str = "audio") -> np.ndarray:
    """`load_clip` on a worker thread: the event loop never waits on decoding."""
    return await asyncio.to_thread(load_clip, path, max_s=max_s, what=what)


def check_samples(audio: np.ndarray, *, max_s: float = MAX_CLIP_S, what: str = "audio") -> None:
    """Samples given directly (16 kHz): refused with ValueError beyond `max_s` seconds."""
    if audio.size > max_s * SAMPLE_RATE:
        raise ValueError(f"{what}: {audio.size / SAMPLE_RATE:.1f} s of samples; at most {max_s:g} s is accepted")
