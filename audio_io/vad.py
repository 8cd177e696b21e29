"""Voice activity detectors with one interface: speech probability of a 160 ms chunk.

Two implementations, chosen in config: WebRTC's GMM detector (tiny, fast, fooled by loud noise)
and Silero's neural detector (its ONNX model ships inside the `silero-vad` wheel; run here on
onnxruntime without torch), more robust under noise. `bench/vad_compare.py` compares them on the
same recordings.
"""

from __future__ import annotations

import importlib.util
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import numpy as np

from audio_io.errors import AudioValueError, NotInstalledError
from audio_io.format import SAMPLE_RATE, STEP_SAMPLES


class VadKind(StrEnum):
    WEBRTC = "webrtc"
    SILERO = "silero"


class Vad(Protocol):
    # whether the last chunk `speech_prob` heard ended in speech (its last frame or window): a voice
    # coming back at the end of a chunk mostly of silence, which its probability calls silent
    ends_in_speech: bool

    def speech_prob(self, chunk: np.ndarray) -> float:
        """Probability (0..1) that the 160 ms chunk holds speech."""
        ...

    def reset(self) -> None: ...


class WebRtcVad:
    """webrtcvad over 20 ms frames; the probability is the share of voiced frames."""

    FRAME = SAMPLE_RATE // 50

    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        self._aggressiveness = aggressiveness
        self._vad = webrtcvad.Vad(aggressiveness)
        self._pcm = np.zeros(STEP_SAMPLES, dtype=np.int16)
        self._scaled = np.zeros(STEP_SAMPLES, dtype=np.float32)
        self.ends_in_speech = False

    def speech_prob(self, chunk: np.ndarray) -> float:
        np.clip(chunk * 32767.0, -32768.0, 32767.0, out=self._scaled)
        self._pcm[:] = self._scaled
        raw = self._pcm.tobytes()
        step = self.FRAME * 2
        voiced = [self._vad.is_speech(raw[i : i + step], SAMPLE_RATE) for i in range(0, len(raw), step)]
        self.ends_in_speech = bool(voiced[-1])
        return sum(voiced) / len(voiced)

    def reset(self) -> None:
        """A fresh detector: webrtcvad adapts its noise estimates and hangover to what it has heard,
        so one that is reused must forget the last session, or that session decides this one's turns."""
        import webrtcvad

        self._vad = webrtcvad.Vad(self._aggressiveness)
        self.ends_in_speech = False


class SileroVad:
    """Silero VAD v5 (ONNX) over 32 ms windows with 64 samples of context; max over the chunk."""

    WINDOW = 512
    CONTEXT = 64

    def __init__(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise NotInstalledError(_SILERO_MISSING) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(_packaged_model()), options, providers=["CPUExecutionProvider"])
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self._buffer = np.zeros((1, self.CONTEXT + self.WINDOW), dtype=np.float32)
        self.reset()

    def speech_prob(self, chunk: np.ndarray) -> float:
        best = 0.0
        for start in range(0, chunk.size - self.WINDOW + 1, self.WINDOW):
            self._buffer[0, self.CONTEXT :] = chunk[start : start + self.WINDOW]
            out, self._state = self._session.run(
                None, {"input": self._buffer, "state": self._state, "sr": self._sr}
            )
            self._buffer[0, : self.CONTEXT] = self._buffer[0, -self.CONTEXT :]
            best = max(best, float(out[0, 0]))
            self.ends_in_speech = float(out[0, 0]) >= 0.5
        return best

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._buffer[:] = 0.0
        self.ends_in_speech = False


def make_vad(kind: VadKind | str, aggressiveness: int = 2) -> Vad:
    """The detector `kind` names (NotInstalledError if its package is missing, AudioValueError if unknown)."""
    try:
        kind = VadKind(kind)
    except ValueError as exc:
        choices = ", ".join(repr(k.value) for k in VadKind)
        raise AudioValueError(f"unknown voice activity detector {kind!r}: expected {choices}") from exc
    if not 0 <= aggressiveness <= 3:
        raise AudioValueError(f"webrtcvad aggressiveness {aggressiveness} is not in 0..3")
    if kind is VadKind.WEBRTC:
        return WebRtcVad(aggressiveness)
    return SileroVad()


_SILERO_MISSING = "the silero VAD needs silero-vad and onnxruntime: pip install silero-vad onnxruntime"


def _packaged_model() -> Path:
    """The ONNX file inside the silero-vad wheel, found without importing the package (its
    `__init__` imports torch: seconds, for a model that runs on onnxruntime alone)."""
    spec = importlib.util.find_spec("silero_vad")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    model = Path(folders[0]) / "data" / "silero_vad.onnx" if folders else None
    if model is None or not model.is_file():
        raise NotInstalledError(_SILERO_MISSING)
    return model
