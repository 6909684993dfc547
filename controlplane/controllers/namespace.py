"""The namespace controller (kube-controller-manager's `pkg/controller/namespace`).

Deleting a Namespace only marks it: it gets a deletionTimestamp and phase Terminating, and
keeps the `kubernetes` finalizer in `spec.finalizers` (metadata finalizers are other
controllers' business). This controller then deletes every namespaced object in it, with
ordinary deletes (pods terminate gracefully; the garbage collector sees owners go), and
comes back until nothing is left: a pod on a dead node keeps its namespace Terminating, as
in Kubernetes. Then it removes `kubernetes` from `spec.finalizers` and deletes the
Namespace again, which the API server now carries out.

Kubernetes removes the finalizer through the `namespaces/{name}/finalize` subresource. The
gRPC API has no such call; an update of the Namespace that drops the finalizer, followed by
a DELETE (both preconditioned on what was read), does the same through the current API.
Reads of the contents go to the API, not to informers: the controller must see what is
left now, and namespace deletion is rare. While objects terminate it looks again when the
last graceful deletion is due, and at once when a pod of the namespace is gone.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable
from typing import Any

from controlplane.client.workqueue import RateLimitingQueue
from controlplane.kube.errors import APIError
from controlplane.kube.resources import NAMESPACES, PODS, RESOURCES, Resource
from controlplane.kube.storage import parse_rfc3339

from .base import Context, key_of, run_workers

__all__ = [
    "NAMESPACE_FINALIZER",
    "NamespaceController",
    "finalizers_left",
    "recheck_delay",
    "to_delete",
    "without_namespace_finalizer",
]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

NAMESPACE_FINALIZER = "kubernetes"
MIN_RECHECK_S = 1.0
MAX_RECHECK_S = 10.0
STUCK_RECHECK_S = 5.0  # content that will not go by itself (a dead node's pods, finalizers)


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def to_delete(objects: Iterable[Obj]) -> list[Obj]:
    """The objects a DELETE is still due for: those not already being deleted."""
    return [o for o in objects if not _meta(o).get("deletionTimestamp")]


def recheck_delay(remaining: Iterable[Obj], now: float) -> float:
    """When to look again at a namespace whose `remaining` objects are being deleted: when
    the last graceful deletion is due (estimateGracefulTermination), within
    [MIN_RECHECK_S, MAX_RECHECK_S]; STUCK_RECHECK_S when none is due in the future."""
    due = [parse_rfc3339(_meta(o).get("deletionTimestamp")) for o in remaining]
    future = [t - now for t in due if t is not None and t > now]
    if not future:
        return STUCK_RECHECK_S
    return min(MAX_RECHECK_S, max(MIN_RECHECK_S, math.ceil(max(future))))


def finalizers_left(ns: Obj) -> bool:
    """Whether a deleted Namespace still waits for a finalizer (spec or metadata): then a
    DELETE would not remove it."""
    spec = ns.get("spec")
    spec_fins = spec.get("finalizers") if isinstance(spec, dict) else None
    return bool(spec_fins) or bool(_meta(ns).get("finalizers"))


def without_namespace_finalizer(ns: Obj) -> Obj | None:
    """The Namespace with `kubernetes` dropped from spec.finalizers; None when absent."""
    spec = ns.get("spec")
    fins = spec.get("finalizers") if isinstance(spec, dict) else None
    if not isinstance(fins, list) or NAMESPACE_FINALIZER not in fins:
        return None
    new_spec = copy.deepcopy(spec) if isinstance(spec, dict) else {}
    new_spec["finalizers"] = [f for f in fins if f != NAMESPACE_FINALIZER]
    return {**ns, "spec": new_spec}


class NamespaceController:
    """Empties and finalizes Terminating namespaces (see the module docstring)."""

    name = "namespace"

    def __init__(self, resources: Iterable[Resource] = RESOURCES, *, workers: int = 2) -> None:
        self.resources = tuple(r for r in resources if r.namespaced)
        self.workers = workers

    def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.namespaces = ctx.informers.informer_for(NAMESPACES)
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(name="namespace")
        self.namespaces.add_handler(self._enqueue, lambda _old, new: self._enqueue(new))
        # Pods are what usually keeps a namespace waiting (graceful termination): the end
        # of one in a terminating namespace is worth a look at once.
        ctx.informers.informer_for(PODS).add_handler(on_delete=self._pod_gone)

    def _enqueue(self, ns: Obj) -> None:
        if _meta(ns).get("deletionTimestamp"):
            self.queue.add(key_of(ns))

    def _pod_gone(self, pod: Obj) -> None:
        ns = self.namespaces.get(None, str(_meta(pod).get("namespace") or ""))
        if ns is not None:
            self._enqueue(ns)

    async def run(self, ctx: Context) -> None:
        await run_workers(self.name, self.queue, self.sync, workers=self.workers)

    async def sync(self, name: str) -> None:
        ns = self.namespaces.get(None, name)
        if ns is None or not _meta(ns).get("deletionTimestamp"):
            return
        finalized = without_namespace_finalizer(ns)
        if finalized is not None:
            remaining = await self.delete_content(name)
            if remaining:
                delay = recheck_delay(remaining, self.ctx.clock())
                logger.info(
                    "namespace %s: %d objects still terminating, again in %.0fs",
                    name,
                    len(remaining),
                    delay,
                )
                self.queue.add_after(name, delay)
                return
            ns = await self.ctx.writer.update(NAMESPACES, "", finalized)
            logger.info(
                "namespace %s: content deleted, finalizer %s removed", name, NAMESPACE_FINALIZER
            )
        if finalizers_left(ns):
            return  # other finalizers: their controllers' business
        try:
            await self.ctx.writer.delete(
                NAMESPACES, "", name, precondition_uid=str(_meta(ns).get("uid") or "")
            )
        except APIError as e:
            if e.code != 404:
                raise
        logger.info("namespace %s deleted", name)

    async def delete_content(self, namespace: str) -> list[Obj]:
        """Delete every object in `namespace`; returns those still there afterwards."""
        remaining: list[Obj] = []
        for res in self.resources:
            items = (await self.ctx.client.list(res, namespace)).get("items") or []
            for obj in items:
                left = obj if _meta(obj).get("deletionTimestamp") else await self._delete(res, obj)
                if left is not None:
                    remaining.append(left)
        return remaining

    async def _delete(self, res: Resource, obj: Obj) -> Obj | None:
        """DELETE `obj`; what stays of it (Terminating), or None once it is gone."""
        meta = _meta(obj)
        try:
            left = await self.ctx.writer.delete(
                res,
                str(meta.get("namespace") or ""),
                str(meta.get("name")),
                precondition_uid=str(meta.get("uid") or ""),
            )
        except APIError as e:
            if e.code == 404:
                return None
            raise
        return left if _meta(left).get("deletionTimestamp") else None
