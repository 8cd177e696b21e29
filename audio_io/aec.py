"""Acoustic echo cancellation: remove the model's own voice from the microphone.

On speakers (no headset) the microphone hears the model, and a naive runtime takes that for the
user and interrupts itself. The canceller gets what the speaker played (the reference, 16 kHz,
lined up with the microphone by the live input) and subtracts its echo, 10 ms at a time.

Two engines, compared by `bench/aec_compare.py` (ERLE, false barge-ins):

- `webrtc`: WebRTC's AEC3 through the prebuilt `livekit` wheel (`rtc.AudioProcessingModule`);
  it estimates the echo delay itself and suppresses the residual. The default when installed.
- `speex`: libspeexdsp's MDF canceller plus its residual echo suppressor, through ctypes (the
  library ships with PulseAudio on Debian: `libspeexdsp1`).

`make_aec("auto")` picks the first one available; `none` passes audio through untouched (the
name is `none`, not `off`, because YAML reads a bare `off` as false). Every real canceller is
wrapped in `audio_io.echo_path.GatedCanceller`, which measures the echo path and bypasses the
canceller when there is none (a headset), so its suppressor cannot eat the user's barge-in.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from enum import StrEnum
from typing import Protocol

import numpy as np

from audio_io.errors import AudioValueError, NotInstalledError
from audio_io.format import SAMPLE_RATE

FRAME = SAMPLE_RATE // 100  # 10 ms: the frame both engines work on


class AecKind(StrEnum):
    AUTO = "auto"
    WEBRTC = "webrtc"
    SPEEX = "speex"
    NONE = "none"


CHOICES = tuple(k.value for k in AecKind)


class EchoCanceller(Protocol):
    name: str

    def process(self, near: np.ndarray, far: np.ndarray, out: np.ndarray) -> None:
        """Cancel `far` (10 ms the speaker played) from `near` (10 ms of microphone) into `out`."""
        ...

    def reset(self) -> None: ...


def _to_pcm(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.multiply(np.clip(x, -1.0, 32767 / 32768), 32768.0, out=out, casting="unsafe")
    return out


class PassThrough:
    name = "none"

    def process(self, near: np.ndarray, far: np.ndarray, out: np.ndarray) -> None:
        out[:] = near

    def reset(self) -> None:
        pass


class WebRtcAec:
    """WebRTC AEC3 (with its high-pass filter) via livekit's audio processing module."""

    name = "webrtc"

    def __init__(self, delay_ms: int = 0) -> None:
        try:
            from livekit import rtc
        except ImportError as exc:
            raise NotInstalledError("webrtc echo cancellation needs the livekit package: pip install livekit") from exc
        self._rtc = rtc
        self._delay_ms = delay_ms
        self._near = np.zeros(FRAME, dtype=np.int16)
        self._far = np.zeros(FRAME, dtype=np.int16)
        self.reset()

    def reset(self) -> None:
        self._apm = self._rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
        self._near_frame = self._rtc.AudioFrame(bytearray(FRAME * 2), SAMPLE_RATE, 1, FRAME)
        self._far_frame = self._rtc.AudioFrame(bytearray(FRAME * 2), SAMPLE_RATE, 1, FRAME)
        self._near_view = np.frombuffer(self._near_frame._data, dtype=np.int16)
        self._far_view = np.frombuffer(self._far_frame._data, dtype=np.int16)
        if self._delay_ms:
            self._apm.set_stream_delay_ms(self._delay_ms)

    def process(self, near: np.ndarray, far: np.ndarray, out: np.ndarray) -> None:
        self._far_view[:] = _to_pcm(far, self._far)
        self._apm.process_reverse_stream(self._far_frame)
        self._near_view[:] = _to_pcm(near, self._near)
        self._apm.process_stream(self._near_frame)
        np.multiply(self._near_view, 1 / 32768, out=out)


class _Speex:
    """The libspeexdsp entry points we use, typed once."""

    SET_SAMPLING_RATE = 24  # speex_echo.h
    SET_ECHO_STATE = 24  # speex_preprocess.h
    SET_DENOISE = 0

    def __init__(self) -> None:
        path = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            raise NotInstalledError("speex echo cancellation needs libspeexdsp: apt-get install libspeexdsp1") from exc
        p, i, i16 = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int16)
        for name, args, res in (
            ("speex_echo_state_init", [i, i], p), ("speex_echo_state_destroy", [p], None),
            ("speex_echo_ctl", [p, i, p], i), ("speex_echo_cancellation", [p, i16, i16, i16], None),
            ("speex_preprocess_state_init", [i, i], p), ("speex_preprocess_state_destroy", [p], None),
            ("speex_preprocess_ctl", [p, i, p], i), ("speex_preprocess_run", [p, i16], i),
        ):
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, res
        self.lib = lib


class SpeexAec:
    """Speex MDF echo canceller (adaptive filter of `tail_ms`) + residual echo suppression."""

    name = "speex"

    def __init__(self, tail_ms: int = 300) -> None:
        self._speex = _Speex()
        self._taps = SAMPLE_RATE * tail_ms // 1000
        self._near = np.zeros(FRAME, dtype=np.int16)
        self._far = np.zeros(FRAME, dtype=np.int16)
        self._out = np.zeros(FRAME, dtype=np.int16)
        self._ptr = [a.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)) for a in (self._near, self._far, self._out)]
        self._echo: int | None = None
        self._pre: int | None = None
        self.reset()

    def reset(self) -> None:
        self.close()
        lib = self._speex.lib
        self._echo = lib.speex_echo_state_init(FRAME, self._taps)
        self._pre = lib.speex_preprocess_state_init(FRAME, SAMPLE_RATE)
        rate, off = ctypes.c_int(SAMPLE_RATE), ctypes.c_int(0)
        lib.speex_echo_ctl(self._echo, _Speex.SET_SAMPLING_RATE, ctypes.byref(rate))
        lib.speex_preprocess_ctl(self._pre, _Speex.SET_ECHO_STATE, ctypes.c_void_p(self._echo))
        lib.speex_preprocess_ctl(self._pre, _Speex.SET_DENOISE, ctypes.byref(off))

    def process(self, near: np.ndarray, far: np.ndarray, out: np.ndarray) -> None:
        _to_pcm(near, self._near)
        _to_pcm(far, self._far)
        lib = self._speex.lib
        lib.speex_echo_cancellation(self._echo, *self._ptr)
        lib.speex_preprocess_run(self._pre, self._ptr[2])
        np.multiply(self._out, 1 / 32768, out=out)

    def close(self) -> None:
        lib = self._speex.lib
        if self._echo:
            lib.speex_echo_state_destroy(self._echo)
        if self._pre:
            lib.speex_preprocess_state_destroy(self._pre)
        self._echo = self._pre = None

    def __del__(self) -> None:
        self.close()


def make_aec(kind: AecKind | str, *, gated: bool = True) -> EchoCanceller:
    """The canceller `kind` names; `auto` = webrtc if livekit is installed, else speex, else none.

    `gated` (the default) wraps it in the echo-path gate; `False` gives the bare engine (benches).
    NotInstalledError when a named engine is missing (`auto` then tries the next one; any other
    error is a real failure and propagates); AudioValueError for a name that is not an AecKind.
    """
    from audio_io.echo_path import GatedCanceller

    try:
        kind = AecKind(kind)
    except ValueError as exc:
        raise AudioValueError(f"unknown echo canceller {kind!r}: expected one of {', '.join(CHOICES)}") from exc
    if kind is AecKind.NONE:
        return PassThrough()
    wrap = GatedCanceller if gated else (lambda inner: inner)
    if kind is AecKind.WEBRTC:
        return wrap(WebRtcAec())
    if kind is AecKind.SPEEX:
        return wrap(SpeexAec())
    for make in (WebRtcAec, SpeexAec):
        try:
            return wrap(make())
        except NotInstalledError:
            continue
    return PassThrough()


def erle_db(near: np.ndarray, cleaned: np.ndarray) -> float:
    """Echo return loss enhancement: how much quieter the echo got (call on far-end-only audio)."""
    e_in = float(np.mean(np.square(near, dtype=np.float64)))
    e_out = float(np.mean(np.square(cleaned, dtype=np.float64)))
    return 10.0 * float(np.log10(max(e_in, 1e-20) / max(e_out, 1e-20)))
