"""The store is pure: no I/O, clocks, randomness, threads or outer layers (DESIGN.md:
every replica applies the same entries to the same state, so nothing else may matter).

An import contract checked on the source (AST), for every module of `controlplane/store`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import controlplane.store

STORE = Path(controlplane.store.__file__).parent
ALLOWED_STDLIB = {
    "__future__",
    "bisect",
    "collections",
    "dataclasses",
    "itertools",
    "logging",
    "operator",
    "struct",
    "typing",
    "zlib",
}
# Outside the standard library: protobuf messages only.
ALLOWED_PROJECT = {"google.protobuf", "controlplane.storepb"}
SOURCES = sorted(STORE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_store_module_imports_nothing_impure(path: Path) -> None:
    """controlplane/store imports only pure stdlib modules, protobuf and storepb."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        for name in names:
            where = f"{path.name}:{node.lineno}"
            ok = name.split(".")[0] in ALLOWED_STDLIB or any(
                name == p or name.startswith(p + ".") for p in ALLOWED_PROJECT
            )
            assert ok, f"{where} imports {name}"
