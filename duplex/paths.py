"""Paths first, then files: every output a command will write is checked before anything is opened.

A user's recording must never be overwritten by the reply, and a typo in one output path must
never cost another output that was already there. So each command resolves all of its outputs
(symlinks and hard links too) up front and refuses, with one line naming the option and the
path, an output that is also an input or another output, whose folder is missing or not
writable, that is a device or a folder, or whose extension the writer does not produce. Only
then are files created.
"""

from __future__ import annotations

import argparse
import enum
import glob
import math
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from duplex.errors import DuplexError

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif", ".m4a", ".au", ".raw"})
STREAM_NAMES = frozenset({"-", "/dev/stdin"})
RECORDED = ("mic.wav", "mic_raw.wav", "speaker.wav", "events.jsonl")  # what --record DIR writes


class PathError(DuplexError):
    """An output path that cannot be written safely (named with its option)."""


class Kind(enum.Enum):
    WAV = "a WAV file"  # the writer writes 16-bit WAV only
    TEXT = "a text file"  # JSON lines, JSON, XML: any name but an audio one
    FOLDER = "a folder"  # created if missing (with its parents)


@dataclass(frozen=True, slots=True)
class Output:
    option: str  # the flag or key that named it, for the message
    path: Path
    kind: Kind
    inside: tuple[str, ...] = ()  # FOLDER: the files written in it (other paths there are left alone)

    def targets(self, resolved: Path) -> list[Path]:
        return [resolved, *(resolved / name for name in self.inside)]


def check_outputs(outputs: Sequence[Output], inputs: Sequence[tuple[str, Path]] = ()) -> None:
    """Raise PathError (one line) unless every output can be written without harming anything."""
    seen: list[tuple[Output, Path]] = []
    resolved_inputs = [(option, path, _resolve(path)) for option, path in inputs if not _is_stream(path)]
    for out in outputs:
        target = _resolve(out.path)
        for option, path, source in resolved_inputs:
            if any(_same(t, source) for t in out.targets(target)):
                raise PathError(f"{out.option} {out.path}: is the input {option} {path}; "
                                "writing it would destroy the input (choose another name)")
        for other, other_target in seen:
            if any(_same(a, b) for a in out.targets(target) for b in other.targets(other_target)):
                raise PathError(f"{out.option} {out.path}: is also {other.option} {other.path}; "
                                "each output needs its own file")
        seen.append((out, target))
    for out, target in seen:
        _check_kind(out, target)
        _check_writable(out, target)


def chat_outputs(args: argparse.Namespace) -> None:
    """`duplex-chat` and `duplex-kiosk`: --output, --events and --record against --input (and --duration)."""
    duration = getattr(args, "duration", None)
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise PathError(f"--duration {duration:g}: must be a number of seconds above 0 "
                        "(leave it out to run until q or Ctrl-C)")
    outputs = []
    if getattr(args, "output", None) is not None:
        outputs.append(Output("--output", args.output, Kind.WAV))
    if getattr(args, "events", None) is not None:
        outputs.append(Output("--events", args.events, Kind.TEXT))
    if getattr(args, "record", None) is not None:
        written = RECORDED if getattr(args, "events", None) is None else RECORDED[:-1]  # --events replaces its log
        outputs.append(Output("--record", args.record, Kind.FOLDER, written))
    inputs = [("--input", args.input)] if getattr(args, "input", None) is not None else []
    check_outputs(outputs, inputs)


def _is_stream(path: Path) -> bool:
    return str(path) in STREAM_NAMES


def _resolve(path: Path) -> Path:
    try:
        return Path(os.path.realpath(Path(path).expanduser()))
    except (OSError, ValueError):  # a symlink loop or a NUL byte: leave it to the checks below
        return Path(os.path.abspath(path))


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False


def _check_kind(out: Output, target: Path) -> None:
    suffix = out.path.suffix.lower()
    if out.kind is Kind.WAV and suffix != ".wav":
        named = f"'{out.path.suffix}'" if out.path.suffix else "no extension"
        raise PathError(f"{out.option} {out.path}: has {named}; the speaker's output is written as WAV only "
                        "(name it .wav)")
    if out.kind is Kind.TEXT and suffix in AUDIO_SUFFIXES:
        raise PathError(f"{out.option} {out.path}: an audio file name for a text output "
                        "(events are JSON lines: name it .jsonl)")
    try:
        mode = target.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return  # not there yet (or under a file: the folder check names that)
    except OSError as exc:
        raise PathError(f"{out.option} {out.path}: cannot be checked ({exc.strerror or exc})") from exc
    if out.kind is Kind.FOLDER:
        if not stat.S_ISDIR(mode):
            raise PathError(f"{out.option} {out.path}: exists and is not a folder")
    elif stat.S_ISDIR(mode):
        raise PathError(f"{out.option} {out.path}: is a folder; name {out.kind.value} inside it")
    elif not stat.S_ISREG(mode):
        raise PathError(f"{out.option} {out.path}: is not a regular file (a device, pipe or socket); "
                        f"name {out.kind.value}")


def _check_writable(out: Output, target: Path) -> None:
    folder = target if out.kind is Kind.FOLDER else target.parent
    while out.kind is Kind.FOLDER and not folder.exists() and folder != folder.parent:
        folder = folder.parent  # created at the start: its nearest existing ancestor must take it
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise PathError(f"{out.option} {out.path}: its folder {folder} {what}")
    try:  # the only honest test (root, read-only mounts, ACLs): create a file there and remove it
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".duplex-probe-"):
            pass
    except OSError as exc:
        raise PathError(f"{out.option} {out.path}: its folder {folder} is not writable "
                        f"({exc.strerror or exc})") from exc
    if target.exists() and out.kind is not Kind.FOLDER:
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as exc:
            raise PathError(f"{out.option} {out.path}: cannot be written ({exc.strerror or exc})") from exc


def scenario_outputs(args: argparse.Namespace, scenarios: Sequence[Path]) -> None:
    """`duplex-test`: --report, --junit and --plot against the scenario files (and each other)."""
    outputs = [Output(option, path, kind) for option, path, kind in
               (("--report", args.report, Kind.TEXT), ("--junit", args.junit, Kind.TEXT),
                ("--plot", args.plot, Kind.FOLDER)) if path is not None]
    check_outputs(outputs, [("scenario", path) for path in scenarios])


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A partial file beside `path` to write to, renamed onto `path` when the block ends and removed
    if it fails: a reader (another run sharing a cache) sees the whole file or none."""
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def listed_files(listing: str, named: str) -> list[Path]:
    """The files a comma-separated list of names or globs gives, in order (a glob's matches sorted).
    A glob that matches nothing, or an empty name in the list (`named`: what the error calls the
    list), is one error; a plain name is passed on as it is, for its reader to say whether it is there."""
    paths: list[Path] = []
    for part in listing.split(","):
        if not part:
            raise PathError(f"{named}: an empty file name in the list")
        found = sorted(glob.glob(part)) if glob.has_magic(part) else [part]
        if not found:
            raise PathError(f"{part}: no file matches")
        paths += [Path(f) for f in found]
    return paths
