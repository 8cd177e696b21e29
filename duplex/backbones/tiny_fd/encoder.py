"""The streaming audio encoder and adapter: mel frames (100 Hz) -> one embedding per 160 ms step.

Shaped like Covo-Audio's front end at toy scale: a causal conv encoder that halves the frame rate
(100 -> 50 Hz, Whisper's rate), then an adapter of three stride-2 layers (50 -> 6.25 Hz), then a
projection to the backbone's width. Every conv is causal and carries its own left context, so
feeding one chunk at a time gives exactly the one-shot result (tested).

Input channels are the microphone's mel frames and, beside them, the mel frames of what the model
itself was playing at that time (its reference signal): with both, the network can learn that
sound explained by its own voice is echo, not the user.
"""

from __future__ import annotations

import torch
from torch import nn

from duplex.backbones.tiny_fd.features import N_MELS


class CausalConv(nn.Module):
    """Conv1d whose output t sees inputs up to the last one of its stride group, never later."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        assert kernel >= stride
        self.conv = nn.Conv1d(cin, cout, kernel, stride)
        self.left = kernel - stride

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = x.new_zeros(x.shape[0], x.shape[1], self.left)
        full = torch.cat([state, x], dim=-1)
        new_state = full[..., full.shape[-1] - self.left:]
        return self.conv(full), new_state


class StreamingEncoder(nn.Module):
    """(B, 2 * N_MELS, 16 S) frames -> (B, S, hidden) step embeddings."""

    def __init__(self, hidden: int, width: int = 128) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            CausalConv(2 * N_MELS, width, 3, 1),
            CausalConv(width, width, 3, 2),  # encoder: 100 -> 50 Hz
            CausalConv(width, width, 4, 2),  # adapter: 50 -> 25 -> 12.5 -> 6.25 Hz
            CausalConv(width, width, 4, 2),
            CausalConv(width, width, 4, 2),
        ])
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, hidden)

    def forward(self, x: torch.Tensor, states: list[torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        new_states = []
        for i, layer in enumerate(self.layers):
            x, s = layer(x, None if states is None else states[i])
            x = torch.nn.functional.gelu(x)
            new_states.append(s)
        return self.proj(self.norm(x.transpose(1, 2))), new_states
