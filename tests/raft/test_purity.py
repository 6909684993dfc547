"""The Raft core is pure: no I/O, no clocks, no unseeded randomness, no outer layers.

An import contract checked on the source (AST), so it holds for every module of
`controlplane/raft`, `rafttest` included, whether or not a test imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import controlplane.raft

CORE = Path(controlplane.raft.__file__).parent
FORBIDDEN = {
    "asyncio",
    "grpc",
    "socket",
    "time",
    "os",
    "threading",
    "subprocess",
    "selectors",
    "signal",
    "shutil",
    "pathlib",
    "io",
    "tempfile",
    "datetime",
}
# The core may import only itself and these parts of the standard library.
ALLOWED_STDLIB = {
    "__future__",
    "argparse",
    "bisect",
    "collections",
    "contextlib",
    "dataclasses",
    "enum",
    "functools",
    "heapq",
    "itertools",
    "logging",
    "math",
    "random",
    "re",
    "shlex",
    "sys",
    "typing",
    "zlib",
}
SOURCES = sorted(CORE.rglob("*.py"))


def _imports(tree: ast.AST) -> list[tuple[int, str, int]]:
    """(line, top-level module, relative level) for every import in the tree."""
    found: list[tuple[int, str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name.split(".")[0], 0) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, (node.module or "").split(".")[0], node.level))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_nothing_impure(path: Path) -> None:
    """controlplane/raft imports no asyncio, grpc, socket, time, os or other I/O module."""
    tree = ast.parse(path.read_text(), str(path))
    for line, module, level in _imports(tree):
        where = f"{path.relative_to(CORE.parent.parent)}:{line}"
        if level > 0:
            continue  # relative: inside controlplane.raft (checked below)
        assert module not in FORBIDDEN, f"{where} imports {module}"
        assert module in ALLOWED_STDLIB, (
            f"{where} imports {module}: the core may use only {sorted(ALLOWED_STDLIB)}"
        )


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_does_not_reach_outer_layers(path: Path) -> None:
    """Relative imports stay inside controlplane/raft (no raftnode, no transport)."""
    depth = len(path.relative_to(CORE).parts) - 1  # 0 for controlplane/raft/x.py
    tree = ast.parse(path.read_text(), str(path))
    for line, _module, level in _imports(tree):
        assert level <= depth + 1, f"{path.name}:{line} imports from outside controlplane/raft"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_randomness_is_seeded(path: Path) -> None:
    """Randomness only through random.Random(seed), never the module-level functions."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "random"
        ):
            assert node.attr == "Random", f"{path.name}:{node.lineno} uses random.{node.attr}"
        if isinstance(node, ast.ImportFrom) and node.module == "random":
            names = [a.name for a in node.names]
            assert names == ["Random"], f"{path.name}:{node.lineno} imports {names} from random"
