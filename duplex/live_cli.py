"""Live sessions on sound devices (arrives with the live-audio work)."""

from __future__ import annotations

import argparse

from duplex.config import Config
from duplex.errors import DeviceError


def run_live(cfg: Config, args: argparse.Namespace) -> int:
    raise DeviceError("live sessions are not available in this build yet: use --input IN.wav --output OUT.wav")
