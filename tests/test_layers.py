"""Layers point one way: `audio_io` and `states` never import `duplex`, and no package has an import cycle.

The import graph is built from the source (AST), not by importing, so a lazy import hidden in a
function cannot slip through and nothing heavy (torch) is loaded:

- the layering test counts every import: module level, inside functions, under TYPE_CHECKING;
- the cycle test counts what runs while a module is being initialised: module-level imports,
  including those under `if`/`try` at module level, but not imports inside functions (they run
  after every module involved has finished loading) nor under `if TYPE_CHECKING:` (never run).
  Importing `a.b.c` also initialises the packages `a` and `a.b`, so those count as edges too
  (except the importer's own enclosing packages, which are always initialised before it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("duplex", "audio_io", "states")
STANDALONE = ("audio_io", "states")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, *, module_level: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements under `node`; with `module_level`, only those run while the module loads."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif module_level and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif module_level and isinstance(child, ast.If) and _is_type_checking(child.test):
            yield from (i for n in child.orelse for i in _walk_stmt(n, module_level=True))
        else:
            yield from _walk(child, module_level=module_level)


def _walk_stmt(node: ast.stmt, *, module_level: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _walk(node, module_level=module_level)


def imported_modules(name: str, path: Path, *, module_level: bool) -> set[str]:
    """Absolute names of the modules `path` imports (a `from X import y` that names a submodule counts as X.y)."""
    known = sources()
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _walk(ast.parse(path.read_text(), str(path)), module_level=module_level):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: resolve against this module's package
            package = name.split(".") if is_package else name.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        found.add(base)
        found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    return found


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules initialised by its module-level imports."""
    known = sources()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        own = set(_ancestors(name))
        edges: set[str] = set()
        for target in imported_modules(name, path, module_level=True):
            for m in [*_ancestors(target), target]:
                if m in known and m != name and m not in own:
                    edges.add(m)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None (iterative DFS with colours)."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                path = [n for n, _ in stack]
                return [*path[path.index(child):], child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
    return None


@pytest.mark.parametrize("package", STANDALONE)
def test_standalone_packages_never_import_duplex(package: str) -> None:
    offenders = []
    for name, path in sources().items():
        if name.split(".")[0] != package:
            continue
        for target in imported_modules(name, path, module_level=False):
            if target == "duplex" or target.startswith("duplex."):
                offenders.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not offenders, "\n".join(offenders)


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50 and graph["duplex.config"], "the graph was not built"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The walkers see function-level and relative imports, and the cycle finder finds a cycle."""
    src = tmp_path / "m.py"
    src.write_text("import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import duplex.engine\n"
                   "def f():\n    from duplex.errors import ConfigError\n")
    assert {"duplex.errors", "duplex.engine"} <= imported_modules("audio_io.m", src, module_level=False)
    assert imported_modules("audio_io.m", src, module_level=True) == {"os", "typing"}
    rel = tmp_path / "r.py"
    rel.write_text("from .format import SAMPLE_RATE\nfrom . import ring\n")
    assert {"audio_io.format", "audio_io.ring"} <= imported_modules("audio_io.r", rel, module_level=True)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
