"""The controllers' shared machinery: fenced writes, the test hold, work-queue loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from controlplane.client.workqueue import RateLimitingQueue
from controlplane.controllers.base import Writer, key_of, run_workers, split_key
from controlplane.kube import errors
from controlplane.kube.resources import CONFIGMAPS, NODES
from controlplane.kube.storage import Fence

Obj = dict[str, Any]


class RecordingClient:
    """Stands in for ResourceClient: records (verb, fence) of each write."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Fence | None]] = []

    async def create(self, res: object, ns: str, obj: Obj, *, fence: Fence | None) -> Obj:
        self.calls.append(("create", fence))
        return obj

    async def delete(self, res: object, ns: str, name: str, *, fence: Fence | None) -> Obj:
        self.calls.append(("delete", fence))
        return {}


def test_keys() -> None:
    assert key_of({"metadata": {"namespace": "a", "name": "b"}}) == "a/b"
    assert key_of({"metadata": {"name": "node-1"}}) == "node-1"
    assert split_key("a/b") == ("a", "b") and split_key("node-1") == ("", "node-1")


def test_every_write_carries_the_fence_taken_before_the_hold(tmp_path: Path) -> None:
    async def go() -> list[tuple[str, Fence | None]]:
        client = RecordingClient()
        term = [Fence("kube-system", "kcm", "a", 0)]
        hold = tmp_path / "hold"
        writer = Writer(client, lambda: term[0], hold_file=hold)  # type: ignore[arg-type]
        await writer.create(CONFIGMAPS, "default", {"metadata": {"name": "x"}})
        hold.touch()
        held = asyncio.ensure_future(writer.delete(NODES, "", "n"))
        held_file = tmp_path / "hold.held"
        while not (held_file.exists() and "delete nodes /n" in held_file.read_text()):
            await asyncio.sleep(0.01)
        assert not held.done()  # waits while the file exists
        term[0] = Fence("kube-system", "kcm", "b", 1)  # the Lease changed hands meanwhile
        hold.unlink()
        await held
        return client.calls

    calls = asyncio.run(go())
    assert calls == [
        ("create", Fence("kube-system", "kcm", "a", 0)),
        ("delete", Fence("kube-system", "kcm", "a", 0)),  # the stale term: the store refuses it
    ]


def test_a_cancelled_controller_does_not_abandon_a_decided_write(tmp_path: Path) -> None:
    async def go() -> list[tuple[str, Fence | None]]:
        client = RecordingClient()
        hold = tmp_path / "hold"
        hold.touch()
        writer = Writer(client, lambda: None, hold_file=hold)  # type: ignore[arg-type]
        caller = asyncio.ensure_future(writer.create(CONFIGMAPS, "default", {}))
        await asyncio.sleep(0.1)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        hold.unlink()
        await asyncio.sleep(0.2)
        return client.calls

    assert asyncio.run(go()) == [("create", None)]


def test_run_workers_retries_failures_with_backoff() -> None:
    async def go() -> list[str]:
        queue: RateLimitingQueue[str] = RateLimitingQueue()
        seen: list[str] = []

        async def sync(key: str) -> None:
            seen.append(key)
            if seen.count(key) < 3:
                raise errors.conflict(CONFIGMAPS, key)

        queue.add("a")
        task = asyncio.ensure_future(run_workers("t", queue, sync, workers=2))
        while seen.count("a") < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert queue.num_requeues("a") == 0  # forgotten after the success
        return seen

    assert asyncio.run(go()) == ["a", "a", "a"]
