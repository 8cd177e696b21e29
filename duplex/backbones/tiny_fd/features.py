"""Log-mel features of 16 kHz audio, causal and streamable: 16 frames per 160 ms chunk.

Frame t ends at sample 160 (t + 1) and looks back 25 ms, so a chunk's frames need only the last
240 samples of the previous chunk; `MelStream` carries them, making chunk-by-chunk features equal
to one-shot ones. Levels are kept absolute (no per-utterance normalisation): loudness is a cue.
"""

from __future__ import annotations

import numpy as np
import torch

SAMPLE_RATE = 16_000
WIN = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
N_MELS = 40
FRAMES_PER_STEP = 16


def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, fmin: float = 60.0, fmax: float = 7600.0) -> np.ndarray:
    """A (n_mels, n_fft // 2 + 1) triangular mel filterbank (HTK mel scale), from transformers as covo's."""
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=fmin,
                           max_frequency=fmax, sampling_rate=SAMPLE_RATE, norm=None, mel_scale="htk")
    return bank.T.astype(np.float32)


class LogMel(torch.nn.Module):
    """(B, WIN - HOP + n * HOP) samples -> (B, N_MELS, n) log-mel frames (causal framing)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN), persistent=False)
        self.register_buffer("fb", torch.from_numpy(mel_filters()), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        frames = audio.unfold(-1, WIN, HOP) * self.window  # (B, n, WIN)
        power = torch.fft.rfft(frames, n=N_FFT).abs().square()
        mel = power @ self.fb.T  # (B, n, mels)
        return ((torch.log10(mel + 1e-8) + 4.0) / 4.0).transpose(1, 2)

    def full(self, audio: torch.Tensor) -> torch.Tensor:
        """Features of whole signals (B, n * HOP) as if streamed from silence."""
        pad = torch.zeros(*audio.shape[:-1], WIN - HOP, dtype=audio.dtype, device=audio.device)
        return self(torch.cat([pad, audio], dim=-1))


class MelStream:
    """Chunk-by-chunk features equal to `LogMel.full` on the concatenated audio."""

    def __init__(self, mel: LogMel, batch: int = 1) -> None:
        self.mel = mel
        self.batch = batch
        self.reset()

    def reset(self) -> None:
        self.tail = torch.zeros(self.batch, WIN - HOP)

    def __call__(self, chunk: torch.Tensor) -> torch.Tensor:
        audio = torch.cat([self.tail, chunk], dim=-1)
        self.tail = audio[:, -(WIN - HOP):]
        return self.mel(audio)
