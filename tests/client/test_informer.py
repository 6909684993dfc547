"""Informers over the gRPC API: list, watch, relist after compaction, the shared factory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controlplane.client import informer as informer_module
from controlplane.client.informer import Informer, SharedInformerFactory
from controlplane.kube.resources import CONFIGMAPS, LEASES

from . import cluster, cm, eventually, free_port, run

Obj = dict[str, Any]


class Recorder:
    """Handlers that record (kind, name, data) in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def on_add(self, obj: Obj) -> None:
        self.events.append(("add", obj["metadata"]["name"]))

    def on_update(self, old: Obj, new: Obj) -> None:
        self.events.append(("update", new["metadata"]["name"]))

    def on_delete(self, obj: Obj) -> None:
        self.events.append(("delete", obj["metadata"]["name"]))

    def attach(self, informer: Informer) -> None:
        informer.add_handler(self.on_add, self.on_update, self.on_delete)


def names(informer: Informer) -> list[str]:
    return sorted(o["metadata"]["name"] for o in informer.list())


def test_informer_lists_then_watches() -> None:
    """The cache holds the list, then follows every change; handlers see add, update,
    delete in order."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            await c.store.create(CONFIGMAPS, "default", cm("a"))
            await c.store.create(CONFIGMAPS, "kube-system", cm("other"))
            informer = Informer(client, CONFIGMAPS, "default")
            rec = Recorder()
            rec.attach(informer)
            task = asyncio.ensure_future(informer.run())
            try:
                assert await informer.wait_synced(20)
                assert informer.has_synced
                assert names(informer) == ["a"]
                b = await client.create(CONFIGMAPS, "default", cm("b"))
                b["data"] = {"k": "v"}
                await client.update(CONFIGMAPS, "default", b)
                await client.delete(CONFIGMAPS, "default", "a")
                await eventually(lambda: len(rec.events) == 4, "four notifications")
                assert rec.events == [
                    ("add", "a"),
                    ("add", "b"),
                    ("update", "b"),
                    ("delete", "a"),
                ]
                got = informer.get("default", "b")
                assert got is not None
                assert got["data"] == {"k": "v"}
                assert informer.get("default", "a") is None
                assert informer.get("kube-system", "other") is None
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    run(body())


def test_informer_relists_after_compaction_and_notifies_the_difference() -> None:
    """A master restarts while the history the watch needs is compacted: the informer gets
    410, lists again, and reports what changed during the gap as add/update/delete."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            await c.store.create(CONFIGMAPS, "default", cm("keep"))
            await c.store.create(CONFIGMAPS, "default", cm("change"))
            await c.store.create(CONFIGMAPS, "default", cm("remove"))
            informer = Informer(client, CONFIGMAPS, "default")
            rec = Recorder()
            rec.attach(informer)
            task = asyncio.ensure_future(informer.run())
            try:
                assert await informer.wait_synced(20)
                before = informer.resource_version
                rec.events.clear()

                await c.stop(0)  # the watch breaks; the informer retries
                changed = await c.store.get(CONFIGMAPS, "default", "change")
                changed["data"] = {"k": "v"}
                await c.store.update(CONFIGMAPS, "default", "change", changed)
                await c.store.delete(CONFIGMAPS, "default", "remove")
                await c.store.create(CONFIGMAPS, "default", cm("new"))
                latest = await c.store.list(CONFIGMAPS, "default")
                await c.backend.compact(int(latest["metadata"]["resourceVersion"]))
                await c.start(0)

                await eventually(lambda: len(rec.events) == 3, "the relist's notifications")
                assert sorted(rec.events) == [
                    ("add", "new"),
                    ("delete", "remove"),
                    ("update", "change"),
                ]
                assert names(informer) == ["change", "keep", "new"]
                assert int(informer.resource_version) > int(before)
                await client.create(CONFIGMAPS, "default", cm("after"))
                await eventually(lambda: ("add", "after") in rec.events, "watch after relist")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    run(body())


def test_informer_resumes_a_broken_watch_without_relisting() -> None:
    """A restarted master, history intact: the watch resumes from the last version and
    the informer does not list again (no duplicate adds)."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            informer = Informer(client, CONFIGMAPS, "default")
            rec = Recorder()
            rec.attach(informer)
            task = asyncio.ensure_future(informer.run())
            try:
                assert await informer.wait_synced(20)
                await client.create(CONFIGMAPS, "default", cm("a"))
                await eventually(lambda: rec.events == [("add", "a")], "the first add")
                await c.restart(0)
                await c.store.create(CONFIGMAPS, "default", cm("b"))
                await eventually(lambda: len(rec.events) >= 2, "the add after the restart")
                assert rec.events == [("add", "a"), ("add", "b")]
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    run(body())


def test_late_handler_gets_the_cache_as_adds_and_resync_redelivers() -> None:
    async def body() -> None:
        async with cluster() as c:
            await c.store.create(CONFIGMAPS, "default", cm("a"))
            informer = Informer(c.client(), CONFIGMAPS, "default", resync=0.05)
            task = asyncio.ensure_future(informer.run())
            try:
                assert await informer.wait_synced(20)
                rec = Recorder()
                rec.attach(informer)
                assert rec.events == [("add", "a")]
                await eventually(lambda: ("update", "a") in rec.events, "a resync")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    run(body())


def test_a_failing_handler_does_not_stop_the_informer() -> None:
    async def body() -> None:
        async with cluster() as c:
            informer = Informer(c.client(), CONFIGMAPS, "default")

            def broken(obj: Obj) -> None:
                raise RuntimeError("handler bug")

            informer.add_handler(on_add=broken)
            rec = Recorder()
            rec.attach(informer)
            task = asyncio.ensure_future(informer.run())
            try:
                assert await informer.wait_synced(20)
                await c.store.create(CONFIGMAPS, "default", cm("a"))
                await c.store.create(CONFIGMAPS, "default", cm("b"))
                await eventually(lambda: len(rec.events) == 2, "both adds")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    run(body())


def test_informer_lists_in_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """More objects than a list page: all of them in the cache."""
    monkeypatch.setattr(informer_module, "LIST_PAGE_SIZE", 3)

    async def body() -> None:
        async with cluster() as c:
            for i in range(7):
                await c.store.create(CONFIGMAPS, "default", cm(f"cm{i}"))
            informer = Informer(c.client(), CONFIGMAPS, "default")
            task = asyncio.ensure_future(informer.run())
            try:
                assert await informer.wait_synced(20)
                assert len(informer.list()) == 7
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    run(body())


def test_factory_shares_one_informer_per_resource_and_namespace() -> None:
    async def body() -> None:
        async with cluster() as c:
            await c.store.create(CONFIGMAPS, "default", cm("a"))
            factory = SharedInformerFactory(c.client())
            first = factory.informer_for(CONFIGMAPS, "default")
            assert factory.informer_for(CONFIGMAPS, "default") is first
            everywhere = factory.informer_for(CONFIGMAPS)
            assert everywhere is not first
            leases = factory.informer_for(LEASES, "default")
            async with factory:
                factory.start()
                factory.start()  # idempotent
                assert await factory.wait_for_cache_sync(20)
                assert all(i.has_synced for i in (first, everywhere, leases))
                assert names(first) == ["a"]
                late = factory.informer_for(CONFIGMAPS, "kube-system")
                factory.start()
                assert await factory.wait_for_cache_sync(20)
                assert late.has_synced
            assert not factory._tasks

    run(body())


def test_wait_synced_times_out_without_a_server() -> None:
    async def body() -> None:
        async with cluster() as c:
            client = c.client([f"127.0.0.1:{free_port()}"], retry_for=0.2, timeout=0.2)
            informer = Informer(client, CONFIGMAPS, "default")
            task = asyncio.ensure_future(informer.run())
            try:
                assert not await informer.wait_synced(0.5)
                assert not informer.has_synced
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    run(body())
