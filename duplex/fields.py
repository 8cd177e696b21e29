"""Config field helpers: declare a field (`opt`, `section`) and validate a mapping against a dataclass (`build`).

A leaf module (it imports only `duplex.errors`), so every config section, the root `duplex.config`
and each backend's own section can use it without importing one another. Validation lives here,
once, so no field can forget a check: types, choices, ranges, and finiteness (a YAML `.nan` or
`.inf` is refused in every float field, whatever its range, because NaN compares false with both
bounds and would slip through a range check).
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
import typing
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from duplex.errors import ConfigError


def opt(default: Any, doc: str, *, lo: float | None = None, hi: float | None = None,
        choices: tuple[Any, ...] | None = None) -> Any:
    """A config field: default, doc and bounds in one place."""
    meta = {"doc": doc, "lo": lo, "hi": hi, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type, doc: str) -> Any:
    """A nested config section (a dataclass whose fields are `opt`s)."""
    return field(default_factory=cls, metadata={"doc": doc, "section": True})


def build(cls: type, data: Mapping[str, Any], *, source: str = "config", prefix: str = "") -> Any:
    """Validate `data` against dataclass `cls`; unknown keys and bad values name themselves."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: '{prefix.rstrip('.')}' must be a mapping, got {show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("hidden")}
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in fields:
            near = _nearest(str(key), list(fields))
            hint = f" (did you mean '{prefix}{near}'?)" if near else ""
            raise ConfigError(f"{source}: unknown key '{_cut(name, 60)}'{hint}")
        f = fields[key]
        if f.metadata.get("section"):
            values[key] = build(hints[key], value if value is not None else {}, source=source, prefix=name + ".")
        else:
            values[key] = check_value(name, value, hints[key], f.metadata, source)
    return cls(**values)


def check_value(name: str, value: Any, hint: Any, meta: Mapping[str, Any], source: str = "config") -> Any:
    """`value` checked (and normalised: int -> float, number -> str) against a field's type and metadata."""
    bad = f"{source}: {name} = {show(value)}"
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        hint = args[0]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{bad} is not true/false")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{bad} is not a whole number")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{bad} is not a number")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{bad} is not a finite number")
    elif hint is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{bad} is not a string")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{bad} is not one of {', '.join(map(str, choices))}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise ConfigError(f"{bad} is out of range [{lo}, {hi}]")
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as nested plain dicts (hidden fields left out)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        if f.metadata.get("hidden"):
            continue
        value = getattr(cfg, f.name)
        out[f.name] = to_dict(value) if dataclasses.is_dataclass(value) else value
    return out


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 2, 4, 4, 40, 40, 40


def show(value: Any) -> str:
    """A value for an error message: a bounded repr (never the whole of a huge value), cut to 40 characters."""
    return _cut(_REPR.repr(value), 40)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _nearest(key: str, names: list[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(key[:100], names, n=1, cutoff=0.6)
    return found[0] if found else None
