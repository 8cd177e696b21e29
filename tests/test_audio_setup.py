"""audio_io raises its own errors in audio terms; duplex maps them to ConfigErrors naming the config key."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import audio_io.aec as aec
import audio_io.devices as devices
import audio_io.vad as vad
from audio_io.errors import AudioError, AudioValueError, DeviceNotFoundError, NotInstalledError
from duplex.audio_setup import aec_from_config, device_from_config, vad_from_config
from duplex.config import LiveConfig, PolicyConfig
from duplex.errors import USER_ERRORS, ConfigError

DEVICES = [
    {"index": 0, "name": "HDA Intel PCH (hw:0,0)", "hostapi": 0, "max_input_channels": 2,
     "max_output_channels": 2, "default_samplerate": 48000.0},
    {"index": 1, "name": "pulse", "hostapi": 0, "max_input_channels": 32, "max_output_channels": 32,
     "default_samplerate": 44100.0},
]


@pytest.fixture
def fake_sd(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = SimpleNamespace(PortAudioError=RuntimeError, query_devices=lambda: DEVICES,
                         query_hostapis=lambda: [{"name": "ALSA"}], default=SimpleNamespace(device=[-1, 1]))
    monkeypatch.setattr(devices, "sounddevice", lambda: sd)


def missing(*_: object, **__: object) -> None:
    raise NotInstalledError("engine X is not installed")


def test_factories_take_enum_values_and_refuse_unknown_names_in_audio_terms() -> None:
    assert aec.make_aec(aec.AecKind.NONE).name == "none"
    assert aec.make_aec("none").name == "none"
    with pytest.raises(AudioValueError, match="unknown echo canceller 'off'") as info:
        aec.make_aec("off")
    assert isinstance(info.value, ValueError) and "live." not in str(info.value)
    with pytest.raises(AudioValueError, match="unknown voice activity detector 'dnn'"):
        vad.make_vad("dnn")
    with pytest.raises(AudioValueError, match="aggressiveness"):
        vad.make_vad(vad.VadKind.WEBRTC, 7)


def test_auto_aec_falls_back_only_when_an_engine_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aec, "WebRtcAec", missing)
    monkeypatch.setattr(aec, "SpeexAec", missing)
    assert aec.make_aec("auto").name == "none"

    def broken() -> None:
        raise ConfigError("a real failure, not 'not installed'")

    monkeypatch.setattr(aec, "WebRtcAec", broken)
    with pytest.raises(ConfigError, match="real failure"):  # the old code swallowed it and fell back
        aec.make_aec("auto")


def test_duplex_names_the_config_key_and_chains_the_audio_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aec, "WebRtcAec", missing)
    with pytest.raises(ConfigError, match=r"^live\.aec = webrtc: engine X is not installed$") as info:
        aec_from_config(LiveConfig(aec="webrtc"))
    assert isinstance(info.value.__cause__, NotInstalledError)

    monkeypatch.setattr(vad, "SileroVad", missing)
    with pytest.raises(ConfigError, match=r"policy\.vad = silero needs the 'silero' extra: .*'duplex\[silero\]'"):
        vad_from_config(PolicyConfig(vad="silero"))
    with pytest.raises(ConfigError, match=r"^policy\.webrtc_aggressiveness = 9: webrtcvad aggressiveness 9"):
        vad_from_config(PolicyConfig(webrtc_aggressiveness=9))


def test_tiny_fds_detector_that_cannot_be_had_is_an_error_naming_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tiny_fd.vad: silero` without the extra fails when the model loads, naming tiny_fd's key, not
    at the first conversation's first step."""
    from duplex.backbones.tiny_fd.config import TinyFdConfig
    from duplex.backbones.tiny_fd.loader import rule_settings

    monkeypatch.setattr(vad, "SileroVad", missing)
    with pytest.raises(ConfigError, match=r"^tiny_fd\.vad = silero needs the 'silero' extra: .*'duplex\[silero\]'"):
        rule_settings(TinyFdConfig(vad="silero", cues=False))
    assert rule_settings(TinyFdConfig(cues=False)).vad == "webrtc"


def test_device_lookup_errors_name_the_key_and_the_flag(fake_sd: None) -> None:
    with pytest.raises(DeviceNotFoundError) as info:
        devices.find_device("usb", "input")
    assert "--" not in str(info.value)  # audio_io knows no command-line flags
    with pytest.raises(ConfigError, match=r"live\.input_device = 'usb': microphone device 'usb'.*--list-devices"):
        device_from_config(LiveConfig(input_device="usb"), "input")
    with pytest.raises(ConfigError, match=r"live\.input_device = '': no default microphone.*--input-device"):
        device_from_config(LiveConfig(), "input")
    assert device_from_config(LiveConfig(), "output").name == "pulse"


def test_audio_errors_are_user_errors() -> None:
    assert AudioError in USER_ERRORS and issubclass(DeviceNotFoundError, AudioError)
