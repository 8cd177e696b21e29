"""User audio -> LLM-width frames: Whisper log-mel, the encoder, the adapter; whole turns or streaming.

Turn mode encodes a whole utterance the way the released inference code does: 30 s segments
(2 x max_source_positions mel frames) padded with silence, one encoder pass each, adapter frames
concatenated, the first ceil(samples / 2560) kept — one frame per 160 ms.

Native mode needs one frame per step as audio arrives. `StreamingEncoder` keeps the last W steps
of audio (W = covo.encoder_window_steps) in a ring on the device and re-encodes that window every
step: log-mel over the window (frames right-aligned to the newest sample, no lookahead), the
encoder over its W*8 frames (positions 0..W*8-1), the adapter over the last 16 encoder frames,
whose last output covers exactly the newest 160 ms (its receptive field reaches back 15 frames
and never into the zero padding). Cost per step: one encoder pass over W*8 frames, i.e. W*8/1500
of a full 30 s Whisper pass (W = 16: 8.5 %); shapes never change, so the step can be captured as
a CUDA graph. Left context beyond W steps is forgotten: the LLM's KV cache carries it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from audio_io.format import SAMPLE_RATE, STEP_SAMPLES
from duplex.backbones.covo.arch import CovoAudioModel

N_FFT = 400
HOP = 160
MEL_PER_STEP = STEP_SAMPLES // HOP  # 16 mel frames, 8 encoder frames, 1 adapter frame per 160 ms
ADAPTER_SPAN = 16  # encoder frames the adapter needs for its last output frame


class LogMel:
    """Whisper's log-mel spectrogram (slaney mel filters, log10, 8 dB range, (x + 4) / 4)."""

    def __init__(self, n_mels: int, device: torch.device) -> None:
        from transformers.audio_utils import mel_filter_bank

        filters = mel_filter_bank(num_frequency_bins=1 + N_FFT // 2, num_mel_filters=n_mels, min_frequency=0.0,
                                  max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm="slaney",
                                  mel_scale="slaney")
        self.filters = torch.from_numpy(np.asarray(filters, dtype=np.float32).T).to(device)  # (n_mels, 201)
        self.window = torch.hann_window(N_FFT, device=device)

    def __call__(self, audio: torch.Tensor, *, center: bool) -> torch.Tensor:
        """(samples,) float32 -> (n_mels, frames); center=True is Whisper's framing (last frame dropped)."""
        stft = torch.stft(audio, N_FFT, HOP, window=self.window, center=center, return_complex=True)
        power = stft.abs() ** 2
        if center:
            power = power[:, :-1]
        log_spec = torch.clamp(self.filters @ power, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0


def encode_mel(model: CovoAudioModel, mel: torch.Tensor) -> torch.Tensor:
    """WhisperEncoder over (B, n_mels, F) mel frames of any length <= 2 * max_source_positions."""
    enc = model.encoder
    x = F.gelu(enc.conv1(mel))
    x = F.gelu(enc.conv2(x)).permute(0, 2, 1)
    x = x + enc.embed_positions.weight[: x.shape[1]]
    for layer in enc.layers:
        out: Any = layer(x, None)
        x = out[0] if isinstance(out, tuple) else out
    return enc.layer_norm(x)


def frames_for(samples: int) -> int:
    """Adapter frames for an utterance of `samples` (one per started 160 ms)."""
    return -(-samples // STEP_SAMPLES)


class UtteranceEncoder:
    """A whole utterance -> (frames, hidden) in the LLM dtype, as the released inference does it."""

    def __init__(self, model: CovoAudioModel, device: torch.device, dtype: torch.dtype) -> None:
        self.model = model
        self.device = device
        self.dtype = dtype
        self.mel = LogMel(model.encoder.config.num_mel_bins, device)
        self.segment = 2 * model.encoder.config.max_source_positions * HOP  # 480000 samples (30 s) for large-v3

    def __call__(self, audio: np.ndarray) -> torch.Tensor:
        audio = audio[: audio.size // HOP * HOP]
        audio = np.pad(audio, (0, -audio.size % (2 * HOP))).astype(np.float32)
        wav = torch.from_numpy(audio).to(self.device)
        feats = []
        for start in range(0, max(wav.numel(), 1), self.segment):
            seg = wav[start : start + self.segment]
            seg = F.pad(seg, (0, self.segment - seg.numel()))
            mel = self.mel(seg, center=True)[None].to(self.dtype)
            feats.append(self.model.audio_adapter(encode_mel(self.model, mel))[0])
        return torch.cat(feats)[: frames_for(audio.size)]


class StreamingEncoder:
    """One 160 ms chunk in, one adapter frame out, by re-encoding a rolling window (see module doc)."""

    def __init__(self, model: CovoAudioModel, device: torch.device, dtype: torch.dtype, window_steps: int) -> None:
        limit = model.encoder.config.max_source_positions * 2 // MEL_PER_STEP
        if window_steps > limit:
            raise ValueError(f"encoder window of {window_steps} steps exceeds the encoder's {limit}")
        if window_steps * MEL_PER_STEP // 2 < ADAPTER_SPAN:
            raise ValueError("the encoder window must cover at least 2 steps")
        self.model = model
        self.dtype = dtype
        self.mel = LogMel(model.encoder.config.num_mel_bins, device)
        self.window_steps = window_steps
        self.audio = torch.zeros(window_steps * STEP_SAMPLES + N_FFT - HOP, device=device)  # oldest first
        self._shifted = torch.empty(self.audio.numel() - STEP_SAMPLES, device=device)  # reused each step
        self._staging = torch.zeros(STEP_SAMPLES, pin_memory=device.type == "cuda")

    def reset(self) -> None:
        self.audio.zero_()

    def push(self, chunk: np.ndarray) -> None:
        """Append the newest 160 ms (host -> device, no sync)."""
        self._staging.copy_(torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)))
        self._shifted.copy_(self.audio[STEP_SAMPLES:])  # overlapping shift via a preallocated buffer
        self.audio[:-STEP_SAMPLES].copy_(self._shifted)
        self.audio[-STEP_SAMPLES:].copy_(self._staging, non_blocking=True)

    def encode(self) -> torch.Tensor:
        """The newest frame, (hidden,) in the LLM dtype; static shapes throughout."""
        mel = self.mel(self.audio, center=False)[None].to(self.dtype)
        hidden = encode_mel(self.model, mel)
        return self.model.audio_adapter(hidden[:, -ADAPTER_SPAN:])[0, -1]
