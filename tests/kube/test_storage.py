"""ObjectStore on a local store: Kubernetes write and read semantics."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from controlplane.kube import errors
from controlplane.kube.resources import CONFIGMAPS, DEPLOYMENTS, LEASES, NAMESPACES, PODS
from controlplane.kube.storage import (
    DeleteOptions,
    Fence,
    ListOptions,
    LocalBackend,
    ObjectStore,
    WatchEvent,
    fence_key,
)

Obj = dict[str, Any]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def backend() -> LocalBackend:
    return LocalBackend()


@pytest.fixture
def store(backend: LocalBackend) -> ObjectStore:
    uids = iter(f"uid-{i}" for i in range(1, 10_000))
    s = ObjectStore(backend, clock=Clock(), new_uid=lambda: next(uids), rand=random.Random(1))
    for ns in ("default", "other"):
        asyncio.run(s.create(NAMESPACES, "", {"metadata": {"name": ns}}))
    return s


def cm(name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deployment(name: str, image: str = "busybox", replicas: int = 1) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }


def pod(name: str, node: str = "", labels: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def code_of(coro: Any) -> int:
    with pytest.raises(errors.APIError) as e:
        run(coro)
    return e.value.code


def test_create_sets_system_metadata_and_get_returns_it(store: ObjectStore) -> None:
    body = cm("a", k="v")
    body["metadata"]["uid"] = "client-chosen"
    body["metadata"]["resourceVersion"] = "999"
    created = run(store.create(CONFIGMAPS, "default", body))
    meta = created["metadata"]
    assert meta["uid"].startswith("uid-") and meta["namespace"] == "default"
    assert meta["creationTimestamp"] == "2023-11-14T22:13:20Z"
    got = run(store.get(CONFIGMAPS, "default", "a"))
    assert got == created
    assert got["kind"] == "ConfigMap" and got["apiVersion"] == "v1"


def test_create_conflicts_and_missing_namespace(store: ObjectStore) -> None:
    run(store.create(CONFIGMAPS, "default", cm("a")))
    assert code_of(store.create(CONFIGMAPS, "default", cm("a"))) == 409
    with pytest.raises(errors.APIError) as e:
        run(store.create(CONFIGMAPS, "nope", cm("a")))
    assert e.value.code == 404 and 'namespaces "nope" not found' in e.value.message
    assert code_of(store.get(CONFIGMAPS, "default", "b")) == 404


def test_generate_name(store: ObjectStore) -> None:
    made = run(store.create(CONFIGMAPS, "default", {"metadata": {"generateName": "web-"}}))
    name = made["metadata"]["name"]
    assert name.startswith("web-") and len(name) == len("web-") + 5


def test_invalid_object_is_422_with_causes(store: ObjectStore) -> None:
    bad = deployment("bad")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(errors.APIError) as e:
        run(store.create(DEPLOYMENTS, "default", bad))
    assert e.value.code == 422
    fields = [c["field"] for c in e.value.details["causes"]]  # type: ignore[index]
    assert "spec.template.metadata.labels" in fields


def test_update_precondition_generation_and_status_split(store: ObjectStore) -> None:
    d = run(store.create(DEPLOYMENTS, "default", deployment("web")))
    assert d["metadata"]["generation"] == 1 and d["spec"]["strategy"]["type"] == "RollingUpdate"
    stale = dict(d, metadata=dict(d["metadata"], resourceVersion="1"))
    assert code_of(store.update(DEPLOYMENTS, "default", "web", stale)) == 409
    # The client's status is ignored on the main resource; a spec change bumps generation.
    changed = deployment("web", image="busybox:2")
    changed["status"] = {"replicas": 7}
    d2 = run(store.update(DEPLOYMENTS, "default", "web", changed))
    assert d2["metadata"]["generation"] == 2 and d2["status"] == {}
    assert d2["metadata"]["uid"] == d["metadata"]["uid"]
    # Status is written through the subresource, which ignores spec changes.
    st = dict(d2, status={"observedGeneration": 2, "replicas": 1})
    st["spec"] = dict(d2["spec"], replicas=9)
    d3 = run(store.update(DEPLOYMENTS, "default", "web", st, subresource="status"))
    assert d3["status"]["replicas"] == 1 and d3["spec"]["replicas"] == 1
    assert d3["metadata"]["generation"] == 2
    # A label change alone does not bump generation.
    lab = dict(d3, metadata=dict(d3["metadata"], labels={"app": "web", "x": "y"}))
    assert run(store.update(DEPLOYMENTS, "default", "web", lab))["metadata"]["generation"] == 2


def test_noop_update_makes_no_revision(store: ObjectStore, backend: LocalBackend) -> None:
    a = run(store.create(CONFIGMAPS, "default", cm("a", k="v")))
    again = run(store.update(CONFIGMAPS, "default", "a", a))
    assert again["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]


def test_immutable_selector(store: ObjectStore) -> None:
    run(store.create(DEPLOYMENTS, "default", deployment("web")))
    d = deployment("web")
    d["spec"]["selector"] = {"matchLabels": {"app": "web", "v": "2"}}
    d["spec"]["template"]["metadata"]["labels"] = {"app": "web", "v": "2"}
    assert code_of(store.update(DEPLOYMENTS, "default", "web", d)) == 422


def test_too_large_object(store: ObjectStore) -> None:
    assert code_of(store.create(CONFIGMAPS, "default", cm("big", k="x" * 1_600_000))) in (
        413,
        422,
    )


def test_list_sorted_filtered_and_paginated(store: ObjectStore) -> None:
    for ns, name, tier in [("other", "b", "x"), ("default", "c", "y"), ("default", "a", "x")]:
        run(store.create(PODS, ns, pod(name, labels={"tier": tier})))
    everything = run(store.list(PODS, None))
    keys = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in everything["items"]]
    assert keys == [("default", "a"), ("default", "c"), ("other", "b")]
    assert everything["kind"] == "PodList" and int(everything["metadata"]["resourceVersion"]) > 0
    xs = run(store.list(PODS, None, ListOptions(label_selector="tier=x")))
    assert [o["metadata"]["name"] for o in xs["items"]] == ["a", "b"]
    fs = run(store.list(PODS, "default", ListOptions(field_selector="metadata.name!=a")))
    assert [o["metadata"]["name"] for o in fs["items"]] == ["c"]
    page1 = run(store.list(PODS, None, ListOptions(limit=2)))
    assert len(page1["items"]) == 2 and page1["metadata"]["continue"]
    run(store.create(PODS, "default", pod("b")))  # after the first page: not in this list
    page2 = run(
        store.list(PODS, None, ListOptions(limit=2, continue_=page1["metadata"]["continue"]))
    )
    assert [o["metadata"]["name"] for o in page2["items"]] == ["b"]
    assert "continue" not in page2["metadata"]
    assert code_of(store.list(PODS, None, ListOptions(label_selector="a in (b"))) == 400
    assert code_of(store.list(PODS, None, ListOptions(field_selector="spec.bogus=1"))) == 400
    assert code_of(store.list(PODS, None, ListOptions(continue_="junk"))) == 400


def test_pod_deletion_graceful_when_bound(store: ObjectStore) -> None:
    run(store.create(PODS, "default", pod("free")))
    gone = run(store.delete(PODS, "default", "free"))
    assert gone["metadata"]["name"] == "free"
    assert code_of(store.get(PODS, "default", "free")) == 404
    run(store.create(PODS, "default", pod("bound", node="worker-1")))
    left = run(store.delete(PODS, "default", "bound"))
    assert left["metadata"]["deletionGracePeriodSeconds"] == 30
    assert run(store.get(PODS, "default", "bound"))["metadata"]["deletionTimestamp"]
    run(store.delete(PODS, "default", "bound", DeleteOptions(grace_period_seconds=0)))
    assert code_of(store.get(PODS, "default", "bound")) == 404


def test_finalizers_hold_deletion_until_removed(store: ObjectStore) -> None:
    body = cm("f")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    run(store.create(CONFIGMAPS, "default", body))
    held = run(store.delete(CONFIGMAPS, "default", "f"))
    assert held["metadata"]["deletionTimestamp"]
    cur = run(store.get(CONFIGMAPS, "default", "f"))
    cur["metadata"]["finalizers"] = []
    run(store.update(CONFIGMAPS, "default", "f", cur))
    assert code_of(store.get(CONFIGMAPS, "default", "f")) == 404


def test_terminating_namespace_refuses_creates(store: ObjectStore) -> None:
    ns = run(store.delete(NAMESPACES, "", "other"))
    assert ns["status"]["phase"] == "Terminating"
    assert code_of(store.create(CONFIGMAPS, "other", cm("x"))) == 403
    run(store.delete(NAMESPACES, "", "other", DeleteOptions(finalize_namespace=True)))
    assert code_of(store.get(NAMESPACES, "", "other")) == 404


async def collect(it: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
    out = []
    async for ev in it:
        out.append(ev)
        if len(out) == n:
            break
    return out


def test_watch_from_revision_with_selector_transitions(store: ObjectStore) -> None:
    async def go() -> list[tuple[str, str]]:
        start = await store.list(PODS, "default")
        rv = start["metadata"]["resourceVersion"]
        it = store.watch(PODS, "default", ListOptions(resource_version=rv, label_selector="a=1"))
        task = asyncio.ensure_future(collect(it, 4))
        await store.create(PODS, "default", pod("p", labels={"a": "1"}))  # ADDED
        await store.create(PODS, "default", pod("q", labels={"a": "2"}))  # filtered
        await store.create(PODS, "other", pod("r", labels={"a": "1"}))  # other namespace
        cur = await store.get(PODS, "default", "p")
        cur["metadata"]["labels"] = {"a": "2"}
        await store.update(PODS, "default", "p", cur)  # leaves the selector: DELETED
        cur = await store.get(PODS, "default", "q")
        cur["metadata"]["labels"] = {"a": "1"}
        await store.update(PODS, "default", "q", cur)  # enters: ADDED
        await store.delete(PODS, "default", "q")  # DELETED
        events = await asyncio.wait_for(task, 10)
        return [(e.type, e.object["metadata"]["name"]) for e in events]

    assert run(go()) == [("ADDED", "p"), ("DELETED", "p"), ("ADDED", "q"), ("DELETED", "q")]


def test_watch_without_revision_starts_with_synthetic_adds(store: ObjectStore) -> None:
    async def go() -> list[str]:
        await store.create(CONFIGMAPS, "default", cm("a"))
        it = store.watch(CONFIGMAPS, "default", ListOptions(resource_version="0"))
        task = asyncio.ensure_future(collect(it, 2))
        await asyncio.sleep(0)
        await store.create(CONFIGMAPS, "default", cm("b"))
        return [f"{e.type} {e.object['metadata']['name']}" for e in await task]

    assert run(go()) == ["ADDED a", "ADDED b"]


def test_watch_compacted_revision_is_410(store: ObjectStore, backend: LocalBackend) -> None:
    async def go() -> list[WatchEvent]:
        for i in range(3):
            await store.create(CONFIGMAPS, "default", cm(f"c{i}"))
        await backend.compact(backend.store.revision)
        return await collect(store.watch(CONFIGMAPS, None, ListOptions(resource_version="2")), 5)

    events = run(go())
    assert len(events) == 1 and events[0].type == "ERROR"
    assert events[0].object["code"] == 410 and events[0].object["reason"] == "Expired"


def test_watch_timeout_ends_stream(store: ObjectStore) -> None:
    events = run(
        collect(
            store.watch(CONFIGMAPS, None, ListOptions(resource_version="1", timeout_seconds=0.2)), 5
        )
    )
    assert events == []


def lease(holder: str, transitions: int) -> Obj:
    return {
        "metadata": {"name": "kube-controller-manager"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 4,
            "leaseTransitions": transitions,
        },
    }


def test_fenced_writes_follow_the_lease_holder(store: ObjectStore, backend: LocalBackend) -> None:
    run(store.create(LEASES, "default", lease("a", 0)))
    fence_a = Fence("default", "kube-controller-manager", "a", 0)
    run(store.create(CONFIGMAPS, "default", cm("by-a"), fence=fence_a))
    # Renewals do not change the fence; a new holder does.
    cur = run(store.get(LEASES, "default", "kube-controller-manager"))
    cur["spec"]["renewTime"] = "2023-11-14T22:13:21.000000Z"
    cur = run(store.update(LEASES, "default", "kube-controller-manager", cur))
    run(store.create(CONFIGMAPS, "default", cm("by-a-2"), fence=fence_a))
    cur["spec"].update(holderIdentity="b", leaseTransitions=1)
    run(store.update(LEASES, "default", "kube-controller-manager", cur))
    fence_kv = backend.store.get(fence_key("default", "kube-controller-manager"))
    assert fence_kv is not None and fence_kv.value == b"b/1"
    with pytest.raises(errors.APIError) as e:
        run(store.create(CONFIGMAPS, "default", cm("late"), fence=fence_a))
    assert e.value.code == 409 and "fenced" in e.value.message
    target = run(store.get(CONFIGMAPS, "default", "by-a"))
    target["data"] = {"changed": "yes"}
    assert code_of(store.update(CONFIGMAPS, "default", "by-a", target, fence=fence_a)) == 409
    assert code_of(store.delete(CONFIGMAPS, "default", "by-a", fence=fence_a)) == 409
    fence_b = Fence("default", "kube-controller-manager", "b", 1)
    run(store.delete(CONFIGMAPS, "default", "by-a", fence=fence_b))


def test_binding_sets_the_node_once(store: ObjectStore) -> None:
    run(store.create(PODS, "default", pod("p")))
    bound = run(store.bind("default", "p", "worker-1"))
    assert bound["spec"]["nodeName"] == "worker-1"
    assert {"type": "PodScheduled", "status": "True"}.items() <= bound["status"]["conditions"][
        -1
    ].items()
    with pytest.raises(errors.APIError) as e:
        run(store.bind("default", "p", "worker-2"))
    assert e.value.code == 409 and "already assigned to node 'worker-1'" in e.value.message
    # A client cannot move a pod by replacing it: nodeName is immutable once set.
    moved = run(store.get(PODS, "default", "p"))
    moved["spec"]["nodeName"] = "worker-2"
    assert code_of(store.update(PODS, "default", "p", moved)) == 422


def test_default_tolerations_are_added_at_admission(backend: LocalBackend) -> None:
    store = ObjectStore(backend, toleration_s=300)
    run(store.create(NAMESPACES, "", {"metadata": {"name": "default"}}))
    own = pod("own")
    own["spec"]["tolerations"] = [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    ]
    made = run(store.create(PODS, "default", own))
    assert made["spec"]["tolerations"] == [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]
