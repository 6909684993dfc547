"""The ReplicaSet controller (kube-controller-manager's `pkg/controller/replicaset`).

A ReplicaSet keeps `spec.replicas` active pods that match its selector. A sync
(syncReplicaSet) is level-triggered: it re-reads the ReplicaSet and the pods from the
informers' caches, claims pods (adopts matching orphans, releases its pods that stopped
matching), creates or deletes the difference and writes the status it observed.

The caches lag behind the writes this controller makes, so, as in Kubernetes, it keeps
*expectations*: after asking for N creations (or for the deletion of given pods) it does
not act on that ReplicaSet again until the informer has shown it every one of them, or
five minutes have passed (the creation may have been lost). Without them a second sync
would count the pods it just created as missing and create them again.

Creations go in slow-start batches (1, 2, 4, ...; at most 500 per sync): a quota or
admission error stops after one failed batch instead of a flood of doomed requests and
Events. Deletions prefer the pods that matter least (`pods_to_delete`: unscheduled,
pending, not ready, doubled up on a node, recently ready, restarting, young).

The decisions are pure functions below; `ReplicaSetController` only reads caches and
writes through `ctx.writer` (fenced by the controller-manager's Lease).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controlplane.client.workqueue import RateLimitingQueue
from controlplane.kube.errors import APIError
from controlplane.kube.resources import PODS, REPLICASETS
from controlplane.kube.selectors import LabelSelector
from controlplane.kube.storage import rfc3339

from . import podutil
from .base import Context, key_of, run_workers, split_key
from .podutil import (
    Claim,
    Obj,
    controller_ref,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    labels_of,
    meta_of,
    name_of,
    namespace_of,
    spec_of,
    status_of,
    uid_of,
)

logger = logging.getLogger(__name__)

BURST_REPLICAS = 500  # --replicaset burst: creations or deletions per sync
SLOW_START_INITIAL_BATCH_SIZE = 1  # controller.SlowStartInitialBatchSize
EXPECTATIONS_TIMEOUT_S = 300.0  # controller.ExpectationsTimeout
DEFAULT_WORKERS = 5  # --concurrent-replicaset-syncs
REPLICA_FAILURE = "ReplicaFailure"

# -- expectations ------------------------------------------------------------------------------


@dataclass
class _Expectation:
    add: int
    delete: int
    set_at: float
    deleting: set[str] = field(default_factory=set)  # pod keys whose deletion we await


class ControllerExpectations:
    """Kubernetes' `UIDTrackingControllerExpectations`, per ReplicaSet key.

    `expect_creations(key, n)` / `expect_deletions(key, pod_keys)` record what a sync asked
    for; the informer handlers call `creation_observed` / `deletion_observed` as the cache
    catches up; `satisfied(key)` tells a sync whether it may act: when nothing is
    recorded, when everything was observed, or when the record is older than `timeout`.
    A deletion counts once per pod, whether it shows as a deletionTimestamp or as the
    final delete. Time is passed in by the caller (epoch seconds)."""

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT_S) -> None:
        self.timeout = timeout
        self._by_key: dict[str, _Expectation] = {}

    def satisfied(self, key: str, now: float) -> bool:
        exp = self._by_key.get(key)
        if exp is None:
            return True
        if exp.add <= 0 and exp.delete <= 0:
            return True
        return now - exp.set_at > self.timeout

    def expect_creations(self, key: str, count: int, now: float) -> None:
        self._by_key[key] = _Expectation(add=count, delete=0, set_at=now)

    def expect_deletions(self, key: str, pod_keys: Sequence[str], now: float) -> None:
        self._by_key[key] = _Expectation(
            add=0, delete=len(pod_keys), set_at=now, deleting=set(pod_keys)
        )

    def creation_observed(self, key: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.add -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None and pod_key in exp.deleting:
            exp.deleting.discard(pod_key)
            exp.delete -= 1

    def delete(self, key: str) -> None:
        self._by_key.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still awaited for `key`."""
        exp = self._by_key.get(key)
        return (exp.add, exp.delete) if exp is not None else (0, 0)


# -- slow start --------------------------------------------------------------------------------


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH_SIZE) -> list[int]:
    """The batch sizes `slow_start_batch` uses for `count` calls: `initial`, then doubling,
    the last one cut to what remains (10 -> [1, 2, 4, 3])."""
    if initial < 1:
        raise ValueError(f"the initial batch size must be at least 1, not {initial}")
    sizes: list[int] = []
    remaining = count
    size = min(remaining, initial)
    while size > 0:
        sizes.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return sizes


async def slow_start_batch(
    count: int, initial: int, fn: Callable[[], Awaitable[None]]
) -> tuple[int, BaseException | None]:
    """Call `fn` `count` times in `slow_start_batches`, each batch concurrently; stop after
    the first batch with a failure. Returns (successful calls, the first error or None)."""
    successes = 0
    for size in slow_start_batches(count, initial):
        results = await asyncio.gather(*(fn() for _ in range(size)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        successes += size - len(errors)
        for err in errors:
            if isinstance(err, asyncio.CancelledError):
                raise err
        if errors:
            return successes, errors[0]
    return successes, None


# -- which pods to delete ----------------------------------------------------------------------

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}  # any other phase counts as 0


def ranks_by_related_pods_on_node(pods: Sequence[Obj], related: Iterable[Obj]) -> list[int]:
    """For each pod, how many active `related` pods (those of every ReplicaSet sharing its
    owner) run on its node (getPodsRankedByRelatedPodsOnSameNode); unscheduled pods share
    the node ""."""
    on_node: dict[str, int] = {}
    for pod in related:
        if is_pod_active(pod):
            node = str(spec_of(pod).get("nodeName") or "")
            on_node[node] = on_node.get(node, 0) + 1
    return [on_node.get(str(spec_of(p).get("nodeName") or ""), 0) for p in pods]


def _after_or_zero(t1: float | None, t2: float | None) -> bool:
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


def _log_rank(t: float, now: float) -> int:
    nanos = round((now - t) * 1e9)
    return int(math.log2(nanos)) if nanos > 0 else -1


def _by_time(t1: float | None, t2: float | None, uid1: str, uid2: str, now: float | None) -> bool:
    """Is the first time "more deletable": more recent, or zero; on a logarithmic scale
    (LogarithmicScaleDown) with the uid as a pseudo-random tie-break."""
    if now is None or t1 is None or t2 is None:
        return _after_or_zero(t1, t2)
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return uid1 < uid2
    return diff < 0


def deletion_less(a: Obj, rank_a: int, b: Obj, rank_b: int, now: float | None) -> bool:
    """`controller.ActivePodsWithRanks.Less`: True when pod `a` should be deleted before
    pod `b`. In order: unassigned before assigned; Pending < Unknown < Running; not ready
    before ready; lower pod-deletion-cost first; more colocated related pods (rank) first;
    ready for less time first; more container restarts first; newer first. Times compare
    on a log2 scale of their age when `now` is given (pods of similar age tie, broken by
    uid so that scale-down is not always the very newest pods)."""
    node_a = str(spec_of(a).get("nodeName") or "")
    node_b = str(spec_of(b).get("nodeName") or "")
    if node_a != node_b and (not node_a or not node_b):
        return not node_a
    phase_a = _PHASE_ORDINAL.get(podutil.pod_phase(a), 0)
    phase_b = _PHASE_ORDINAL.get(podutil.pod_phase(b), 0)
    if phase_a != phase_b:
        return phase_a < phase_b
    ready_a, ready_b = is_pod_ready(a), is_pod_ready(b)
    if ready_a != ready_b:
        return not ready_a
    cost_a, cost_b = podutil.pod_deletion_cost(a), podutil.pod_deletion_cost(b)
    if cost_a != cost_b:
        return cost_a < cost_b
    if rank_a != rank_b:
        return rank_a > rank_b
    if ready_a and ready_b:
        since_a, since_b = podutil.pod_ready_time(a), podutil.pod_ready_time(b)
        if since_a != since_b:
            return _by_time(since_a, since_b, uid_of(a), uid_of(b), now)
    restarts_a, restarts_b = podutil.max_container_restarts(a), podutil.max_container_restarts(b)
    if restarts_a != restarts_b:
        return restarts_a > restarts_b
    created_a, created_b = podutil.creation_time(a), podutil.creation_time(b)
    if created_a != created_b:
        return _by_time(created_a, created_b, uid_of(a), uid_of(b), now)
    return False


def pods_to_delete(
    pods: Sequence[Obj], related: Iterable[Obj], diff: int, now: float | None = None
) -> list[Obj]:
    """The `diff` pods of `pods` to delete first (getPodsToDelete), ranked by
    `deletion_less` with colocation counted among `related`."""
    if diff >= len(pods):
        return list(pods)
    ranks = ranks_by_related_pods_on_node(pods, related)
    ranked = list(zip(pods, ranks, strict=True))

    def compare(x: tuple[Obj, int], y: tuple[Obj, int]) -> int:
        if deletion_less(x[0], x[1], y[0], y[1], now):
            return -1
        if deletion_less(y[0], y[1], x[0], x[1], now):
            return 1
        return 0

    ranked.sort(key=functools.cmp_to_key(compare))
    return [pod for pod, _ in ranked[:diff]]


# -- pods from the template --------------------------------------------------------------------


def pod_from_template(rs: Obj) -> Obj:
    """The pod `rs` creates (controller.GetPodFromTemplate): the template's labels,
    annotations, finalizers and spec, generateName `<rs>-`, and a controller reference to
    the ReplicaSet. ValueError when the template has no labels (Kubernetes refuses to
    create pods it could never select)."""
    template = spec_of(rs).get("template")
    template = template if isinstance(template, dict) else {}
    tmeta = meta_of(template)
    labels = tmeta.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise ValueError("unable to create pods, no labels")
    meta: Obj = {
        "generateName": f"{name_of(rs)}-",
        "namespace": namespace_of(rs),
        "labels": copy.deepcopy(labels),
    }
    for key in ("annotations", "finalizers"):
        if tmeta.get(key):
            meta[key] = copy.deepcopy(tmeta[key])
    meta["ownerReferences"] = [
        podutil.new_controller_ref(rs, api_version=REPLICASETS.api_version, kind="ReplicaSet")
    ]
    return {
        "apiVersion": PODS.api_version,
        "kind": PODS.kind,
        "metadata": meta,
        "spec": copy.deepcopy(spec_of(template)),
    }


# -- status ------------------------------------------------------------------------------------


def replica_failure_reason(active_pods: int, replicas: int) -> str:
    diff = active_pods - replicas
    if diff < 0:
        return "FailedCreate"
    if diff > 0:
        return "FailedDelete"
    return ""


def calculate_status(rs: Obj, pods: Sequence[Obj], manage_error: str | None, now: float) -> Obj:
    """The status `rs` should report for its claimed active `pods` (calculateStatus):
    replicas, fullyLabeledReplicas (pods carrying every template label), readyReplicas,
    availableReplicas (ready for minReadySeconds), observedGeneration, and the
    ReplicaFailure condition while creating or deleting pods fails (`manage_error`).
    Fields are omitted when zero, as Go's `omitempty` does, except `replicas`."""
    spec = spec_of(rs)
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    template_labels = podutil.labels_of(template or {})
    min_ready = podutil.int_field(spec, "minReadySeconds")
    fully_labeled = ready = available = 0
    for pod in pods:
        labels = labels_of(pod)
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully_labeled += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    conditions = [c for c in status_of(rs).get("conditions") or [] if isinstance(c, dict)]
    failure = next((c for c in conditions if c.get("type") == REPLICA_FAILURE), None)
    if manage_error is not None and failure is None:
        conditions.append(
            {
                "type": REPLICA_FAILURE,
                "status": "True",
                "lastTransitionTime": rfc3339(now),
                "reason": replica_failure_reason(len(pods), podutil.spec_replicas(rs)),
                "message": manage_error,
            }
        )
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    status: Obj = {"replicas": len(pods)}
    for key, value in (
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("observedGeneration", podutil.int_field(meta_of(rs), "generation")),
    ):
        if value:
            status[key] = value
    if conditions:
        status["conditions"] = conditions
    return status


# -- the controller ----------------------------------------------------------------------------


class _PodIndex:
    """The pod keys of the informer's cache by controller uid, and the orphans by
    namespace: what a ReplicaSet can claim, without scanning every pod of the cluster at
    each sync (pods controlled by someone else are never its business). Kept by the pod
    handlers, so it follows the cache event by event."""

    def __init__(self) -> None:
        self._owned: dict[str, set[str]] = {}
        self._orphans: dict[str, set[str]] = {}

    def _slot(self, pod: Obj) -> tuple[dict[str, set[str]], str]:
        ref = controller_ref(pod)
        if ref is not None:
            return self._owned, str(ref.get("uid") or "")
        return self._orphans, namespace_of(pod)

    def update(self, old: Obj | None, new: Obj | None) -> None:
        if old is not None:
            table, slot = self._slot(old)
            keys = table.get(slot)
            if keys is not None:
                keys.discard(key_of(old))
                if not keys:
                    del table[slot]
        if new is not None:
            table, slot = self._slot(new)
            table.setdefault(slot, set()).add(key_of(new))

    def candidates(self, owner_uid: str, namespace: str) -> set[str]:
        """Keys of the pods controlled by `owner_uid` and of the orphans of `namespace`."""
        return self._owned.get(owner_uid, set()) | self._orphans.get(namespace, set())


class ReplicaSetController:
    """Drives ReplicaSets towards `spec.replicas` pods (see the module docstring)."""

    name = "replicaset"

    def __init__(
        self, *, workers: int = DEFAULT_WORKERS, burst_replicas: int = BURST_REPLICAS
    ) -> None:
        if workers < 1 or burst_replicas < 1:
            raise ValueError(
                f"workers and burst_replicas must be at least 1 (got {workers}, {burst_replicas})"
            )
        self.workers = workers
        self.burst_replicas = burst_replicas
        self.expectations = ControllerExpectations()
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(name=self.name)
        self._ctx: Context | None = None
        self._index = _PodIndex()

    @property
    def ctx(self) -> Context:
        if self._ctx is None:
            raise RuntimeError("ReplicaSetController.setup(ctx) was not called")
        return self._ctx

    # -- wiring --------------------------------------------------------------------------------

    def setup(self, ctx: Context) -> None:
        self._ctx = ctx
        self.queue = RateLimitingQueue(name=self.name)
        self.expectations = ControllerExpectations()
        self._index = _PodIndex()
        self.rs_informer = ctx.informers.informer_for(REPLICASETS)
        self.pod_informer = ctx.informers.informer_for(PODS)
        self.rs_informer.add_handler(self._add_rs, self._update_rs, self._delete_rs)
        self.pod_informer.add_handler(self._add_pod, self._update_pod, self._on_pod_deleted)

    async def run(self, ctx: Context) -> None:
        await run_workers(self.name, self.queue, self.sync, workers=self.workers)

    # -- informer handlers (enqueue only) ------------------------------------------------------

    def _add_rs(self, rs: Obj) -> None:
        self.queue.add(key_of(rs))

    def _update_rs(self, old: Obj, cur: Obj) -> None:
        self.queue.add(key_of(cur))

    def _delete_rs(self, rs: Obj) -> None:
        key = key_of(rs)
        self.expectations.delete(key)
        self.queue.add(key)

    def _resolve(self, namespace: str, ref: Mapping[str, Any]) -> Obj | None:
        """The ReplicaSet a controller reference names, if the cache holds that very one."""
        if ref.get("kind") != "ReplicaSet":
            return None
        rs = self.rs_informer.get(namespace, str(ref.get("name") or ""))
        if rs is None or uid_of(rs) != ref.get("uid"):
            return None
        return rs

    def _replica_sets_selecting(self, pod: Obj) -> list[Obj]:
        """ReplicaSets of the pod's namespace whose selector matches it (an orphan's
        candidate owners); an empty or broken selector matches nothing here."""
        out = []
        labels = labels_of(pod)
        for rs in self.rs_informer.list():
            if namespace_of(rs) != namespace_of(pod):
                continue
            try:
                selector = LabelSelector.from_object(spec_of(rs).get("selector"))
            except ValueError:
                continue
            if not selector.empty and selector.matches(labels):
                out.append(rs)
        return out

    def _add_pod(self, pod: Obj) -> None:
        self._index.update(None, pod)
        if podutil.is_terminating(pod):
            self._delete_pod(pod)  # a restarted informer can see a pod already terminating
            return
        ref = controller_ref(pod)
        if ref is not None:
            rs = self._resolve(namespace_of(pod), ref)
            if rs is not None:
                key = key_of(rs)
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        for rs in self._replica_sets_selecting(pod):
            self.queue.add(key_of(rs))

    def _update_pod(self, old: Obj, cur: Obj) -> None:
        if meta_of(old).get("resourceVersion") == meta_of(cur).get("resourceVersion"):
            return  # a resync: nothing changed
        self._index.update(old, cur)
        label_changed = labels_of(old) != labels_of(cur)
        if podutil.is_terminating(cur):
            # Graceful deletion: the deletion is observed now, not when the pod is gone.
            self._delete_pod(cur)
            if label_changed:
                self._delete_pod(old)
            return
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            previous = self._resolve(namespace_of(old), old_ref)
            if previous is not None:
                self.queue.add(key_of(previous))
        if cur_ref is not None:
            rs = self._resolve(namespace_of(cur), cur_ref)
            if rs is None:
                return
            key = key_of(rs)
            self.queue.add(key)
            min_ready = podutil.int_field(spec_of(rs), "minReadySeconds")
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                # Available only minReadySeconds from now: look again then.
                self.queue.add_after(key, min_ready + 1)
            return
        if label_changed or ref_changed:
            for rs in self._replica_sets_selecting(cur):
                self.queue.add(key_of(rs))

    def _on_pod_deleted(self, pod: Obj) -> None:
        self._index.update(pod, None)
        self._delete_pod(pod)

    def _delete_pod(self, pod: Obj) -> None:
        """deletePod: the pod is going or gone; count it against the expectations."""
        ref = controller_ref(pod)
        if ref is None:
            return
        rs = self._resolve(namespace_of(pod), ref)
        if rs is None:
            return
        key = key_of(rs)
        self.expectations.deletion_observed(key, podutil.pod_key(pod))
        self.queue.add(key)

    # -- sync ----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        """syncReplicaSet: claim, create or delete the difference (when the expectations
        allow), write the observed status. Raising requeues the key with backoff."""
        ctx = self.ctx
        namespace, name = split_key(key)
        rs = self.rs_informer.get(namespace, name)
        if rs is None:
            self.expectations.delete(key)
            return
        now = ctx.clock()
        needs_sync = self.expectations.satisfied(key, now)
        try:
            selector = LabelSelector.from_object(spec_of(rs).get("selector"))
        except ValueError as e:
            logger.warning("replicaset %s has an invalid selector, skipping: %s", key, e)
            return
        active = [
            p for p in self.pod_informer.list() if namespace_of(p) == namespace and is_pod_active(p)
        ]
        pods = await self._claim_pods(rs, selector, active)
        manage_error: APIError | None = None
        if needs_sync and not podutil.is_terminating(rs):
            try:
                await self._manage_replicas(key, rs, pods)
            except APIError as e:
                manage_error = e
        status = calculate_status(
            rs, pods, manage_error.message if manage_error else None, ctx.clock()
        )
        updated = await self._update_status(rs, status)
        spec = spec_of(updated)
        min_ready = podutil.int_field(spec, "minReadySeconds")
        new_status = status_of(updated)
        if (
            manage_error is None
            and min_ready > 0
            and podutil.int_field(new_status, "readyReplicas") == podutil.spec_replicas(updated)
            and podutil.int_field(new_status, "availableReplicas") != podutil.spec_replicas(updated)
        ):
            self.queue.add_after(key, float(min_ready))
        if manage_error is not None:
            raise manage_error

    async def _claim_pods(self, rs: Obj, selector: LabelSelector, pods: list[Obj]) -> list[Obj]:
        """ClaimPods: the pods `rs` controls after adopting matching orphans and releasing
        its pods that no longer match. Adoption first re-reads the ReplicaSet from the API
        (not the cache): a ReplicaSet that is being deleted, or was replaced by another of
        the same name, must not take pods."""
        ctx = self.ctx
        owned: list[Obj] = []
        errors: list[APIError] = []
        checked = False
        for pod in pods:
            action = podutil.claim(rs, pod, selector)
            if action is Claim.OWNED:
                owned.append(pod)
            elif action is Claim.ADOPT:
                if not checked:
                    await self._recheck_can_adopt(rs)
                    checked = True
                ref = podutil.new_controller_ref(
                    rs, api_version=REPLICASETS.api_version, kind="ReplicaSet"
                )
                try:
                    adopted = await ctx.writer.update(
                        PODS, namespace_of(pod), podutil.with_controller_ref(pod, ref)
                    )
                except APIError as e:
                    if e.code != 404:
                        errors.append(e)
                    continue
                logger.info("replicaset %s adopted pod %s", name_of(rs), name_of(pod))
                owned.append(adopted)
            elif action is Claim.RELEASE:
                try:
                    await ctx.writer.update(
                        PODS, namespace_of(pod), podutil.without_owner(pod, uid_of(rs))
                    )
                except APIError as e:
                    if e.code != 404:
                        errors.append(e)
                    continue
                logger.info("replicaset %s released pod %s", name_of(rs), name_of(pod))
        if errors:
            raise errors[0]
        return owned

    async def _recheck_can_adopt(self, rs: Obj) -> None:
        fresh = await self.ctx.client.get(REPLICASETS, namespace_of(rs), name_of(rs))
        if uid_of(fresh) != uid_of(rs):
            raise APIError(
                409,
                "Conflict",
                f"original ReplicaSet {namespace_of(rs)}/{name_of(rs)} is gone: got uid "
                f"{uid_of(fresh)}, wanted {uid_of(rs)}",
            )
        if podutil.is_terminating(fresh):
            raise APIError(
                409,
                "Conflict",
                f"ReplicaSet {namespace_of(rs)}/{name_of(rs)} has just been deleted at "
                f"{meta_of(fresh).get('deletionTimestamp')}",
            )

    async def _manage_replicas(self, key: str, rs: Obj, pods: list[Obj]) -> None:
        """manageReplicas: create the missing pods in slow-start batches, or delete the
        excess ones, recording what the cache must show before the next action."""
        ctx = self.ctx
        diff = len(pods) - podutil.spec_replicas(rs)
        if diff < 0:
            count = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, count, ctx.clock())
            logger.info(
                "replicaset %s: too few replicas need=%d creating=%d",
                key,
                podutil.spec_replicas(rs),
                count,
            )

            async def create_one() -> None:
                await self._create_pod(rs)

            created, err = await slow_start_batch(count, SLOW_START_INITIAL_BATCH_SIZE, create_one)
            for _ in range(count - created):
                # Never created (or failed): the informer will not show these.
                self.expectations.creation_observed(key)
            if err is not None:
                raise err
        elif diff > 0:
            count = min(diff, self.burst_replicas)
            victims = pods_to_delete(pods, self._indirectly_related_pods(rs), count, ctx.clock())
            logger.info(
                "replicaset %s: too many replicas need=%d deleting=%d",
                key,
                podutil.spec_replicas(rs),
                count,
            )
            self.expectations.expect_deletions(
                key, [podutil.pod_key(p) for p in victims], ctx.clock()
            )
            results = await asyncio.gather(
                *(self._delete_one(key, rs, p) for p in victims), return_exceptions=True
            )
            for r in results:
                if isinstance(r, BaseException):
                    raise r

    async def _create_pod(self, rs: Obj) -> None:
        ctx = self.ctx
        try:
            pod = pod_from_template(rs)
        except ValueError as e:
            raise APIError(422, "Invalid", str(e)) from None
        try:
            created = await ctx.writer.create(PODS, namespace_of(rs), pod)
        except APIError as e:
            if podutil.namespace_terminating(e):
                return
            ctx.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {e.message}")
            raise
        ctx.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {name_of(created)}")

    async def _delete_one(self, key: str, rs: Obj, pod: Obj) -> None:
        ctx = self.ctx
        try:
            await ctx.writer.delete(PODS, namespace_of(pod), name_of(pod))
        except APIError as e:
            # The informer will not show a deletion that did not happen (or happened before).
            self.expectations.deletion_observed(key, podutil.pod_key(pod))
            if e.code == 404:
                return
            ctx.recorder.event(rs, "Warning", "FailedDelete", f"Error deleting: {e.message}")
            raise
        ctx.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name_of(pod)}")

    def _indirectly_related_pods(self, rs: Obj) -> list[Obj]:
        """Pods of every ReplicaSet with the same controller as `rs` (a Deployment's old and
        new ReplicaSets): deleting where they are doubled up spreads what stays."""
        ref = controller_ref(rs)
        siblings = [rs]
        if ref is not None:
            siblings = [
                other
                for other in self.rs_informer.list()
                if namespace_of(other) == namespace_of(rs)
                and (controller_ref(other) or {}).get("uid") == ref.get("uid")
            ]
        pods_in_ns = [p for p in self.pod_informer.list() if namespace_of(p) == namespace_of(rs)]
        seen: set[str] = set()
        related: list[Obj] = []
        for sibling in siblings:
            try:
                selector = LabelSelector.from_object(spec_of(sibling).get("selector"))
            except ValueError:
                continue
            for pod in pods_in_ns:
                if uid_of(pod) not in seen and selector.matches(labels_of(pod)):
                    seen.add(uid_of(pod))
                    related.append(pod)
        return related

    async def _update_status(self, rs: Obj, status: Obj) -> Obj:
        """Write `status` unless the ReplicaSet already reports it for its generation. A
        conflict (the cache was stale) raises: the sync runs again on the fresh object."""
        if status == status_of(rs):
            return rs
        updated = copy.deepcopy(rs)
        updated["status"] = status
        return await self.ctx.writer.update_status(REPLICASETS, namespace_of(rs), updated)
