"""YAML with bounds: a small file can neither explode through aliases nor recurse without limit.

`yaml.safe_load` builds aliases as shared objects, but everything that walks the result (merging,
validation, an error message's repr) sees the *expanded* tree: nine levels of nine aliases in
700 bytes is 9**9 values. A 5000-deep list overflows the composer's recursion (and makes the
scanner quadratic). This loader counts while scanning and composing, before anything is
constructed: every node's expanded size (an alias counts as the whole node it names) and the
nesting depth. Past a limit it stops with `YamlLimitError`, a `yaml.YAMLError` whose message says
which limit and where, and never shows the value.

`read_file` reads a config or scenario file within a size bound and maps every way it can fail
(missing, not a file, too large, unreadable, not UTF-8, malformed or over the bounds) to one
line naming the file (and the line), raised as the caller's error class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_DEPTH = 64  # nesting levels; the deepest config key is three levels down
MAX_VALUES = 100_000  # values in the fully expanded document (every alias expanded)
MAX_FILE_BYTES = 1 << 20  # a config or scenario is a few kilobytes: a huge file is never read whole


class YamlLimitError(yaml.YAMLError):
    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark

    def __str__(self) -> str:
        where = f"line {self.problem_mark.line + 1}: " if self.problem_mark else ""
        return f"{where}{self.problem}"


class BoundedSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents nested deeper than `max_depth` or expanding past `max_values`."""

    max_depth = MAX_DEPTH
    max_values = MAX_VALUES

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values in its expansion; nodes live as long as the tree

    def fetch_flow_collection_start(self, token_class: type) -> None:
        # The scanner's simple-key bookkeeping costs O(depth) per token: stop deep `[[[...` here,
        # while scanning, before it turns quadratic (the composer's check below comes too late).
        if self.flow_level >= self.max_depth:
            raise YamlLimitError(f"nested deeper than {self.max_depth} levels", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        mark = self.peek_event().start_mark
        if self._depth >= self.max_depth:
            raise YamlLimitError(f"nested deeper than {self.max_depth} levels", mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        size = self._sizes.get(id(node))
        if size is None:  # a node just composed (an alias returns one composed earlier, already sized)
            size = 1 + sum(self._size_of(child, mark) for child in _children(node))
            self._sizes[id(node)] = size
        if size > self.max_values:
            raise YamlLimitError(f"aliases expand to more than {self.max_values} values", mark)
        return node

    def _size_of(self, node: yaml.Node, mark: yaml.Mark) -> int:
        size = self._sizes.get(id(node))
        if size is None:  # an alias to a node still being composed: the value would contain itself
            raise YamlLimitError("an alias refers to a value that contains it", mark)
        return size


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def safe_load(text: str) -> Any:
    """`yaml.safe_load` within MAX_DEPTH and MAX_VALUES (YamlLimitError past them)."""
    loader = BoundedSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def compose(text: str) -> yaml.Node | None:
    """`yaml.compose` within the same bounds (for callers that map nodes back to lines)."""
    loader = BoundedSafeLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


@dataclass(frozen=True, slots=True)
class Document:
    """A YAML document parsed once: its node tree (for line numbers) and the data built from it."""

    node: yaml.Node | None
    data: Any


def load_document(text: str) -> Document:
    """Compose once within the bounds, then build the data from that node tree (no second parse)."""
    loader = BoundedSafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return Document(node, data)


def read_file(path: Path, *, error: Callable[[str], Exception], what: str) -> Document:
    """The YAML file at `path` (a `what`: "config file", "scenario file"), bounded in size, nesting
    and alias expansion; any failure is `error(one line)`: `s.yaml:3: malformed YAML (...)`."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise error(f"{path}: not a regular file")
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise error(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB, not a {what}")
        text = raw.decode()
    except FileNotFoundError as exc:
        raise error(f"{path}: no such {what}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc.__class__.__name__})") from exc
    try:
        return load_document(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise error(f"{path}:{line}: malformed YAML ({getattr(exc, 'problem', None) or exc})") from exc
