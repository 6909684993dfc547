"""The namespace controller: its decisions as tables, then deleting a namespace in process
over the gRPC API on a `LocalBackend` store."""

from __future__ import annotations

from typing import Any

import pytest
from client import cluster, eventually, run

from controlplane.client.resources import ResourceClient
from controlplane.controllers.namespace import (
    MAX_RECHECK_S,
    MIN_RECHECK_S,
    STUCK_RECHECK_S,
    NamespaceController,
    finalizers_left,
    recheck_delay,
    to_delete,
    without_namespace_finalizer,
)
from controlplane.kube.errors import APIError
from controlplane.kube.resources import CONFIGMAPS, NAMESPACES, PODS
from controlplane.kube.storage import DeleteOptions, parse_rfc3339

from .test_nodelifecycle import pod_obj, running

Obj = dict[str, Any]

T0 = parse_rfc3339("2025-01-01T00:00:00Z") or 0.0


def terminating(at: str | None) -> Obj:
    meta: Obj = {"name": "x"}
    if at is not None:
        meta["deletionTimestamp"] = at
    return {"metadata": meta}


def test_to_delete_skips_what_is_terminating() -> None:
    objs = [terminating(None), terminating("2025-01-01T00:00:30Z")]
    assert to_delete(objs) == [objs[0]]


@pytest.mark.parametrize(
    ("deletion_times", "delay"),
    [
        pytest.param(["2025-01-01T00:00:30Z"], MAX_RECHECK_S, id="capped"),
        pytest.param(["2025-01-01T00:00:03Z", "2025-01-01T00:00:05Z"], 5.0, id="last-due"),
        pytest.param(["2024-12-31T23:59:00Z"], STUCK_RECHECK_S, id="overdue-dead-node"),
        pytest.param([], STUCK_RECHECK_S, id="finalizers-only"),
        pytest.param(["2025-01-01T00:00:00.2Z"], MIN_RECHECK_S, id="floor"),
    ],
)
def test_recheck_delay(deletion_times: list[str], delay: float) -> None:
    """Look again when the last graceful deletion is due, within bounds; a steady poll when
    nothing is due (a pod of a dead node, a finalizer)."""
    assert recheck_delay([terminating(t) for t in deletion_times], T0) == delay


@pytest.mark.parametrize(
    ("spec", "meta_finalizers", "finalized", "left"),
    [
        pytest.param({"finalizers": ["kubernetes"]}, [], {"finalizers": []}, False, id="ours"),
        pytest.param(
            {"finalizers": ["kubernetes", "example.com/x"]},
            [],
            {"finalizers": ["example.com/x"]},
            True,
            id="and-another",
        ),
        pytest.param({"finalizers": []}, ["example.com/y"], None, True, id="metadata-finalizer"),
        pytest.param({}, [], None, False, id="none"),
    ],
)
def test_namespace_finalizers(
    spec: Obj, meta_finalizers: list[str], finalized: Obj | None, left: bool
) -> None:
    """`kubernetes` is this controller's; a DELETE removes the Namespace only once no
    finalizer at all is left."""
    ns: Obj = {"metadata": {"name": "team", "finalizers": meta_finalizers}, "spec": spec}
    new = without_namespace_finalizer(ns)
    assert (new["spec"] if new is not None else None) == finalized
    assert finalizers_left(new if new is not None else ns) is left


# -- in process ------------------------------------------------------------------------------------


async def get_or_none(client: ResourceClient, res: Any, ns: str, name: str) -> Obj | None:
    try:
        return await client.get(res, ns, name)
    except APIError as e:
        if e.code == 404:
            return None
        raise


def in_team(obj: Obj) -> Obj:
    obj["metadata"]["namespace"] = "team"
    return obj


def test_namespace_deletion_empties_then_removes_it() -> None:
    """Deleting a namespace: everything in it is deleted; a bound pod stays Terminating
    and so does the namespace; once the kubelet has finished the pod the namespace goes.
    Namespaces not being deleted are untouched."""

    async def body() -> None:
        async with cluster() as c:
            store = c.store
            await store.create(NAMESPACES, "", {"metadata": {"name": "team"}})
            await store.create(CONFIGMAPS, "team", {"metadata": {"name": "config"}})
            await store.create(CONFIGMAPS, "default", {"metadata": {"name": "config"}})
            await store.create(PODS, "team", in_team(pod_obj("pending")))
            await store.create(PODS, "team", in_team(pod_obj("bound", "worker-1")))
            client = c.client()
            async with running(client, [NamespaceController()]):
                ns = await client.delete(NAMESPACES, "", "team")
                assert ns["status"]["phase"] == "Terminating"

                async def emptied() -> bool:
                    gone = [
                        await get_or_none(client, CONFIGMAPS, "team", "config"),
                        await get_or_none(client, PODS, "team", "pending"),
                    ]
                    bound = await get_or_none(client, PODS, "team", "bound")
                    return gone == [None, None] and bool(
                        bound and bound["metadata"].get("deletionTimestamp")
                    )

                await eventually(emptied, "the namespace's content deleted")
                assert await get_or_none(client, NAMESPACES, "", "team") is not None, (
                    "waits for its terminating pod"
                )
                await store.delete(PODS, "team", "bound", DeleteOptions(grace_period_seconds=0))

                async def gone() -> bool:
                    return await get_or_none(client, NAMESPACES, "", "team") is None

                await eventually(gone, "the namespace deleted")
                assert await get_or_none(client, CONFIGMAPS, "default", "config") is not None

    run(body())
