"""The ReplicaSet controller: its decisions as tables (slow-start batches, expectations,
which pods to delete, the pods it creates, the status it reports), then the controller
in process over the gRPC API on a `LocalBackend` store, with a fake kubelet.

`running_controllers` and `FakeKubelet` are shared with test_deployment.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from client import cluster, eventually, run

from controlplane.client.events import EventRecorder
from controlplane.client.informer import Informer, SharedInformerFactory
from controlplane.client.resources import ResourceClient
from controlplane.config import PROFILES, TIMER_KEYS, Timers
from controlplane.controllers import podutil
from controlplane.controllers.base import Context, Controller, Writer, key_of
from controlplane.controllers.replicaset import (
    ControllerExpectations,
    ReplicaSetController,
    _PodIndex,
    calculate_status,
    deletion_less,
    pod_from_template,
    pods_to_delete,
    ranks_by_related_pods_on_node,
    slow_start_batch,
    slow_start_batches,
)
from controlplane.kube.errors import APIError
from controlplane.kube.resources import EVENTS, PODS, REPLICASETS, Resource
from controlplane.kube.storage import DeleteOptions, ObjectStore, rfc3339

Obj = dict[str, Any]
NOW = 1_700_000_000.0

# -- slow start --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "batches"),
    [
        (0, []),
        (1, [1]),
        (2, [1, 1]),
        (3, [1, 2]),
        (7, [1, 2, 4]),
        (10, [1, 2, 4, 3]),
        (500, [1, 2, 4, 8, 16, 32, 64, 128, 245]),
    ],
)
def test_slow_start_batches_double(count: int, batches: list[int]) -> None:
    """Batches start at 1 and double; the last one is what remains."""
    assert slow_start_batches(count) == batches
    assert sum(batches) == count


def test_slow_start_stops_after_a_failed_batch() -> None:
    """The third call fails: batch [1] succeeds, batch [2] has one failure, the rest (4,
    3) is never attempted."""

    async def body() -> None:
        calls = 0

        async def create() -> None:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise APIError(403, "Forbidden", "exceeded quota")

        successes, err = await slow_start_batch(10, 1, create)
        assert (calls, successes) == (3, 2)
        assert isinstance(err, APIError) and err.message == "exceeded quota"

    run(body())


# -- expectations ------------------------------------------------------------------------------


def test_expectations_wait_for_every_creation() -> None:
    exp = ControllerExpectations()
    assert exp.satisfied("ns/rs", NOW), "nothing recorded: act"
    exp.expect_creations("ns/rs", 2, NOW)
    assert not exp.satisfied("ns/rs", NOW)
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs", NOW)
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs", NOW)


def test_expectations_count_each_deleted_pod_once() -> None:
    """Graceful deletion shows a pod twice (deletionTimestamp, then gone): one count."""
    exp = ControllerExpectations()
    exp.expect_deletions("ns/rs", ["ns/a", "ns/b"], NOW)
    exp.deletion_observed("ns/rs", "ns/a")
    exp.deletion_observed("ns/rs", "ns/a")
    exp.deletion_observed("ns/rs", "ns/unrelated")
    assert exp.pending("ns/rs") == (0, 1)
    assert not exp.satisfied("ns/rs", NOW)
    exp.deletion_observed("ns/rs", "ns/b")
    assert exp.satisfied("ns/rs", NOW)


@pytest.mark.parametrize(("elapsed", "satisfied"), [(299.0, False), (300.0, False), (300.5, True)])
def test_expectations_expire_after_five_minutes(elapsed: float, satisfied: bool) -> None:
    """A creation the informer never shows (lost) blocks the ReplicaSet for 5 min at most."""
    exp = ControllerExpectations()
    exp.expect_creations("ns/rs", 1, NOW)
    assert exp.satisfied("ns/rs", NOW + elapsed) is satisfied


def test_deleted_replica_set_forgets_its_expectations() -> None:
    exp = ControllerExpectations()
    exp.expect_creations("ns/rs", 3, NOW)
    exp.delete("ns/rs")
    assert exp.satisfied("ns/rs", NOW)


def test_pod_index_follows_ownership() -> None:
    """A ReplicaSet's candidates: the pods it controls and its namespace's orphans; a pod
    moves between the two as its controller reference changes, and leaves when deleted."""
    index = _PodIndex()
    orphan = mkpod("a")
    owned = podutil.with_controller_ref(
        orphan, podutil.new_controller_ref(replica_set(), api_version="apps/v1", kind="ReplicaSet")
    )
    other = podutil.with_controller_ref(mkpod("b"), {"uid": "someone-else", "controller": True})
    index.update(None, orphan)
    index.update(None, other)
    assert index.candidates("uid-web", "default") == {"default/a"}
    index.update(orphan, owned)
    assert index.candidates("uid-web", "kube-system") == {"default/a"}
    assert index.candidates("uid-other", "default") == set()
    index.update(owned, None)
    assert index.candidates("uid-web", "default") == set()


# -- which pods to delete ----------------------------------------------------------------------


def mkpod(
    name: str,
    *,
    node: str = "n1",
    phase: str = "Running",
    ready: bool = True,
    ready_since: float | None = None,
    created: float = NOW - 3600,
    restarts: int = 0,
    cost: int | None = None,
    uid: str | None = None,
    labels: dict[str, str] | None = None,
) -> Obj:
    meta: Obj = {
        "name": name,
        "namespace": "default",
        "uid": uid or f"uid-{name}",
        "creationTimestamp": rfc3339(created),
        "labels": labels if labels is not None else {"app": "web"},
    }
    if cost is not None:
        meta["annotations"] = {podutil.POD_DELETION_COST_ANNOTATION: str(cost)}
    ready_cond: Obj = {"type": "Ready", "status": "True" if ready else "False"}
    if ready:
        ready_cond["lastTransitionTime"] = rfc3339(ready_since if ready_since else created + 5)
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "conditions": [ready_cond],
            "containerStatuses": [{"name": "c", "restartCount": restarts}],
        },
    }


HOUR = 3600.0


@pytest.mark.parametrize(
    ("first", "second", "related"),
    [
        (mkpod("a", node=""), mkpod("b"), []),
        (mkpod("a", phase="Pending", ready=False), mkpod("b", phase="Unknown", ready=False), []),
        (mkpod("a", phase="Unknown", ready=False), mkpod("b", ready=False), []),
        (mkpod("a", ready=False), mkpod("b"), []),
        (mkpod("a", cost=-10), mkpod("b"), []),
        (mkpod("a", node="crowded"), mkpod("b", node="quiet"), [mkpod("x", node="crowded")]),
        (mkpod("a", ready_since=NOW - 60), mkpod("b", ready_since=NOW - HOUR), []),
        (mkpod("a", restarts=3), mkpod("b", restarts=1), []),
        (mkpod("a", created=NOW - 60), mkpod("b", created=NOW - 10 * HOUR), []),
        (
            mkpod("a", created=NOW - 100, ready_since=NOW - 90, uid="1"),
            mkpod("b", created=NOW - 110, ready_since=NOW - 95, uid="2"),
            [],
        ),
    ],
    ids=[
        "unassigned-before-assigned",
        "pending-before-unknown",
        "unknown-before-running",
        "not-ready-before-ready",
        "lower-deletion-cost-first",
        "doubled-up-node-first",
        "recently-ready-first",
        "more-restarts-first",
        "newer-first",
        "same-age-bucket-by-uid",
    ],
)
def test_pods_to_delete_preference(first: Obj, second: Obj, related: list[Obj]) -> None:
    """getPodsToDelete's order (ActivePodsWithRanks.Less), rule by rule: `first` goes
    before `second`, whichever way round they are listed."""
    everything = [first, second, *related]
    assert pods_to_delete([first, second], everything, 1, NOW) == [first]
    assert pods_to_delete([second, first], everything, 1, NOW) == [first]


def test_earlier_rules_win() -> None:
    """Readiness beats age: an old not-ready pod goes before a brand new ready one."""
    old_unready = mkpod("old", ready=False, created=NOW - 10 * HOUR)
    new_ready = mkpod("new", created=NOW - 60)
    assert deletion_less(old_unready, 0, new_ready, 0, NOW)
    assert not deletion_less(new_ready, 0, old_unready, 0, NOW)


def test_deleting_all_needs_no_ranking() -> None:
    pods = [mkpod("a"), mkpod("b")]
    assert pods_to_delete(pods, pods, 5, NOW) == pods


def test_ranks_count_active_related_pods_per_node() -> None:
    pods = [mkpod("a", node="n1"), mkpod("b", node="n2"), mkpod("c", node="")]
    related = [
        *pods,
        mkpod("d", node="n1"),
        mkpod("e", node="n1", phase="Succeeded"),  # finished: not counted
    ]
    assert ranks_by_related_pods_on_node(pods, related) == [2, 1, 1]


# -- pods from the template and status ---------------------------------------------------------


def replica_set(
    name: str = "web",
    replicas: int = 3,
    *,
    labels: dict[str, str] | None = None,
    min_ready: int = 0,
    generation: int = 1,
) -> Obj:
    labels = labels if labels is not None else {"app": "web"}
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": labels, "annotations": {"note": "x"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
    }
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "generation": generation,
        },
        "spec": spec,
        "status": {},
    }


def test_pod_from_template() -> None:
    """GetPodFromTemplate: generateName `<rs>-`, the template's labels, annotations and
    spec, and a controller reference to the ReplicaSet."""
    pod = pod_from_template(replica_set())
    assert pod["metadata"] == {
        "generateName": "web-",
        "namespace": "default",
        "labels": {"app": "web"},
        "annotations": {"note": "x"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": "uid-web",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    assert pod["spec"] == {"containers": [{"name": "c", "image": "nginx"}]}


def test_pod_from_a_template_without_labels_is_refused() -> None:
    with pytest.raises(ValueError, match="no labels"):
        pod_from_template(replica_set(labels={}))


@pytest.mark.parametrize(
    ("rs", "pods", "error", "expected"),
    [
        (replica_set(replicas=0), [], None, {"replicas": 0, "observedGeneration": 1}),
        (
            replica_set(generation=4),
            [mkpod("a"), mkpod("b", ready=False), mkpod("c", labels={"app": "web", "x": "y"})],
            None,
            {
                "replicas": 3,
                "fullyLabeledReplicas": 3,
                "readyReplicas": 2,
                "availableReplicas": 2,
                "observedGeneration": 4,
            },
        ),
        (
            replica_set(min_ready=30),
            [mkpod("a", ready_since=NOW - 60), mkpod("b", ready_since=NOW - 10)],
            None,
            {
                "replicas": 2,
                "fullyLabeledReplicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 1,
                "observedGeneration": 1,
            },
        ),
        (
            replica_set(labels={"app": "web", "tier": "front"}),
            [mkpod("a")],
            None,
            {
                "replicas": 1,
                "readyReplicas": 1,
                "availableReplicas": 1,
                "observedGeneration": 1,
            },
        ),
    ],
    ids=["empty", "counts", "min-ready-seconds", "not-fully-labeled"],
)
def test_calculate_status(rs: Obj, pods: list[Obj], error: str | None, expected: Obj) -> None:
    """replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (after
    minReadySeconds), observedGeneration; zero counts omitted but replicas."""
    assert calculate_status(rs, pods, error, NOW) == expected


def test_replica_failure_condition_comes_and_goes() -> None:
    """A failing create adds ReplicaFailure FailedCreate (once); success removes it."""
    rs = replica_set(replicas=2)
    failed = calculate_status(rs, [mkpod("a")], "pods is forbidden: quota", NOW)
    assert failed["conditions"] == [
        {
            "type": "ReplicaFailure",
            "status": "True",
            "lastTransitionTime": rfc3339(NOW),
            "reason": "FailedCreate",
            "message": "pods is forbidden: quota",
        }
    ]
    rs["status"] = failed
    again = calculate_status(rs, [mkpod("a")], "another error", NOW + 5)
    assert again["conditions"] == failed["conditions"], "kept as first reported"
    rs["status"] = again
    assert "conditions" not in calculate_status(rs, [mkpod("a"), mkpod("b")], None, NOW + 9)
    too_many = calculate_status(replica_set(replicas=0), [mkpod("a")], "boom", NOW)
    assert too_many["conditions"][0]["reason"] == "FailedDelete"


# -- in process: a fake kubelet and the controllers over a real API ----------------------------


def demo_timers() -> Timers:
    return Timers(profile="demo", **{k: float(PROFILES["demo"][k]) for k in TIMER_KEYS})


class FakeKubelet:
    """Plays the scheduler and the kubelets of `node` for in-process tests: binds every new
    pod, reports it Running (and Ready when `ready(pod)` says so), and finishes graceful
    deletions at once unless `finish_deletions` is False. It writes to the store directly,
    as the components it stands for would, and never to the controllers' objects."""

    def __init__(
        self,
        client: ResourceClient,
        store: ObjectStore,
        *,
        node: str = "node-1",
        ready: Callable[[Obj], bool] = lambda pod: True,
        finish_deletions: bool = True,
    ) -> None:
        self.store = store
        self.node = node
        self.ready = ready
        self.finish_deletions = finish_deletions
        self.informer = Informer(client, PODS)
        self._keys: asyncio.Queue[str] = asyncio.Queue()
        self.informer.add_handler(
            lambda p: self._keys.put_nowait(key_of(p)),
            lambda _old, p: self._keys.put_nowait(key_of(p)),
        )

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.informer.run())
            while True:
                key = await self._keys.get()
                namespace, _, name = key.partition("/")
                with contextlib.suppress(APIError):  # gone, or raced: the next event retries
                    await self._sync(namespace, name)

    async def _sync(self, namespace: str, name: str) -> None:
        pod = await self.store.get(PODS, namespace, name)
        if podutil.is_terminating(pod):
            if self.finish_deletions:
                await self.store.delete(
                    PODS, namespace, name, DeleteOptions(grace_period_seconds=0)
                )
            return
        if not pod["spec"].get("nodeName"):
            await self.store.bind(namespace, name, self.node)
            return
        ready = self.ready(pod)
        if podutil.pod_phase(pod) == "Running" and podutil.is_pod_ready(pod) == ready:
            return
        now = rfc3339(time.time())

        def running(cur: Obj) -> Obj:
            cur["status"]["phase"] = "Running"
            cur["status"]["conditions"] = [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": now,
                },
            ]
            cur["status"]["containerStatuses"] = [
                {"name": c["name"], "ready": ready, "restartCount": 0, "image": c["image"]}
                for c in cur["spec"]["containers"]
            ]
            return cur

        await self.store.guaranteed_update(PODS, namespace, name, running, subresource="status")


@dataclass
class Running:
    """What `running_controllers` yields."""

    client: ResourceClient
    store: ObjectStore
    ctx: Context
    kubelet: FakeKubelet
    controllers: list[Controller] = field(default_factory=list)


@contextlib.asynccontextmanager
async def running_controllers(
    *controllers: Controller,
    ready: Callable[[Obj], bool] = lambda pod: True,
    finish_deletions: bool = True,
) -> AsyncIterator[Running]:
    """A fresh in-process API, `controllers` running with a hand-built Context (unfenced
    writer), and a fake kubelet. A controller task that crashes fails the test."""
    async with cluster() as c:
        client = c.client()
        informers = SharedInformerFactory(client)
        recorder = EventRecorder(client, "kube-controller-manager", host="test")
        ctx = Context(
            client=client,
            writer=Writer(client, fence=lambda: None),
            informers=informers,
            recorder=recorder,
            timers=demo_timers(),
            identity="master-1",
        )
        kubelet = FakeKubelet(c.client(), c.store, ready=ready, finish_deletions=finish_deletions)
        for controller in controllers:
            controller.setup(ctx)
        recorder.start()
        informers.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            assert await informers.wait_for_cache_sync(timeout=20)
            tasks = [asyncio.create_task(ctl.run(ctx)) for ctl in controllers]
            tasks.append(asyncio.create_task(kubelet.run()))
            yield Running(client, c.store, ctx, kubelet, list(controllers))
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise AssertionError(f"{task.get_name()} crashed") from task.exception()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await informers.stop()
            await recorder.stop()


async def pods_of(client: ResourceClient, selector: str = "app=web") -> list[Obj]:
    items: list[Obj] = (await client.list(PODS, "default", label_selector=selector))["items"]
    return items


async def events_about(client: ResourceClient, name: str) -> list[tuple[str, str, str]]:
    items = (await client.list(EVENTS, "default"))["items"]
    return [
        (e["type"], e["reason"], e["message"]) for e in items if e["involvedObject"]["name"] == name
    ]


async def modify(
    client: ResourceClient, res: Resource, name: str, change: Callable[[Obj], None]
) -> Obj:
    """Read, change, write `name`, again while the controllers' own writes conflict."""
    for _ in range(20):
        obj = await client.get(res, "default", name)
        change(obj)
        try:
            return await client.update(res, "default", obj)
        except APIError as e:
            if e.code != 409:
                raise
    raise AssertionError(f"{name}: 20 conflicting writes in a row")


def running_ready(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if podutil.is_pod_active(p) and podutil.is_pod_ready(p)]


def test_replica_set_creates_its_pods_and_reports_status() -> None:
    """3 replicas: 3 pods named `web-*` with the template's labels and a controller
    reference; status 3/3/3 at the current generation; SuccessfulCreate Events."""

    async def body() -> None:
        async with running_controllers(ReplicaSetController()) as env:
            rs = await env.client.create(REPLICASETS, "default", replica_set())

            async def settled() -> bool:
                cur = await env.client.get(REPLICASETS, "default", "web")
                return cur.get("status") == {
                    "replicas": 3,
                    "fullyLabeledReplicas": 3,
                    "readyReplicas": 3,
                    "availableReplicas": 3,
                    "observedGeneration": 1,
                }

            await eventually(settled, "status 3/3/3")
            pods = await pods_of(env.client)
            assert len(pods) == 3
            for p in pods:
                assert p["metadata"]["name"].startswith("web-")
                assert p["metadata"]["generateName"] == "web-"
                assert podutil.is_controlled_by(p, rs)
                assert p["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True
            await env.ctx.recorder.flush()
            created = {
                m for t, r, m in await events_about(env.client, "web") if r == "SuccessfulCreate"
            }
            assert created == {f"Created pod: {p['metadata']['name']}" for p in pods}

    run(body())


def test_scale_down_deletes_not_ready_pods_first_and_ignores_terminating_ones() -> None:
    """Scaling 3 -> 2 deletes the pod that is not ready. With the kubelet not finishing
    deletions, the deleted pod stays Terminating and no longer counts: status.replicas is 2
    and no replacement is created."""
    readied: list[str] = []

    def first_two_ready(pod: Obj) -> bool:
        name = str(pod["metadata"]["name"])
        if name not in readied and len(readied) < 2:
            readied.append(name)
        return name in readied

    async def body() -> None:
        async with running_controllers(
            ReplicaSetController(), ready=first_two_ready, finish_deletions=False
        ) as env:
            await env.client.create(REPLICASETS, "default", replica_set())

            async def three_running() -> bool:
                pods = await pods_of(env.client)
                return len(pods) == 3 and all(podutil.pod_phase(p) == "Running" for p in pods)

            await eventually(three_running, "3 running pods")
            await modify(env.client, REPLICASETS, "web", lambda r: r["spec"].update(replicas=2))

            async def scaled() -> bool:
                cur = await env.client.get(REPLICASETS, "default", "web")
                return bool(
                    cur["status"].get("replicas") == 2
                    and cur["status"].get("observedGeneration") == 2
                )

            await eventually(scaled, "status.replicas 2")
            pods = await pods_of(env.client)
            terminating = [p["metadata"]["name"] for p in pods if podutil.is_terminating(p)]
            active = [p["metadata"]["name"] for p in pods if podutil.is_pod_active(p)]
            assert len(pods) == 3, "the deleted pod is still terminating"
            assert len(terminating) == 1 and terminating[0] not in readied
            assert sorted(active) == sorted(readied)

    run(body())


def test_orphans_are_adopted_and_pods_that_stop_matching_are_released() -> None:
    """A matching orphan counts as one of the replicas (adopted, not duplicated); a pod
    relabelled out of the selector is released and replaced."""

    async def body() -> None:
        async with running_controllers(ReplicaSetController()) as env:
            orphan = await env.client.create(
                PODS,
                "default",
                {
                    "metadata": {"name": "stray", "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            )
            rs = await env.client.create(REPLICASETS, "default", replica_set(replicas=2))

            async def two_owned() -> bool:
                pods = await pods_of(env.client)
                return len(pods) == 2 and all(podutil.is_controlled_by(p, rs) for p in pods)

            await eventually(two_owned, "the orphan adopted and one pod created")
            adopted = await env.client.get(PODS, "default", "stray")
            assert adopted["metadata"]["uid"] == orphan["metadata"]["uid"]

            await modify(
                env.client, PODS, "stray", lambda p: p["metadata"].update(labels={"app": "other"})
            )

            async def released_and_replaced() -> bool:
                stray = await env.client.get(PODS, "default", "stray")
                owned = [p for p in await pods_of(env.client) if podutil.is_controlled_by(p, rs)]
                return "ownerReferences" not in stray["metadata"] and len(owned) == 2

            await eventually(released_and_replaced, "the relabelled pod released and replaced")

    run(body())


def test_deleted_pod_is_replaced() -> None:
    async def body() -> None:
        async with running_controllers(ReplicaSetController()) as env:
            await env.client.create(REPLICASETS, "default", replica_set(replicas=2))

            async def two() -> bool:
                return len(running_ready(await pods_of(env.client))) == 2

            await eventually(two, "2 ready pods")
            victim = (await pods_of(env.client))[0]["metadata"]["name"]
            await env.client.delete(PODS, "default", victim, grace_period_seconds=0)

            async def replaced() -> bool:
                names = {p["metadata"]["name"] for p in running_ready(await pods_of(env.client))}
                return len(names) == 2 and victim not in names

            await eventually(replaced, "a replacement pod")

    run(body())
