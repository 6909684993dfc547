"""The garbage collector: its decisions as tables (which dependents go, with which
policy; orphaning; what a foreground deletion waits for), then the collector in process
over the gRPC API on a `LocalBackend` store."""

from __future__ import annotations

from typing import Any

import pytest
from client import cluster, eventually, run

from controlplane.client.resources import ResourceClient
from controlplane.controllers.gc import (
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    Decision,
    GarbageCollector,
    RefState,
    attempt_to_delete,
    blocking_dependents,
    without_finalizer,
    without_owner_references,
)
from controlplane.kube.errors import APIError
from controlplane.kube.resources import CONFIGMAPS, PODS, REPLICASETS, Resource
from controlplane.kube.storage import DeleteOptions, ObjectStore

from .test_nodelifecycle import pod_obj, running

Obj = dict[str, Any]

S, D, W = RefState.SOLID, RefState.DANGLING, RefState.WAITING


# -- decisions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "has_dependents", "finalizers", "want"),
    [
        pytest.param([("a", S)], False, [], Decision("keep"), id="owner-alive"),
        pytest.param([("a", D)], False, [], Decision("delete", "Background"), id="owner-gone"),
        pytest.param(
            [("a", S), ("b", D)], False, [], Decision("remove-refs", remove=("b",)), id="one-of-two"
        ),
        pytest.param(
            [("a", S), ("b", W)],
            False,
            [],
            Decision("remove-refs", remove=("b",)),
            id="solid-and-waiting",
        ),
        pytest.param(
            [("a", D), ("b", D)], False, [], Decision("delete", "Background"), id="all-gone"
        ),
        pytest.param(
            [("a", W)], True, [], Decision("delete", "Foreground"), id="waiting-with-deps"
        ),
        pytest.param([("a", W)], False, [], Decision("delete", "Background"), id="waiting-leaf"),
        pytest.param(
            [("a", D)], False, [ORPHAN_FINALIZER], Decision("delete", "Orphan"), id="own-orphan"
        ),
        pytest.param(
            [("a", D)], False, [FOREGROUND_FINALIZER], Decision("delete", "Foreground"), id="own-fg"
        ),
        pytest.param([], False, [], Decision("keep"), id="no-owners"),
    ],
)
def test_attempt_to_delete(
    states: list[tuple[str, RefState]], has_dependents: bool, finalizers: list[str], want: Decision
) -> None:
    """attemptToDeleteItem: a solid owner keeps a dependent; otherwise it is deleted, in the
    foreground when an owner waits for it and it has dependents of its own."""
    assert attempt_to_delete(states, has_dependents, finalizers) == want


def ref(uid: str, block: bool | None = None, name: str = "web") -> Obj:
    r: Obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": name,
        "uid": uid,
        "controller": True,
    }
    if block is not None:
        r["blockOwnerDeletion"] = block
    return r


def dependent(name: str, *refs: Obj, finalizers: list[str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "ownerReferences": list(refs)}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"metadata": meta}


def test_blocking_dependents() -> None:
    """A foreground deletion waits only for references with blockOwnerDeletion."""
    deps = [
        dependent("a", ref("rs", True)),
        dependent("b", ref("rs", False)),
        dependent("c", ref("rs")),
        dependent("d", ref("other", True)),
    ]
    assert [d["metadata"]["name"] for d in blocking_dependents("rs", deps)] == ["a"]


@pytest.mark.parametrize(
    ("refs", "drop", "want"),
    [
        pytest.param([ref("a"), ref("b")], ["a"], [ref("b")], id="one"),
        pytest.param([ref("a")], ["a"], None, id="last"),
        pytest.param([ref("a")], ["x"], "unchanged", id="absent"),
    ],
)
def test_without_owner_references(refs: list[Obj], drop: list[str], want: Any) -> None:
    obj = dependent("p", *refs)
    new = without_owner_references(obj, drop)
    if want == "unchanged":
        assert new is None
        return
    assert new is not None
    assert new["metadata"].get("ownerReferences") == want
    assert obj["metadata"]["ownerReferences"] == refs, "not mutated"


def test_without_finalizer() -> None:
    obj = dependent("p", finalizers=[ORPHAN_FINALIZER, "example.com/x"])
    new = without_finalizer(obj, ORPHAN_FINALIZER)
    assert new is not None and new["metadata"]["finalizers"] == ["example.com/x"]
    assert without_finalizer(new, ORPHAN_FINALIZER) is None


# -- in process ------------------------------------------------------------------------------------


def replica_set(name: str, finalizers: list[str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default"}
    if finalizers:
        meta["finalizers"] = finalizers
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta,
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            },
        },
    }


async def owned_pods(store: ObjectStore, owner: Obj, names: list[str], node: str = "") -> None:
    meta = owner["metadata"]
    r = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    for name in names:
        await store.create(PODS, "default", pod_obj(name, node, owners=[r]))


async def exists(client: ResourceClient, res: Resource, name: str) -> Obj | None:
    try:
        return await client.get(res, "default", name)
    except APIError as e:
        if e.code == 404:
            return None
        raise


def test_deleting_a_replicaset_deletes_its_pods() -> None:
    """Background propagation: the RS goes at once, then its pods; a pod with another,
    live owner only loses its reference; pods of a live RS stay."""

    async def body() -> None:
        async with cluster() as c:
            store = c.store
            web = await store.create(REPLICASETS, "default", replica_set("web"))
            db = await store.create(REPLICASETS, "default", replica_set("db"))
            await owned_pods(store, web, ["web-1", "web-2"])
            await owned_pods(store, db, ["db-1"])
            cm = await store.create(CONFIGMAPS, "default", {"metadata": {"name": "keep"}})
            shared = pod_obj("shared")
            shared["metadata"]["ownerReferences"] = [
                {**ref(web["metadata"]["uid"]), "name": "web"},
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "keep",
                    "uid": cm["metadata"]["uid"],
                },
            ]
            await store.create(PODS, "default", shared)
            client = c.client()
            async with running(client, [GarbageCollector()]):
                await client.delete(REPLICASETS, "default", "web")

                async def collected() -> bool:
                    return [await exists(client, PODS, n) for n in ("web-1", "web-2")] == [
                        None,
                        None,
                    ]

                await eventually(collected, "the RS's pods deleted")

                async def shared_released() -> bool:
                    p = await exists(client, PODS, "shared")
                    return p is not None and [
                        r["kind"] for r in p["metadata"]["ownerReferences"]
                    ] == ["ConfigMap"]

                await eventually(shared_released, "the shared pod keeps only its live owner")
                assert await exists(client, PODS, "db-1") is not None

    run(body())


def test_orphan_propagation() -> None:
    """An owner deleted with the orphan finalizer: its dependents lose the reference, then
    the finalizer goes and the owner with it; the pods stay."""

    async def body() -> None:
        async with cluster() as c:
            store = c.store
            rs = await store.create(REPLICASETS, "default", replica_set("web", [ORPHAN_FINALIZER]))
            await owned_pods(store, rs, ["web-1", "web-2"])
            client = c.client()
            async with running(client, [GarbageCollector()]):
                left = await client.delete(REPLICASETS, "default", "web")
                assert left["metadata"].get("deletionTimestamp"), "kept by its finalizer"

                async def rs_gone() -> bool:
                    return await exists(client, REPLICASETS, "web") is None

                await eventually(rs_gone, "the orphaning owner deleted")
                for name in ("web-1", "web-2"):
                    p = await exists(client, PODS, name)
                    assert p is not None and not p["metadata"].get("ownerReferences")

    run(body())


def test_foreground_propagation_waits_for_blocking_dependents() -> None:
    """Foreground: the RS stays (foregroundDeletion) while its pods are deleted; bound pods
    stay Terminating until their kubelet ends them, and the RS waits for them; then it
    goes."""

    async def body() -> None:
        async with cluster() as c:
            store = c.store
            rs = await store.create(REPLICASETS, "default", replica_set("web"))
            await owned_pods(store, rs, ["web-1", "web-2"], node="worker-1")
            client = c.client()
            async with running(client, [GarbageCollector()]):
                left = await client.delete(
                    REPLICASETS, "default", "web", propagation_policy="Foreground"
                )
                assert left["metadata"]["finalizers"] == [FOREGROUND_FINALIZER]

                async def pods_terminating() -> bool:
                    pods = [await exists(client, PODS, n) for n in ("web-1", "web-2")]
                    return all(
                        p is not None and p["metadata"].get("deletionTimestamp") for p in pods
                    )

                await eventually(pods_terminating, "the pods deleted (gracefully)")
                assert await exists(client, REPLICASETS, "web") is not None, "waits for its pods"

                for name in ("web-1", "web-2"):  # the kubelet finishes them
                    await store.delete(PODS, "default", name, DeleteOptions(grace_period_seconds=0))

                async def rs_gone() -> bool:
                    return await exists(client, REPLICASETS, "web") is None

                await eventually(rs_gone, "the RS deleted once its pods are gone")

    run(body())


def test_an_owner_missing_from_the_cache_is_asked_of_the_api() -> None:
    """With no ReplicaSet informer the owner is never in the caches: the collector looks
    it up by uid in the API, keeps the pod of a live RS and deletes the pod whose owner
    uid does not exist (a same-named RS with another uid is not its owner)."""

    async def body() -> None:
        async with cluster() as c:
            store = c.store
            rs = await store.create(REPLICASETS, "default", replica_set("web"))
            await owned_pods(store, rs, ["live"])
            client = c.client()
            async with running(client, [GarbageCollector([PODS])]):
                stale = pod_obj("stale")
                stale["metadata"]["ownerReferences"] = [ref("uid-of-an-older-web")]
                await store.create(PODS, "default", stale)

                async def stale_gone() -> bool:
                    return await exists(client, PODS, "stale") is None

                await eventually(stale_gone, "the pod of a vanished owner deleted")
                assert await exists(client, PODS, "live") is not None

    run(body())
