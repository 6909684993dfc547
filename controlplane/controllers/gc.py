"""The garbage collector (kube-controller-manager's `pkg/controller/garbagecollector`),
simplified to its outcomes.

Objects name their owners in `metadata.ownerReferences` (by uid). The collector keeps an
index of who depends on whom, built from informers, and acts in three cases:

- a dependent none of whose owners exists any more is deleted (background propagation,
  or the policy its own finalizers ask for). "Does not exist" is decided by uid: an owner
  missing from the informer cache is looked up in the API before anything is deleted
  (the cache of the owner's kind may simply be behind the dependent's), and an owner that
  turns out absent is remembered, as uids are never reused. A dependent that still has
  a live owner only loses its references to the dead ones;
- an owner deleted with `propagationPolicy=Orphan` stays, Terminating, with the `orphan`
  finalizer: the collector removes the owner's reference from each dependent, then the
  finalizer, and the API server deletes the owner;
- an owner deleted with `Foreground` propagation carries `foregroundDeletion`: its
  dependents are deleted (foreground too when they have dependents of their own), and the
  finalizer is removed once no dependent with `blockOwnerDeletion` remains, Terminating
  ones included (a pod is waited for until its kubelet has finished with it).

Events are not watched by default: nothing kubelab makes owns or is owned by an Event,
they expire by TTL, and they are the largest cache a master would hold for nothing.
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controlplane.client.informer import Informer
from controlplane.client.workqueue import RateLimitingQueue
from controlplane.kube.errors import APIError
from controlplane.kube.resources import EVENTS, RESOURCES, Resource, by_api_version_kind

from .base import Context, key_of, run_workers, split_key

__all__ = [
    "DEFAULT_RESOURCES",
    "FOREGROUND_FINALIZER",
    "ORPHAN_FINALIZER",
    "Decision",
    "GarbageCollector",
    "RefState",
    "attempt_to_delete",
    "blocking_dependents",
    "without_finalizer",
    "without_owner_references",
]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
DEFAULT_RESOURCES: tuple[Resource, ...] = tuple(r for r in RESOURCES if r is not EVENTS)
ABSENT_CACHE_SIZE = 10_000  # absentOwnerCache


# -- decisions -------------------------------------------------------------------------------------


class RefState(StrEnum):
    """What an owner reference points at (classifyReferences)."""

    SOLID = "solid"  # an owner that exists and is not deleting its dependents
    DANGLING = "dangling"  # no object with that uid exists
    WAITING = "waiting"  # an owner deleted in the foreground: waiting for its dependents


@dataclass(frozen=True)
class Decision:
    """What to do with a dependent: keep it, drop references (`remove`: owner uids), or
    delete it with `policy`."""

    action: str  # "keep" | "remove-refs" | "delete"
    policy: str = ""
    remove: tuple[str, ...] = ()


KEEP = Decision("keep")


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def owner_references(obj: Obj) -> list[Obj]:
    refs = _meta(obj).get("ownerReferences")
    return (
        [r for r in refs if isinstance(r, dict) and r.get("uid")] if isinstance(refs, list) else []
    )


def finalizers(obj: Obj) -> list[str]:
    fins = _meta(obj).get("finalizers")
    return [str(f) for f in fins] if isinstance(fins, list) else []


def deleting(obj: Obj) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def waiting_for_dependents(obj: Obj) -> bool:
    """Deleted in the foreground and not finished with its dependents."""
    return deleting(obj) and FOREGROUND_FINALIZER in finalizers(obj)


def attempt_to_delete(
    states: Sequence[tuple[str, RefState]], has_dependents: bool, item_finalizers: Iterable[str]
) -> Decision:
    """attemptToDeleteItem for a dependent whose owner references (uid, state) are
    `states`: with a solid owner it stays (losing its dangling and waiting references);
    otherwise it is deleted, in the foreground when an owner waits for it and it has
    dependents itself, else as its own finalizers ask (background by default)."""
    solid = [uid for uid, s in states if s is RefState.SOLID]
    dangling = [uid for uid, s in states if s is RefState.DANGLING]
    waiting = [uid for uid, s in states if s is RefState.WAITING]
    if not states:
        return KEEP
    if solid:
        if not dangling and not waiting:
            return KEEP
        return Decision("remove-refs", remove=tuple(dangling + waiting))
    if waiting and has_dependents:
        return Decision("delete", "Foreground")
    fins = set(item_finalizers)
    if ORPHAN_FINALIZER in fins:
        return Decision("delete", "Orphan")
    if FOREGROUND_FINALIZER in fins:
        return Decision("delete", "Foreground")
    return Decision("delete", "Background")


def blocking_dependents(owner_uid: str, dependents: Iterable[Obj]) -> list[Obj]:
    """The dependents whose reference to `owner_uid` has blockOwnerDeletion: a foreground
    deletion of the owner waits until they are gone."""
    return [
        d
        for d in dependents
        if any(
            r.get("uid") == owner_uid and r.get("blockOwnerDeletion") is True
            for r in owner_references(d)
        )
    ]


def without_owner_references(obj: Obj, uids: Iterable[str]) -> Obj | None:
    """A copy of `obj` without its references to `uids`; None when it has none."""
    drop = set(uids)
    refs = _meta(obj).get("ownerReferences")
    if not isinstance(refs, list):
        return None
    kept = [r for r in refs if not (isinstance(r, dict) and r.get("uid") in drop)]
    if len(kept) == len(refs):
        return None
    meta = copy.deepcopy(_meta(obj))
    if kept:
        meta["ownerReferences"] = kept
    else:
        meta.pop("ownerReferences", None)
    return {**obj, "metadata": meta}


def without_finalizer(obj: Obj, finalizer: str) -> Obj | None:
    """A copy of `obj` without `finalizer`; None when it does not carry it."""
    fins = finalizers(obj)
    if finalizer not in fins:
        return None
    meta = copy.deepcopy(_meta(obj))
    meta["finalizers"] = [f for f in fins if f != finalizer]
    return {**obj, "metadata": meta}


# -- the controller --------------------------------------------------------------------------------


class GarbageCollector:
    """Deletes dependents of deleted owners, orphans, and finishes foreground deletions
    (see the module docstring) for objects of `resources`."""

    name = "garbagecollector"

    def __init__(self, resources: Sequence[Resource] = DEFAULT_RESOURCES, *, workers: int = 4):
        self.resources = tuple(resources)
        self.workers = workers

    def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.by_name: dict[str, Resource] = {r.group_resource: r for r in self.resources}
        self.informers: dict[str, Informer] = {}
        self.by_uid: dict[str, str] = {}  # uid -> item
        self.refs_of: dict[str, tuple[tuple[str, bool], ...]] = {}  # item -> its references
        self.dependents: dict[str, set[str]] = {}  # owner uid -> items
        self.absent: OrderedDict[str, None] = OrderedDict()  # owner uids known not to exist
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(name="garbagecollector")
        for res in self.resources:
            informer = ctx.informers.informer_for(res)
            self.informers[res.group_resource] = informer
            informer.add_handler(*self._handlers(res))

    async def run(self, ctx: Context) -> None:
        await run_workers(self.name, self.queue, self.sync, workers=self.workers)

    def _handlers(
        self, res: Resource
    ) -> tuple[Callable[[Obj], None], Callable[[Obj, Obj], None], Callable[[Obj], None]]:
        def on_add(obj: Obj) -> None:
            self._changed(res, obj)

        def on_update(_old: Obj, new: Obj) -> None:
            self._changed(res, new)

        def on_delete(obj: Obj) -> None:
            self._deleted(res, obj)

        return on_add, on_update, on_delete

    # -- the dependency graph --------------------------------------------------------------------

    @staticmethod
    def item_of(res: Resource, obj: Obj) -> str:
        return f"{res.group_resource}|{key_of(obj)}"

    def _get(self, item: str) -> tuple[Resource, Obj] | None:
        name, _, key = item.partition("|")
        res = self.by_name.get(name)
        if res is None:
            return None
        obj = self.informers[name].get(*split_key(key))
        return (res, obj) if obj is not None else None

    def _link(self, item: str, refs: tuple[tuple[str, bool], ...]) -> None:
        """Record that `item` has the owner references `refs` ((uid, blockOwnerDeletion))."""
        for uid, _block in self.refs_of.get(item, ()):
            deps = self.dependents.get(uid)
            if deps is not None:
                deps.discard(item)
                if not deps:
                    del self.dependents[uid]
        if refs:
            self.refs_of[item] = refs
            for uid, _block in refs:
                self.dependents.setdefault(uid, set()).add(item)
        else:
            self.refs_of.pop(item, None)

    def _changed(self, res: Resource, new: Obj) -> None:
        """Index `new`; queue what its change may concern (processGraphChanges)."""
        item = self.item_of(res, new)
        uid = str(_meta(new).get("uid") or "")
        if uid:
            self.by_uid[uid] = item
        refs = tuple(
            (str(r["uid"]), r.get("blockOwnerDeletion") is True) for r in owner_references(new)
        )
        before = self.refs_of.get(item, ())
        self._link(item, refs)
        if refs != before:
            # A new dependent, or new references: collect it if an owner is not there (or
            # not seen yet); owners it left may have waited for it.
            if any(self._owner_unsettled(u) for u, _b in refs):
                self.queue.add(item)
            self._enqueue_owners(u for u, _b in before)
        if deleting(new) and {ORPHAN_FINALIZER, FOREGROUND_FINALIZER} & set(finalizers(new)):
            self.queue.add(item)
            if waiting_for_dependents(new):
                for dep in self.dependents.get(uid, ()):
                    self.queue.add(dep)

    def _owner_unsettled(self, uid: str) -> bool:
        """The owner is not in the caches (gone, or not seen yet) or is being deleted."""
        item = self.by_uid.get(uid)
        found = self._get(item) if item is not None else None
        return found is None or deleting(found[1])

    def _deleted(self, res: Resource, obj: Obj) -> None:
        item = self.item_of(res, obj)
        uid = str(_meta(obj).get("uid") or "")
        if uid and self.by_uid.get(uid) == item:
            del self.by_uid[uid]
        refs = self.refs_of.get(item, ())
        self._link(item, ())
        for dep in self.dependents.get(uid, ()):
            self.queue.add(dep)  # their owner is gone
        self._enqueue_owners(u for u, _b in refs)  # a foreground owner may have waited for it

    def _enqueue_owners(self, owner_uids: Iterable[str]) -> None:
        for uid in owner_uids:
            item = self.by_uid.get(uid)
            if item is not None:
                self.queue.add(item)

    def _dependents_of(self, uid: str) -> list[tuple[str, Resource, Obj]]:
        out = []
        for item in sorted(self.dependents.get(uid, ())):
            found = self._get(item)
            if found is not None:
                out.append((item, *found))
        return out

    # -- sync ------------------------------------------------------------------------------------

    async def sync(self, item: str) -> None:
        """attemptToDeleteItem, or the owner's side of an orphan or foreground deletion."""
        found = self._get(item)
        if found is None:
            return
        res, obj = found
        if not deleting(obj):
            await self._attempt_to_delete(item, res, obj)
            return
        fins = finalizers(obj)
        if ORPHAN_FINALIZER in fins:
            await self._orphan_dependents(obj)
            await self._remove_finalizer(res, obj, ORPHAN_FINALIZER)
        elif FOREGROUND_FINALIZER in fins:
            await self._process_deleting_dependents(res, obj)

    async def _attempt_to_delete(self, item: str, res: Resource, obj: Obj) -> None:
        refs = owner_references(obj)
        if not refs:
            return
        meta = _meta(obj)
        namespace, uid = str(meta.get("namespace") or ""), str(meta.get("uid") or "")
        states = [(str(r["uid"]), await self._classify(r, res, namespace)) for r in refs]
        decision = attempt_to_delete(states, bool(self.dependents.get(uid)), finalizers(obj))
        if decision.action == "remove-refs":
            new = without_owner_references(obj, decision.remove)
            if new is not None and await self._write(self.ctx.writer.update(res, namespace, new)):
                logger.info("dropped owner references of %s to %s", item, list(decision.remove))
        elif decision.action == "delete":
            delete = self.ctx.writer.delete(
                res,
                namespace,
                str(meta.get("name")),
                propagation_policy=decision.policy,
                precondition_uid=uid,
            )
            if await self._write(delete):
                logger.info("deleted %s: no owner keeps it policy=%s", item, decision.policy)

    @staticmethod
    async def _write(call: Awaitable[Obj]) -> bool:
        """Await a write; False when the object was gone already (404: nothing to do)."""
        try:
            await call
        except APIError as e:
            if e.code != 404:
                raise
            return False
        return True

    def _remember_absent(self, uid: str) -> None:
        self.absent[uid] = None
        self.absent.move_to_end(uid)
        while len(self.absent) > ABSENT_CACHE_SIZE:
            self.absent.popitem(last=False)

    async def _classify(self, ref: Obj, dependent: Resource, namespace: str) -> RefState:
        """The state of the owner `ref` of a dependent of kind `dependent` in `namespace`:
        from the caches, else from the API (never "dangling" on the cache's word alone)."""
        uid = str(ref["uid"])
        owner_res = by_api_version_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if owner_res is None or (owner_res.namespaced and not dependent.namespaced):
            return RefState.SOLID  # unresolvable: never collected on its account
        if uid in self.absent:
            return RefState.DANGLING
        item = self.by_uid.get(uid)
        found = self._get(item) if item is not None else None
        if found is not None and found[0] == owner_res:
            return RefState.WAITING if waiting_for_dependents(found[1]) else RefState.SOLID
        try:
            owner = await self.ctx.client.get(
                owner_res, namespace if owner_res.namespaced else "", str(ref.get("name", ""))
            )
        except APIError as e:
            if e.code != 404:
                raise
            self._remember_absent(uid)
            return RefState.DANGLING
        if _meta(owner).get("uid") != uid:
            self._remember_absent(uid)
            return RefState.DANGLING
        return RefState.WAITING if waiting_for_dependents(owner) else RefState.SOLID

    async def _orphan_dependents(self, owner: Obj) -> None:
        """Remove the references to `owner` from every dependent (orphanDependents)."""
        uid = str(_meta(owner).get("uid") or "")
        for item, res, dep in self._dependents_of(uid):
            new = without_owner_references(dep, [uid])
            if new is None:
                continue
            namespace = str(_meta(dep).get("namespace") or "")
            if await self._write(self.ctx.writer.update(res, namespace, new)):
                logger.info("orphaned %s", item)

    async def _process_deleting_dependents(self, res: Resource, owner: Obj) -> None:
        """processDeletingDependentsItem: delete the dependents (through their own sync),
        remove the finalizer once no blocking one is left."""
        uid = str(_meta(owner).get("uid") or "")
        deps = self._dependents_of(uid)
        if not blocking_dependents(uid, [d for _i, _r, d in deps]):
            await self._remove_finalizer(res, owner, FOREGROUND_FINALIZER)
            return
        for item, _res, dep in deps:
            if not deleting(dep) or waiting_for_dependents(dep):
                self.queue.add(item)

    async def _remove_finalizer(self, res: Resource, obj: Obj, finalizer: str) -> None:
        new = without_finalizer(obj, finalizer)
        if new is None:
            return
        namespace = str(_meta(obj).get("namespace") or "")
        if await self._write(self.ctx.writer.update(res, namespace, new)):
            logger.info("removed finalizer %s from %s %s", finalizer, res.kind, key_of(obj))
