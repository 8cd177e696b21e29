"""Which backbones exist: one registry, name -> how to load it.

Each backend registers beside its config section (`register(...)` in its torch-free `config.py`;
the VAD policy beside `PolicyConfig` in `duplex.config`). `duplex.config` derives the `backbone`
key's choices and doc from the registry and `load_model` dispatches through it, so adding a backend
adds one entry, not a branch in an `if` chain plus a hand-kept tuple of names.

A loader takes only the config sections its entry names (its own first) and a path resolver for
paths written relative to the config file, never the whole root config:

    load_covo(covo: CovoConfig, policy: PolicyConfig, tiny_fd: TinyFdConfig, *, resolve: Resolver) -> Model
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from duplex.backbones.base import Model

Resolver = Callable[[str], Path]  # a path from the config -> a path relative to the config file's folder


@dataclass(frozen=True)
class BackboneEntry:
    name: str  # the value of the `backbone:` key
    doc: str  # a few words for the config reference
    loader: str  # "package.module:function", imported only when this backbone is chosen
    sections: tuple[str, ...]  # the root config's sections passed to the loader, its own first

    def load(self, root: Any, resolve: Resolver) -> Model:
        """Import the loader and call it with the sections it asked for."""
        module, _, func = self.loader.partition(":")
        fn = getattr(importlib.import_module(module), func)
        return fn(*(getattr(root, s) for s in self.sections), resolve=resolve)


REGISTRY: dict[str, BackboneEntry] = {}


def register(entry: BackboneEntry) -> BackboneEntry:
    """Add a backbone; registering the same name twice with a different entry is a programming error."""
    known = REGISTRY.setdefault(entry.name, entry)
    if known != entry:
        raise ValueError(f"backbone {entry.name!r} is already registered as {known.loader}")
    return entry


def choices() -> tuple[str, ...]:
    """The registered names, sorted (so the order does not depend on which module was imported first)."""
    return tuple(sorted(REGISTRY))


def describe() -> str:
    """'name (doc), ...' for the `backbone` key's doc."""
    return ", ".join(f"{name} ({REGISTRY[name].doc})" for name in choices())
