"""Config -> audio objects: the one place duplex maps its config keys onto `audio_io` factories.

`audio_io` takes plain values and raises its own errors worded in audio terms; here the config key
that chose the value is known, so a bad or unavailable choice becomes a `ConfigError` naming the key
(chained `from` the audio error). Device and file errors that are not about a config value pass
through unchanged: they already name their device or file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from audio_io.errors import AudioValueError, DeviceNotFoundError, NotInstalledError
from duplex.errors import ConfigError

if TYPE_CHECKING:
    from audio_io.aec import EchoCanceller
    from audio_io.devices import DeviceInfo, Direction
    from audio_io.vad import Vad
    from duplex.config import LiveConfig, PolicyConfig

def vad_from_config(policy: PolicyConfig) -> Vad:
    """`policy.vad` and `policy.webrtc_aggressiveness` as a detector."""
    return detector(policy.vad, policy.webrtc_aggressiveness, "policy")


def detector(kind: str, aggressiveness: int, section: str) -> Vad:
    """The voice detector `kind` that the config section `section` names (its `vad` key and, for
    WebRTC's, its `webrtc_aggressiveness`), with a config error naming the key when it cannot be had."""
    from audio_io.vad import VadKind, make_vad

    try:
        return make_vad(kind, aggressiveness)
    except NotInstalledError as exc:
        raise ConfigError(f"{section}.vad = {kind} needs the 'silero' extra: pip install 'duplex[silero]'") from exc
    except AudioValueError as exc:
        if kind in {k.value for k in VadKind}:
            key, value = f"{section}.webrtc_aggressiveness", aggressiveness
        else:
            key, value = f"{section}.vad", kind
        raise ConfigError(f"{key} = {value!r}: {exc}") from exc


def aec_from_config(live: LiveConfig) -> EchoCanceller:
    """`live.aec` as an echo canceller (`auto` falls back to none when neither engine is installed)."""
    from audio_io.aec import make_aec

    try:
        return make_aec(live.aec)
    except (NotInstalledError, AudioValueError) as exc:
        raise ConfigError(f"live.aec = {live.aec}: {exc}") from exc


def device_from_config(live: LiveConfig, direction: Direction) -> DeviceInfo:
    """`live.input_device` / `live.output_device` (set by --input-device / --output-device) as a device."""
    from audio_io.devices import find_device

    spec = live.input_device if direction == "input" else live.output_device
    try:
        return find_device(spec, direction)
    except DeviceNotFoundError as exc:
        raise ConfigError(f"live.{direction}_device = {spec!r}: {exc} "
                          f"(choose with --{direction}-device IDX|NAME; see --list-devices)") from exc
