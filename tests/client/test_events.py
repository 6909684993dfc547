"""EventRecorder: aggregation into one Event, deterministic names, never raising."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from controlplane.client.events import EventRecorder, event_name, involved_object
from controlplane.kube.resources import CONFIGMAPS, EVENTS, NAMESPACES

from . import cluster, cm, free_port, run

Obj = dict[str, Any]


class Clock:
    """Wall time that moves one second per reading."""

    def __init__(self) -> None:
        self.t = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


async def events_in(store: Any, namespace: str) -> list[Obj]:
    items: list[Obj] = (await store.list(EVENTS, namespace))["items"]
    return items


def test_repeated_event_is_one_event_with_a_count() -> None:
    """Same object, type, reason, message and source: one Event, count 1 -> 3,
    firstTimestamp kept, lastTimestamp moving."""

    async def body() -> None:
        async with cluster() as c:
            obj = await c.store.create(CONFIGMAPS, "default", cm("web"))
            rec = EventRecorder(c.client(), "replicaset-controller", now=Clock())
            async with rec:
                rec.event(obj, "Normal", "SuccessfulCreate", "Created pod: web-1")
                await rec.flush()
                (first,) = await events_in(c.store, "default")
                assert first["count"] == 1
                for _ in range(2):
                    rec.event(obj, "Normal", "SuccessfulCreate", "Created pod: web-1")
                await rec.flush()
            (ev,) = await events_in(c.store, "default")
            assert ev["metadata"]["name"] == first["metadata"]["name"]
            assert ev["metadata"]["name"].startswith("web.")
            assert ev["count"] == 3
            assert ev["firstTimestamp"] == first["firstTimestamp"] == "2024-05-01T10:00:01Z"
            assert ev["lastTimestamp"] == "2024-05-01T10:00:03Z"
            assert ev["source"] == {"component": "replicaset-controller"}
            assert ev["type"] == "Normal"
            assert ev["reason"] == "SuccessfulCreate"
            assert ev["involvedObject"] == {
                "kind": "ConfigMap",
                "namespace": "default",
                "name": "web",
                "uid": obj["metadata"]["uid"],
                "apiVersion": "v1",
                "resourceVersion": obj["metadata"]["resourceVersion"],
            }

    run(body())


def test_different_messages_are_different_events() -> None:
    async def body() -> None:
        async with cluster() as c:
            obj = await c.store.create(CONFIGMAPS, "default", cm("web"))
            async with EventRecorder(c.client(), "kubelet", "worker-1") as rec:
                rec.event(obj, "Normal", "Pulled", "image a")
                rec.event(obj, "Warning", "Pulled", "image a")
                rec.event(obj, "Normal", "Pulled", "image b")
                await rec.flush()
            evs = await events_in(c.store, "default")
            assert len(evs) == 3
            assert all(e["count"] == 1 for e in evs)
            assert all(e["source"] == {"component": "kubelet", "host": "worker-1"} for e in evs)

    run(body())


def test_another_recorder_increments_the_same_event() -> None:
    """A restarted component (empty cache) finds the Event by its deterministic name."""

    async def body() -> None:
        async with cluster() as c:
            obj = await c.store.create(CONFIGMAPS, "default", cm("web"))
            for _ in range(2):
                async with EventRecorder(c.client(), "scheduler") as rec:
                    rec.event(obj, "Warning", "FailedScheduling", "0/3 nodes are available")
            (ev,) = await events_in(c.store, "default")
            assert ev["count"] == 2

    run(body())


def test_cluster_scoped_objects_get_events_in_default() -> None:
    async def body() -> None:
        async with cluster() as c:
            ns = await c.store.get(NAMESPACES, "", "kube-system")
            async with EventRecorder(c.client(), "namespace-controller") as rec:
                rec.event(ns, "Normal", "Checked", "fine")
            (ev,) = await events_in(c.store, "default")
            assert ev["involvedObject"]["kind"] == "Namespace"
            assert "namespace" not in ev["involvedObject"]

    run(body())


def test_bad_events_are_dropped_without_raising() -> None:
    async def body() -> None:
        async with cluster() as c:
            obj = await c.store.create(CONFIGMAPS, "default", cm("web"))
            async with EventRecorder(c.client(), "x") as rec:
                rec.event({"metadata": {"name": "no-kind"}}, "Normal", "R", "m")
                rec.event({"kind": "Pod"}, "Normal", "R", "m")
                rec.event(obj, "Loud", "R", "m")
                rec.event(obj, "Normal", "", "m")
                rec.event("not an object", "Normal", "R", "m")  # type: ignore[arg-type]
            assert await events_in(c.store, "default") == []

    run(body())


def test_unreachable_server_never_raises_and_stop_returns() -> None:
    async def body() -> None:
        async with cluster() as c:
            obj = await c.store.create(CONFIGMAPS, "default", cm("web"))
            client = c.client([f"127.0.0.1:{free_port()}"], timeout=0.2, retry_for=0.2)
            rec = EventRecorder(client, "x", max_pending=2)
            rec.start()
            for _ in range(5):  # more than the queue holds: the rest is dropped
                rec.event(obj, "Normal", "R", "m")
            assert rec.dropped >= 1
            await asyncio.wait_for(rec.stop(timeout=5), 20)

    run(body())


def test_event_name_is_deterministic_and_bounded() -> None:
    ref = involved_object({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p" * 253}})
    a = event_name(ref, "Normal", "R", "m", component="c", host="")
    assert a == event_name(ref, "Normal", "R", "m", component="c", host="")
    assert a != event_name(ref, "Normal", "R", "other", component="c", host="")
    assert len(a) <= 253
    assert len(a.rsplit(".", 1)[1]) == 16
