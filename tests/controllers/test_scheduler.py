"""The scheduler controller: its queue and cache as units (a fake clock), then the whole
scheduler in process, over the gRPC API on a `LocalBackend` store."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from client import cluster, eventually, run

from controlplane.client.events import EventRecorder
from controlplane.client.informer import SharedInformerFactory
from controlplane.client.resources import ResourceClient
from controlplane.config import PROFILES, TIMER_KEYS, Timers
from controlplane.controllers.base import Context, Controller, Writer
from controlplane.kube.errors import APIError
from controlplane.kube.resources import EVENTS, NODES, PODS
from controlplane.scheduler.algorithm import Resources
from controlplane.scheduler.scheduler import (
    Scheduler,
    SchedulerCache,
    SchedulingQueue,
    backoff_duration,
)

from .test_scheduler_algorithm import node, pod

Obj = dict[str, Any]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def new_queue() -> tuple[SchedulingQueue, FakeClock]:
    clock = FakeClock()
    return SchedulingQueue(clock=clock), clock


# -- the queue ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (50, 10.0)],
)
def test_backoff_doubles_to_the_max(attempts: int, seconds: float) -> None:
    """podInitialBackoff 1 s, doubled per attempt, capped by podMaxBackoff 10 s."""
    assert backoff_duration(attempts, 1.0, 10.0) == seconds


def test_active_queue_order() -> None:
    """Higher priority first, then first come first served."""
    q, clock = new_queue()
    q.add(pod("first"))
    clock.now += 1
    q.add(pod("urgent", priority=1000))
    clock.now += 1
    q.add(pod("second"))
    order = []
    while (qp := q.pop()) is not None:
        order.append(qp.key)
    assert order == ["default/urgent", "default/first", "default/second"]


def test_unschedulable_pod_waits_for_a_cluster_event() -> None:
    """An unschedulable pod stays parked until an event, then serves its backoff."""
    q, clock = new_queue()
    q.add(pod())
    qp = q.pop()
    assert qp is not None
    q.add_unschedulable(qp)
    clock.now += 60
    assert q.pop() is None, "no event: it stays unschedulable"
    assert q.pending()["unschedulable"] == 1
    q.move_all_to_active("NodeAdd")
    second = q.pop()
    assert second is not None and second.attempts == 2
    q.add_unschedulable(second)
    q.move_all_to_active("NodeAdd")
    assert q.pop() is None, "its 2 s backoff runs first"
    assert q.next_wakeup() == 2.0
    clock.now += 2.0
    third = q.pop()
    assert third is not None and third.attempts == 3


def test_event_during_the_attempt_is_not_lost() -> None:
    """A move request while the pod is in flight sends it to backoff, not to wait for an
    event that already happened (moveRequestCycle)."""
    q, clock = new_queue()
    q.add(pod())
    qp = q.pop()
    assert qp is not None
    q.move_all_to_active("NodeAdd")
    q.add_unschedulable(qp)
    assert q.pending()["backoff"] == 1
    clock.now += 1.0
    assert q.pop() is not None


def test_unschedulable_pods_are_retried_after_five_minutes() -> None:
    q, clock = new_queue()
    q.add(pod())
    qp = q.pop()
    assert qp is not None
    q.add_unschedulable(qp)
    clock.now += 299
    assert q.pop() is None
    clock.now += 31
    assert q.pop() is not None


def test_updates_and_deletes() -> None:
    """A spec change requeues an unschedulable pod, a status change does not; a pod deleted
    while in flight is not requeued by its failure; a new uid is a new pod."""
    q, clock = new_queue()
    old = pod()
    q.add(old)
    qp = q.pop()
    assert qp is not None
    q.add_unschedulable(qp)
    status_only = {**old, "status": {"phase": "Pending", "conditions": []}}
    q.update(old, status_only)
    assert q.pending()["unschedulable"] == 1
    relabelled = {**old, "metadata": {**old["metadata"], "labels": {"a": "b"}}}
    clock.now += 5
    q.update(status_only, relabelled)
    again = q.pop()
    assert again is not None and again.pod is relabelled
    q.delete(again.key)
    q.add_unschedulable(again)
    assert q.pods == {}
    q.add(old)
    replaced = {**old, "metadata": {**old["metadata"], "uid": "other"}}
    q.add(replaced)
    fresh = q.pop()
    assert fresh is not None and fresh.pod is replaced and fresh.attempts == 1
    assert q.pop() is None


# -- the cache ---------------------------------------------------------------------------------


def test_cache_assume_confirm_forget() -> None:
    """An assumed pod counts at once; the informer's copy replaces it (on its real node);
    forgetting undoes only an unconfirmed assumption."""
    cache = SchedulerCache()
    for name in ("a", "b"):
        cache.set_node(node(name))
    p = pod("p", cpu="1")
    cache.assume(p, "a")
    assert cache.nodes["a"].requested == Resources(1000, 0)
    assert cache.is_assumed("default/p")
    cache.forget("default/p")
    assert cache.nodes["a"].requested == Resources(0, 0)
    cache.assume(p, "a")
    cache.add_pod({**p, "spec": {**p["spec"], "nodeName": "b"}})  # bound elsewhere after all
    cache.forget("default/p")
    assert cache.nodes["a"].requested == Resources(0, 0)
    assert cache.nodes["b"].requested == Resources(1000, 0)
    assert not cache.is_assumed("default/p")
    cache.remove_node("b")
    assert "b" in cache.nodes and cache.nodes["b"].node is None, "its pod still counts"
    assert cache.remove_pod("default/p")
    assert "b" not in cache.nodes


# -- in process --------------------------------------------------------------------------------


def demo_timers() -> Timers:
    values = {k: float(PROFILES["demo"][k]) for k in TIMER_KEYS}
    return Timers(profile="demo", **values)


class FlakyWriter(Writer):
    """An unfenced writer whose first bindings fail with the given errors."""

    def __init__(self, client: ResourceClient, failures: list[APIError]) -> None:
        super().__init__(client, fence=lambda: None)
        self.failures = failures

    async def bind(self, namespace: str, name: str, node: str) -> Obj:
        if self.failures:
            raise self.failures.pop(0)
        return await super().bind(namespace, name, node)


@contextlib.asynccontextmanager
async def running_scheduler(
    client: ResourceClient, writer: Writer | None = None
) -> AsyncIterator[Scheduler]:
    """A scheduler with a hand-built Context (unfenced writer), running until the block
    ends."""
    informers = SharedInformerFactory(client)
    recorder = EventRecorder(client, "default-scheduler")
    ctx = Context(
        client=client,
        writer=writer or Writer(client, fence=lambda: None),
        informers=informers,
        recorder=recorder,
        timers=demo_timers(),
        identity="master-1",
    )
    scheduler = Scheduler()
    controller: Controller = scheduler  # the Manager's protocol
    controller.setup(ctx)
    recorder.start()
    informers.start()
    try:
        assert await informers.wait_for_cache_sync(timeout=20)
        task = asyncio.create_task(scheduler.run(ctx))
        try:
            yield scheduler
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await informers.stop()
        await recorder.stop()


async def node_of(client: ResourceClient, name: str) -> str:
    p = await client.get(PODS, "default", name)
    return str(p["spec"].get("nodeName") or "")


async def events_of(client: ResourceClient, name: str) -> list[tuple[str, str, str]]:
    items = (await client.list(EVENTS, "default"))["items"]
    return [
        (e["type"], e["reason"], e["message"]) for e in items if e["involvedObject"]["name"] == name
    ]


def worker(name: str, **kw: Any) -> Obj:
    kw.setdefault("cpu", "2")
    kw.setdefault("memory", "4Gi")
    return node(name, **kw)


def new_pod(name: str, **kw: Any) -> Obj:
    p = pod(name, **kw)
    del p["metadata"]["uid"]
    del p["status"]
    return p


INSUFFICIENT_CPU = (
    "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
    "3 No preemption victims found for incoming pod."
)


def test_schedules_spreads_and_retries_when_a_node_arrives() -> None:
    """Six pods on three Ready nodes: all bound, 2/2/2, each with a Scheduled Event. A pod
    too big for every node gets FailedScheduling and PodScheduled=False with Kubernetes'
    text; a big enough node appearing moves it back to the active queue and it is bound."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            for i in range(3):
                await c.store.create(NODES, "", worker(f"worker-{i}"))
            async with running_scheduler(client):
                names = [f"web-{i}" for i in range(6)]
                for name in names:
                    await client.create(PODS, "default", new_pod(name, cpu="100m"))

                async def all_bound() -> bool:
                    return all([await node_of(client, n) for n in names])

                await eventually(all_bound, "six pods bound")
                placement = {n: await node_of(client, n) for n in names}
                assert Counter(placement.values()) == {
                    "worker-0": 2,
                    "worker-1": 2,
                    "worker-2": 2,
                }

                async def scheduled_events() -> bool:
                    for n in names:
                        want = (
                            "Normal",
                            "Scheduled",
                            f"Successfully assigned default/{n} to {placement[n]}",
                        )
                        if want not in await events_of(client, n):
                            return False
                    return True

                await eventually(scheduled_events, "a Scheduled event per pod")

                await client.create(PODS, "default", new_pod("big", cpu="8"))

                async def failed_scheduling() -> bool:
                    return ("Warning", "FailedScheduling", INSUFFICIENT_CPU) in await events_of(
                        client, "big"
                    )

                await eventually(failed_scheduling, "FailedScheduling for the big pod")

                async def condition() -> Obj | None:
                    p = await client.get(PODS, "default", "big")
                    for cond in p["status"].get("conditions") or []:
                        if cond["type"] == "PodScheduled":
                            return dict(cond)
                    return None

                async def unschedulable() -> bool:
                    return await condition() is not None

                await eventually(unschedulable, "PodScheduled condition on the big pod")
                cond = await condition()
                assert cond is not None
                assert (cond["status"], cond["reason"], cond["message"]) == (
                    "False",
                    "Unschedulable",
                    INSUFFICIENT_CPU,
                )
                assert await node_of(client, "big") == ""

                await c.store.create(NODES, "", worker("worker-big", cpu="16"))

                async def big_bound() -> bool:
                    return await node_of(client, "big") == "worker-big"

                await eventually(big_bound, "the big pod bound to the new node")
                cond = await condition()
                assert cond is not None and cond["status"] == "True"

    run(body())


def test_assumed_pods_prevent_overcommit() -> None:
    """Seven pods waiting before the scheduler starts, three nodes taking two pods each:
    bindings run concurrently, yet exactly six are bound, two per node, and the seventh is
    told "Too many pods"."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            for i in range(3):
                await c.store.create(NODES, "", worker(f"worker-{i}", pods="2"))
            names = [f"p-{i}" for i in range(7)]
            for name in names:
                await client.create(PODS, "default", new_pod(name))
            async with running_scheduler(client) as scheduler:

                async def settled() -> bool:
                    return (
                        scheduler.scheduled == 6
                        and scheduler.queue.pending()["unschedulable"]
                        + scheduler.queue.pending()["backoff"]
                        == 1
                    )

                await eventually(settled, "six bound and one unschedulable")
                placement = [await node_of(client, n) for n in names]
                counts = Counter(n for n in placement if n)
                assert counts == {"worker-0": 2, "worker-1": 2, "worker-2": 2}
                left = names[placement.index("")]
                message = (
                    "0/3 nodes are available: 3 Too many pods. preemption: 0/3 nodes are "
                    "available: 3 No preemption victims found for incoming pod."
                )

                async def told() -> bool:
                    return ("Warning", "FailedScheduling", message) in await events_of(client, left)

                await eventually(told, "FailedScheduling: Too many pods")

                # Deleting a bound pod frees a slot: the waiting pod takes it.
                victim = names[placement.index("worker-1")]
                await client.delete(PODS, "default", victim, grace_period_seconds=0)

                async def rescheduled() -> bool:
                    return await node_of(client, left) == "worker-1"

                await eventually(rescheduled, "the waiting pod bound after a deletion")

    run(body())


def test_ignores_other_schedulers_and_cordoned_nodes() -> None:
    """Pods of another scheduler are left alone; a cordoned node gets no pods."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            await c.store.create(NODES, "", worker("cordoned", unschedulable=True))
            await c.store.create(NODES, "", worker("open"))
            async with running_scheduler(client) as scheduler:
                await client.create(
                    PODS, "default", new_pod("theirs", schedulerName="my-scheduler")
                )
                await client.create(PODS, "default", new_pod("ours"))

                async def ours_bound() -> bool:
                    return await node_of(client, "ours") == "open"

                await eventually(ours_bound, "our pod bound to the open node")
                assert await node_of(client, "theirs") == ""
                assert "default/theirs" not in scheduler.queue.pods

    run(body())


@pytest.mark.parametrize(
    ("error", "event"),
    [
        pytest.param(
            APIError(500, "InternalError", "etcd is sad"),
            ("Warning", "FailedScheduling", "Binding rejected: etcd is sad"),
            id="server-error",
        ),
        pytest.param(
            APIError(409, "Conflict", "fenced"),
            None,
            id="conflict-is-silent",
        ),
    ],
)
def test_failed_binding_is_forgotten_and_retried(
    error: APIError, event: tuple[str, str, str] | None
) -> None:
    """A binding that fails undoes the assumption and the pod is retried after its
    backoff; the node then counts the pod once."""

    async def body() -> None:
        async with cluster() as c:
            client = c.client()
            await c.store.create(NODES, "", worker("w"))
            writer = FlakyWriter(client, [error])
            async with running_scheduler(client, writer) as scheduler:
                await client.create(PODS, "default", new_pod("p", cpu="1"))

                async def bound() -> bool:
                    return await node_of(client, "p") == "w"

                await eventually(bound, "the pod bound on the second attempt")
                assert writer.failures == []
                events = await events_of(client, "p")
                if event is not None:
                    assert event in events
                assert [e for e in events if e[1] == "FailedScheduling"] == (
                    [event] if event else []
                )

                async def confirmed() -> bool:
                    return not scheduler.cache.is_assumed("default/p")

                await eventually(confirmed, "the informer confirming the binding")
                assert scheduler.cache.nodes["w"].requested == Resources(1000, 0)
                assert list(scheduler.cache.nodes["w"].pods) == ["default/p"]

    run(body())
