"""The architecture, enforced: the harness's layers are its folders (and a few modules at its
top), lowest first; every module imports only from its own layer and those below, and no two
modules import each other, even late. README.md's design section draws the same table.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"

LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"errors", "paths", "util", "progress"}),
    ("reading", {"reading"}),  # what the system under test said, read: no I/O
    ("build", {"build"}),
    ("guest", {"guest"}),
    ("machine", {"machine", "target"}),  # a real machine is a machine too
    ("faults", {"faults"}),
    ("recovery", {"recovery"}),
    ("report", {"report"}),
    ("campaigns", {"campaigns"}),
    ("top", {"cli", "plugin", "__main__", "__init__"}),
]


def _name(path: Path) -> str:
    rel = path.relative_to(HARNESS).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"] or ["__init__"]
    return ".".join(parts)


def _layer_of(module: str) -> int:
    """The layer of ``module``: its folder's, or its own at the top of the package."""
    for i, (_, members) in enumerate(LAYERS):
        if module.split(".")[0] in members:
            return i
    raise KeyError(module)


def _imports(path: Path) -> set[str]:
    """Harness modules ``path`` imports, anywhere in it but under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                   for stmt in node.body for n in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and (
                node.module == "harness" or node.module.startswith("harness.")):
            base = node.module.removeprefix("harness").removeprefix(".")
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                found.add(sub if (HARNESS / (sub.replace(".", "/") + ".py")).exists()
                          or (HARNESS / sub.replace(".", "/")).is_dir() else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("harness.") for a in node.names
                      if a.name.startswith("harness.")}
    return {m for m in found if m}


MODULES = {_name(p): p for p in sorted(HARNESS.rglob("*.py"))}
GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_has_a_layer_and_imports_only_downwards(module: str) -> None:
    here = _layer_of(module)
    upward = sorted(f"{m} ({LAYERS[_layer_of(m)][0]})" for m in GRAPH[module]
                    if _layer_of(m) > here)
    assert not upward, f"{module} ({LAYERS[here][0]}) imports upwards: {', '.join(upward)}"


def test_no_import_cycle() -> None:
    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for nxt in GRAPH.get(node, ()):
                if nxt == start:
                    return [*path, nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [c for m in sorted(GRAPH) if (c := cycle_from(m)) is not None]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
