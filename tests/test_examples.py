"""Every manifest under examples/ loads and passes the API server's admission."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from controlplane.kube.manifests import load_manifests
from controlplane.kube.resources import NAMESPACES
from controlplane.kube.storage import LocalBackend, ObjectStore

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_accepted(path: Path) -> None:
    async def go() -> None:
        store = ObjectStore(LocalBackend())
        await store.create(NAMESPACES, "", {"metadata": {"name": "default"}})
        for m in load_manifests(path, stdin=io.StringIO()):
            assert m.resource is not None
            await store.create(m.resource, m.namespace or "default", m.obj)

    asyncio.run(go())


def test_there_are_examples() -> None:
    assert EXAMPLES
