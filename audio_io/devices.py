"""Finding sound devices: PortAudio present or not, devices listed, one chosen by index or name.

Kept apart from the streams so that `--list-devices` and the "what to install" messages work
without opening anything, and so that every failure is a `DeviceError` with one line that names
the culprit and the fix (`DeviceNotFoundError` when nothing matches what was asked for).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from audio_io.errors import DeviceError, DeviceNotFoundError

Direction = Literal["input", "output"]

INSTALL_PORTAUDIO = (
    "PortAudio is not installed: apt-get install libportaudio2 (Debian/Ubuntu), "
    "dnf install portaudio (Fedora) or brew install portaudio (macOS)"
)
INSTALL_SOUNDDEVICE = "sound devices need the sounddevice package: pip install sounddevice"
INSTALL_SOUND_SERVER = (
    "no {what} found: plug one in, or run a sound server "
    "(apt-get install pulseaudio libasound2-plugins; pulseaudio --start)"
)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float

    def channels(self, direction: Direction) -> int:
        return self.max_input_channels if direction == "input" else self.max_output_channels


def sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing module or a missing PortAudio into a DeviceError."""
    try:
        import sounddevice as sd
    except ImportError as exc:
        raise DeviceError(INSTALL_SOUNDDEVICE) from exc
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise DeviceError(INSTALL_PORTAUDIO) from exc
    return sd


def list_devices() -> list[DeviceInfo]:
    sd = sounddevice()
    try:
        raw = sd.query_devices()
        apis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise DeviceError(f"PortAudio cannot list devices ({exc})") from exc
    return [
        DeviceInfo(index=int(d["index"]), name=str(d["name"]), hostapi=str(apis[d["hostapi"]]["name"]),
                   max_input_channels=int(d["max_input_channels"]),
                   max_output_channels=int(d["max_output_channels"]),
                   default_samplerate=float(d["default_samplerate"]))
        for d in raw
    ]


def describe_devices(devices: list[DeviceInfo], default_in: int | None, default_out: int | None) -> str:
    """The `--list-devices` table: index, direction, name, host API, rate; defaults marked."""
    lines = ["  idx  in out  rate    name (host API)"]
    for d in devices:
        mark = ("<" if d.index == default_in else " ") + (">" if d.index == default_out else " ")
        lines.append(f"{mark}{d.index:3d}  {d.max_input_channels:2d} {d.max_output_channels:3d}  "
                     f"{d.default_samplerate:6.0f}  {d.name} ({d.hostapi})")
    lines.append("< default microphone, > default speaker")
    return "\n".join(lines)


def default_indices() -> tuple[int | None, int | None]:
    sd = sounddevice()
    pair = sd.default.device
    return tuple(int(i) if i is not None and int(i) >= 0 else None for i in pair)  # type: ignore[return-value]


def find_device(spec: str, direction: Direction) -> DeviceInfo:
    """The device `spec` names: '' = the system default, digits = an index, else a name substring.

    A substring matching several devices picks an exact (case-insensitive) name match if there is
    one, otherwise it is refused with the candidates listed, so a session never opens a surprise.
    """
    devices = [d for d in list_devices() if d.channels(direction) > 0]
    what = "microphone" if direction == "input" else "speaker"
    if not devices:
        raise DeviceError(INSTALL_SOUND_SERVER.format(what=what))
    spec = spec.strip()
    if not spec:
        default = default_indices()[0 if direction == "input" else 1]
        chosen = next((d for d in devices if d.index == default), None)
        if chosen is None:
            raise DeviceNotFoundError(f"no default {what}: choose an {direction} device by index or name")
        return chosen
    if spec.isdigit():
        chosen = next((d for d in devices if d.index == int(spec)), None)
        if chosen is None:
            raise DeviceNotFoundError(f"{what} device {spec}: no {direction} device with that index")
        return chosen
    matches = [d for d in devices if spec.lower() in d.name.lower()]
    exact = [d for d in matches if d.name.lower() == spec.lower()]
    if len(exact) == 1 or len(matches) == 1:
        return (exact or matches)[0]
    if not matches:
        raise DeviceNotFoundError(f"{what} device {spec!r}: no {direction} device name contains it")
    names = ", ".join(f"{d.index}: {d.name}" for d in matches[:6])
    raise DeviceNotFoundError(f"{what} device {spec!r} is ambiguous ({names}); give the index instead")


def rescan() -> None:
    """Make PortAudio list the devices afresh (it lists them once, at start): after a sound server
    restart or a replug. Only with no stream open: reinitialising closes every stream."""
    sd = sounddevice()
    try:
        sd._terminate()
        sd._initialize()
    except sd.PortAudioError as exc:
        raise DeviceError(f"PortAudio cannot list devices ({exc})") from exc


def close_stream(stream: object) -> None:
    """Abort and close a PortAudio stream; a failed device must not hide the session's result."""
    try:
        stream.abort()  # type: ignore[attr-defined]
        stream.close()  # type: ignore[attr-defined]
    except Exception:
        pass
