"""The cue model: the microphone's last five seconds -> what the user's last utterance was.

Three convolutions with batch norm (two strided: 40 ms per step; without the norm the GRU sat at
chance for epochs) and a one-way GRU whose final state is classified: it reads the window in time
order, so what it says is about the end, as the turn-taking decision needs it to be. About 200 k
parameters; one window costs about 7 ms on one thread.
"""

from __future__ import annotations

import torch
from torch import nn

from duplex.backbones.tiny_fd.features import N_MELS
from duplex.cue.text import CLASSES


class CueNet(nn.Module):
    def __init__(self, channels: int = 96, hidden: int = 128) -> None:
        super().__init__()
        self.shape = {"channels": channels, "hidden": hidden}
        self.conv = nn.Sequential(
            nn.Conv1d(N_MELS, channels, 5, stride=2, padding=2), nn.BatchNorm1d(channels), nn.ReLU(),
            nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.BatchNorm1d(channels), nn.ReLU(),
            nn.Conv1d(channels, hidden, 3, padding=2, dilation=2), nn.BatchNorm1d(hidden), nn.ReLU(),
        )
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, len(CLASSES))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, N_MELS, frames) log-mel -> (B, classes) logits."""
        x = self.conv(mel).transpose(1, 2)
        _, last = self.gru(x)
        return self.head(last[-1])
